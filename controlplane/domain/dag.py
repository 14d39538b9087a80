"""Dependency graphs: ordering Dag tasks and naming cycles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one cycle as ``[a, b, …, a]`` in the graph ``node → dependencies``, or None.

    Iterative depth-first search with three colours, so deep graphs do not hit
    Python's recursion limit. Nodes are visited in the mapping's order so the
    reported cycle is stable for a given source.
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    for start in edges:
        if colour[start] != white:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        colour[start] = grey
        while stack:
            node, index = stack[-1]
            deps = [d for d in edges.get(node, ()) if d in edges]
            if index < len(deps):
                stack[-1] = (node, index + 1)
                nxt = deps[index]
                if colour[nxt] == grey:
                    return [*path[path.index(nxt) :], nxt]
                if colour[nxt] == white:
                    colour[nxt] = grey
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                colour[node] = black
                stack.pop()
                path.pop()
    return None


def topological_order(edges: Mapping[str, Sequence[str]]) -> list[str]:
    """Nodes ordered so each comes after its dependencies (Kahn's algorithm).

    Ties keep the mapping's order. Raises ``ValueError`` naming a cycle.
    """
    cycle = find_cycle(edges)
    if cycle:
        raise ValueError("dependency cycle: " + " → ".join(cycle))
    remaining = {node: {d for d in deps if d in edges} for node, deps in edges.items()}
    order: list[str] = []
    while remaining:
        ready = [node for node, deps in remaining.items() if not deps]
        for node in ready:
            del remaining[node]
            order.append(node)
        for deps in remaining.values():
            deps.difference_update(ready)
    return order
