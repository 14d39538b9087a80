from __future__ import annotations

import pytest

from controlplane.domain.dag import find_cycle, topological_order


def test_order_respects_dependencies_and_input_order() -> None:
    edges = {"t1": [], "t2": ["t1"], "t3": ["t1"], "t4": ["t2"], "t5": ["t4", "t3"]}
    assert topological_order(edges) == ["t1", "t2", "t3", "t4", "t5"]


def test_cycle_is_named() -> None:
    assert find_cycle({"a": ["c"], "b": ["a"], "c": ["b"]}) == ["a", "c", "b", "a"]
    with pytest.raises(ValueError, match="a → a"):
        topological_order({"a": ["a"]})


def test_deep_chain_does_not_recurse() -> None:
    edges = {f"n{i}": [f"n{i - 1}"] if i else [] for i in range(5000)}
    assert topological_order(edges)[-1] == "n4999"
    assert find_cycle(edges) is None
