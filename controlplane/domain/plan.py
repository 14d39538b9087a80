"""The plan: what activating a commit would change, computed without any IO.

``compute_plan`` takes the flows a source owns now (``ActiveFlow``) and the
files of that source's Git tree at a commit (``DesiredFile``), and answers per
flow: add, change, remove or unchanged, with a field diff of the normalized
specs and a text diff of the sources.

Apply activates all of a plan or none of it, so the plan validates the *whole*
desired set: every file on its own (``validate_flow``), the repository layout
(``flows/<namespace>/<id>.yaml``), and the rules that need every flow at once
(one file per flow, subflow targets, secret references). Any problem makes
the plan invalid; the changes are still listed so a reviewer sees the intent.

A desired file byte-identical to the live source of the flow its path names
reuses the live revision's normalized spec, without parsing or validating it,
when that spec was computed by the same validator (``validator_fingerprint``:
the Flowplane version and every registered task and trigger type with the
package that declares it). Anything else is validated.

Secrets are compared by opaque version hashes the caller supplies, never by
value, and neither the plan nor its text carries more than their keys.

A plan never promises what apply will not do. Without prune, a flow (or
secret) the commit dropped stays live: it is ``orphan`` (shown once, in its
own section), not "remove". A flow another origin owns is a problem, or an
explicit ``take_over`` when the source's policy allows it, never an "add".
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from importlib import metadata
from typing import Any, TypeGuard

from controlplane import __version__
from controlplane.domain import expressions
from controlplane.domain.diff import (
    FieldChange,
    FieldChangeKind,
    SecretAction,
    SecretChange,
    SecretVersions,
    diff_secrets,
    diff_specs,
    unified_diff,
)
from controlplane.domain.normalize import normalize, spec_digest
from controlplane.domain.parse import Path, parse_document
from controlplane.domain.polling import POLLING_ALIASES, POLLING_TRIGGERS
from controlplane.domain.tasktypes.base import TASK_ALIASES, TASK_TYPES
from controlplane.domain.tasktypes.flowable import Subflow
from controlplane.domain.tasktypes.registry import PLUGIN_ORIGINS
from controlplane.domain.validate import ValidatedFlow, validate_flow
from controlplane.errors import InvalidFlowError, Problem

__all__ = [
    "Action",
    "ActiveFlow",
    "DesiredFile",
    "FieldChange",
    "FieldChangeKind",
    "FlowChange",
    "Plan",
    "SecretAction",
    "SecretChange",
    "SecretVersions",
    "compute_plan",
    "render_plan_text",
    "validation_count",
    "validator_fingerprint",
]

FlowKey = tuple[str, str]

_FLOW_SUFFIXES = {"yaml", "yml"}
_TASK_LISTS = ("tasks", "errors", "finally")
_SECRET_CALL = re.compile(r"""secret\(\s*(['"])(?P<key>[^'"]*)\1\s*\)""")


@dataclass(frozen=True, slots=True)
class ActiveFlow:
    """A flow live now and owned by the source being planned (from the store)."""

    namespace: str
    flow_id: str
    revision: int
    source: str
    spec: Mapping[str, Any]  # normalized, as ``normalize`` returns it
    spec_sha256: str
    # The ``validator_fingerprint`` that computed ``spec``; None when unknown.
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class DesiredFile:
    """A file of the Git tree at the target commit; ``path`` is repo-relative, with ``/``."""

    path: str
    source: str


class Action(StrEnum):
    """What applying the plan does to one flow."""

    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"
    UNCHANGED = "unchanged"
    # Dropped from the commit but left live because the source does not prune.
    ORPHAN = "orphan"
    # Owned by another origin (terraform, api, another source) and taken over.
    TAKE_OVER = "take_over"


# Actions apply performs; ORPHAN and UNCHANGED leave the flow as it is.
WRITING_ACTIONS = frozenset({Action.ADD, Action.CHANGE, Action.REMOVE, Action.TAKE_OVER})


@dataclass(frozen=True, slots=True)
class FlowChange:
    """The plan for one flow.

    ``to_revision`` is ``from_revision + 1`` for a change, 1 for an add and
    ``None`` otherwise. ``path``, ``source``, ``spec`` and ``spec_sha256``
    describe the desired flow (what apply writes) and are ``None`` for a remove.
    ``cosmetic`` means the sources differ but the normalized specs are equal.
    ``owner`` is the origin a ``take_over`` takes the flow from.
    """

    namespace: str
    flow_id: str
    action: Action
    from_revision: int | None = None
    to_revision: int | None = None
    fields: tuple[FieldChange, ...] = ()
    text_diff: str = ""
    cosmetic: bool = False
    path: str | None = None
    source: str | None = field(default=None, repr=False)
    spec_sha256: str | None = None
    spec: Mapping[str, Any] | None = field(default=None, repr=False)
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """Every flow and secret change of one commit, and every problem found.

    ``changes`` holds one entry per flow (unchanged ones too), sorted by
    namespace then id; ``secret_changes`` is sorted the same way.
    """

    changes: tuple[FlowChange, ...]
    secret_changes: tuple[SecretChange, ...]
    problems: tuple[Problem, ...]
    # Secrets the commit dropped that stay stored because the source does not prune.
    orphaned_secrets: tuple[SecretChange, ...] = ()

    @property
    def valid(self) -> bool:
        """True when nothing is wrong; an invalid plan must not activate anything."""
        return not self.problems

    @property
    def has_changes(self) -> bool:
        """True when applying would change at least one flow or secret."""
        return bool(self.secret_changes) or any(
            change.action in WRITING_ACTIONS for change in self.changes
        )

    @property
    def summary(self) -> dict[str, int]:
        """How many flows each action applies to: every action, ``orphan``/``take_over`` if any."""
        counts = Counter(change.action for change in self.changes)
        # The two newer actions appear only when present, so summaries stay as they were.
        optional = {Action.ORPHAN, Action.TAKE_OVER}
        return {
            action.value: counts[action]
            for action in Action
            if action not in optional or counts[action]
        }

    def find(self, namespace: str, flow_id: str) -> FlowChange | None:
        """The change of one flow, or ``None`` when the plan does not mention it."""
        # ``changes`` is sorted by (namespace, flow_id), so a lookup is a bisection.
        index = bisect.bisect_left(self.changes, (namespace, flow_id), key=_change_key)
        if index < len(self.changes) and _change_key(self.changes[index]) == (namespace, flow_id):
            return self.changes[index]
        return None


def _change_key(change: FlowChange) -> FlowKey:
    return change.namespace, change.flow_id


def compute_plan(
    active: Iterable[ActiveFlow],
    desired: Iterable[DesiredFile],
    *,
    flows_path: str = "flows/",
    active_secrets: SecretVersions | None = None,
    desired_secrets: SecretVersions | None = None,
    known_flows: Iterable[FlowKey] = (),
    known_secrets: Mapping[str, Collection[str]] | None = None,
    secrets_path: str = "secrets/",
    trust_unchanged: bool = False,
    reuse_specs: bool = True,
    prune: bool = True,
    foreign_owners: Mapping[FlowKey, str] | None = None,
    take_over: bool = False,
) -> Plan:
    """Plan the move from ``active`` to ``desired``; pure and deterministic.

    Only ``.yaml``/``.yml`` files under ``flows_path`` are flows; other files
    are ignored. ``known_flows`` are the (namespace, id) of flows owned by other
    origins, which subflows may call. ``desired_secrets`` must list every secret
    a flow references, unless ``known_secrets`` (namespace → keys stored on
    the server that remain after the plan) holds it; a namespace missing from
    both has none.

    With ``reuse_specs`` (the default), a file byte-identical to the live
    source of the flow its path names is taken as the live flow without
    validating it again when the live spec's ``fingerprint`` is the current
    ``validator_fingerprint()``: validation is pure, so it would give the same
    spec. ``trust_unchanged`` takes such a file as live whatever the
    fingerprint, which is sound only while validation and normalization have
    not changed since the live revision was written, so it is off by default.

    Without ``prune``, flows and secrets the commit dropped are ``orphan``
    (flows) or listed in ``orphaned_secrets``, never removed. ``foreign_owners``
    maps the live flows other origins own to that origin: a desired flow among
    them is a ``take_over`` when ``take_over`` is true, else a problem.

    Raises ``ValueError`` when ``active`` holds the same flow twice.
    """
    live: dict[FlowKey, ActiveFlow] = {}
    for flow in active:
        key = (flow.namespace, flow.flow_id)
        if key in live:
            raise ValueError(f"the active set holds {key[0]}/{key[1]} twice")
        live[key] = flow
    planner = _Planner(live, flows_path, trust_unchanged=trust_unchanged)
    planner.fingerprint = validator_fingerprint() if reuse_specs else None
    planner.prune = prune
    planner.foreign = dict(foreign_owners or {})
    planner.take_over = take_over
    for file in sorted(desired, key=lambda f: f.path):
        planner.load(file)
    planner.check_owners()
    planner.check_references(
        desired_secrets or {},
        known=set(known_flows),
        stored_secrets=known_secrets,
        secrets_path=secrets_path,
    )
    secret_changes = diff_secrets(active_secrets or {}, desired_secrets or {})
    kept = tuple(s for s in secret_changes if prune or s.action is not SecretAction.REMOVE)
    orphaned = tuple(s for s in secret_changes if not prune and s.action is SecretAction.REMOVE)
    return Plan(
        changes=tuple(planner.changes()),
        secret_changes=kept,
        problems=tuple(sorted(planner.problems, key=_problem_order)),
        orphaned_secrets=orphaned,
    )


@dataclass(frozen=True, slots=True)
class _DesiredFlow:
    """A desired flow that passed validation, or was trusted as identical to the live one."""

    file: DesiredFile
    namespace: str
    flow_id: str
    spec: Mapping[str, Any]
    spec_sha256: str
    validated: ValidatedFlow | None  # None when trusted without validation

    def problem(self, message: str, path: Path) -> Problem:
        validated = self.validated
        if validated is None:
            # A trusted file was never parsed; parse it now, only to place this rare problem.
            try:
                validated = validate_flow(self.file.source, file=self.file.path)
            except InvalidFlowError:
                return Problem(message, file=self.file.path)
        return validated.problem(message, path)


class _Planner:
    """Loads the desired files one by one, then checks what needs all of them."""

    def __init__(
        self, live: dict[FlowKey, ActiveFlow], flows_path: str, *, trust_unchanged: bool
    ) -> None:
        self.live = live
        stripped = flows_path.strip("/")
        self.prefix = f"{stripped}/" if stripped else ""
        self.trust_unchanged = trust_unchanged
        # Live specs computed by this validator are reused for identical sources.
        self.fingerprint: str | None = None
        self.problems: list[Problem] = []
        self.flows: dict[FlowKey, _DesiredFlow] = {}
        # Flows whose file is broken: neither "removed" nor a missing subflow target.
        self.broken: set[FlowKey] = set()
        self.prune = True
        self.take_over = False
        self.foreign: dict[FlowKey, str] = {}

    def check_owners(self) -> None:
        """A desired flow another origin owns is a problem unless the policy takes it over."""
        if self.take_over:
            return
        for key, flow in self.flows.items():
            owner = self.foreign.get(key)
            if owner is not None and key not in self.live:
                message = (
                    f"flow {key[0]}/{key[1]} is owned by {owner}; this source does not take "
                    "over flows (set take_over on the source, or remove the file)"
                )
                self.problems.append(flow.problem(message, ("id",)))

    def load(self, file: DesiredFile) -> None:
        layout = self._layout(file.path)
        if layout is None:
            return
        directory, stem = layout
        flow = self._trusted(file, directory, stem) or self._validated(file, directory, stem)
        if flow is None:
            return
        if directory is not None and flow.namespace != directory:
            message = (
                f"namespace {flow.namespace!r} does not match the directory of {file.path}; "
                f"move the file to {self.prefix}{flow.namespace}/ or set namespace: {directory}"
            )
            self.problems.append(flow.problem(message, ("namespace",)))
        if flow.flow_id != stem:
            message = (
                f"id {flow.flow_id!r} does not match the file name of {file.path}; "
                f"rename the file to {flow.flow_id}.yaml or set id: {stem}"
            )
            self.problems.append(flow.problem(message, ("id",)))
        key = (flow.namespace, flow.flow_id)
        first = self.flows.get(key)
        if first is None:
            self.flows[key] = flow
            return
        message = f"flow {key[0]}/{key[1]} is defined twice: in {first.file.path} and {file.path}"
        self.problems.append(flow.problem(message, ("id",)))

    def _layout(self, path: str) -> tuple[str | None, str] | None:
        """(namespace directory or None when misplaced, file stem); None for non-flow files."""
        if not path.startswith(self.prefix):
            return None
        directory, _, name = path[len(self.prefix) :].rpartition("/")
        stem, dot, suffix = name.rpartition(".")
        if not dot or suffix.lower() not in _FLOW_SUFFIXES:
            return None  # READMEs and the like may sit beside the flows
        if not directory or "/" in directory:
            where = "directly in" if not directory else "nested below"
            self.problems.append(
                Problem(
                    f"flow files belong at {self.prefix}<namespace>/<id>.yaml, not {where} "
                    f"{self.prefix or './'}{directory.partition('/')[0]}",
                    file=path,
                )
            )
            return None, stem
        return directory, stem

    def _trusted(self, file: DesiredFile, directory: str | None, stem: str) -> _DesiredFlow | None:
        if directory is None:
            return None
        current = self.live.get((directory, stem))
        if current is None:
            return None
        same_validator = self.fingerprint is not None and current.fingerprint == self.fingerprint
        if not (self.trust_unchanged or same_validator) or current.source != file.source:
            return None
        spec, digest = current.spec, current.spec_sha256
        return _DesiredFlow(file, current.namespace, current.flow_id, spec, digest, None)

    def _validated(
        self, file: DesiredFile, directory: str | None, stem: str
    ) -> _DesiredFlow | None:
        outcome = _validate_file(file.source, file.path)
        if isinstance(outcome, tuple):
            self.problems.extend(outcome)
            self.broken.add(_declared_key(file.source) or (directory or "", stem))
            return None
        validated, spec, digest = outcome.validated, outcome.spec, outcome.digest
        return _DesiredFlow(file, validated.namespace, validated.id, spec, digest, validated)

    def check_references(
        self,
        secrets: SecretVersions,
        *,
        known: set[FlowKey],
        stored_secrets: Mapping[str, Collection[str]] | None,
        secrets_path: str,
    ) -> None:
        """Subflow targets and secret keys must exist once the plan is applied."""
        existing = self.flows.keys() | self.broken | known
        for flow in self.flows.values():
            for path, target in _subflow_targets(flow.spec):
                if target not in existing:
                    message = (
                        f"subflow {target[0]}/{target[1]} does not exist in this commit "
                        "or on the server"
                    )
                    self.problems.append(flow.problem(message, (*path, "flowId")))
            # Cheap pre-filter: a flow that never says "secret" references none.
            if "secret" not in flow.file.source:
                continue
            defined = secrets.get(flow.namespace, {})
            stored = (stored_secrets or {}).get(flow.namespace, ())
            where = f"{secrets_path.strip('/')}/{flow.namespace}.age"
            if stored_secrets is not None:
                where += " nor stored on the server"
            for path, key in _secret_references(flow.spec, ()):
                if key not in defined and key not in stored:
                    message = f"secret {key!r} is referenced but not defined in {where}"
                    self.problems.append(flow.problem(message, path))

    def changes(self) -> Iterator[FlowChange]:
        for key in sorted(self.flows.keys() | self.live.keys()):
            flow, current = self.flows.get(key), self.live.get(key)
            if flow is not None:
                owner = self.foreign.get(key) if current is None else None
                yield _flow_change(flow, current, owner)
            elif current is not None and key not in self.broken:
                label = f"{current.namespace}/{current.flow_id} (revision {current.revision})"
                yield FlowChange(
                    current.namespace,
                    current.flow_id,
                    Action.REMOVE if self.prune else Action.ORPHAN,
                    from_revision=current.revision,
                    text_diff=unified_diff(
                        current.source, "", before_label=label, after_label="/dev/null"
                    ),
                )


def _flow_change(
    flow: _DesiredFlow, current: ActiveFlow | None, owner: str | None = None
) -> FlowChange:
    def change(action: Action, **details: Any) -> FlowChange:
        return FlowChange(
            flow.namespace,
            flow.flow_id,
            action,
            path=flow.file.path,
            source=flow.file.source,
            spec_sha256=flow.spec_sha256,
            spec=flow.spec,
            **details,
        )

    if current is None:
        diff = unified_diff(
            "", flow.file.source, before_label="/dev/null", after_label=flow.file.path
        )
        if owner is not None:
            return change(Action.TAKE_OVER, text_diff=diff, owner=owner)
        return change(Action.ADD, to_revision=1, text_diff=diff)
    same_spec = flow.spec_sha256 == current.spec_sha256
    if same_spec and flow.file.source == current.source:
        # The common case at scale: no diff of any kind to compute.
        return change(Action.UNCHANGED, from_revision=current.revision)
    label = f"{flow.namespace}/{flow.flow_id} (revision {current.revision})"
    return change(
        Action.CHANGE,
        from_revision=current.revision,
        to_revision=current.revision + 1,
        fields=() if same_spec else diff_specs(current.spec, flow.spec),
        text_diff=unified_diff(
            current.source, flow.file.source, before_label=label, after_label=flow.file.path
        ),
        cosmetic=same_spec,
    )


def _declared_key(source: str) -> FlowKey | None:
    """The namespace and id a broken file declares, when its YAML at least parses."""
    try:
        data = parse_document(source).data
    except InvalidFlowError:
        return None
    namespace, flow_id = data.get("namespace"), data.get("id")
    if isinstance(namespace, str) and isinstance(flow_id, str):
        return namespace, flow_id
    return None


def _subflow_targets(spec: Mapping[str, Any]) -> Iterator[tuple[Path, FlowKey]]:
    """Literal (namespace, flowId) of every Subflow task, nested ones included, in no order.

    Walks the normalized spec, where types are canonical, so the same code serves
    validated flows and trusted ones known only by their stored spec. The order
    does not matter: problems are sorted by position before they leave.
    """
    stack: list[tuple[Path, Any]] = [((key,), spec[key]) for key in _TASK_LISTS if key in spec]
    while stack:
        path, node = stack.pop()
        if isinstance(node, list):
            items: Iterable[tuple[str | int, Any]] = enumerate(node)
        elif _is_mapping(node):
            if node.get("type") == Subflow.TYPE:
                namespace, flow_id = node.get("namespace"), node.get("flowId")
                if _literal(namespace) and _literal(flow_id):
                    yield path, (namespace, flow_id)
                continue
            items = node.items()
        else:
            continue
        # Only containers go on the stack: scalars cannot hold a task.
        stack.extend(
            ((*path, key), value)
            for key, value in items
            if isinstance(value, list) or _is_mapping(value)
        )


def _secret_references(node: Any, path: Path) -> Iterator[tuple[Path, str]]:
    """``(path, key)`` for every ``secret('KEY')`` in a template string of ``node``."""
    if isinstance(node, str):
        if "secret" in node and expressions.is_templated(node):
            for match in _SECRET_CALL.finditer(node):
                yield path, match["key"]
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _secret_references(value, (*path, index))
    elif _is_mapping(node):
        for key, value in node.items():
            yield from _secret_references(value, (*path, key))


def _literal(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and not expressions.is_templated(value)


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # Specs are plain dicts; the exact type test spares the slow ABC check.
    return type(value) is dict or isinstance(value, Mapping)


def _problem_order(problem: Problem) -> tuple[str, int, int, str, str]:
    return (
        problem.file or "",
        problem.line or 0,
        problem.column or 0,
        problem.path,
        problem.message,
    )


# ---------------------------------------------------------------------------
# Text rendering


_MAX_VALUE = 80
_SECRET_LINES = {
    SecretAction.ADD: "+ secret {}: added (sensitive)",
    SecretAction.CHANGE: "~ secret {}: changed (sensitive)",
    SecretAction.REMOVE: "- secret {}: removed (sensitive)",
}


def render_plan_text(plan: Plan, *, show_diff: bool = False) -> str:
    """The plan for humans, in the manner of ``terraform plan``.

    Problems come first (``file:line:col: path: message``), then one block per
    added, changed or removed flow with its field changes (and its text diff
    when ``show_diff``), then secrets by key only, then a summary line.
    """
    lines: list[str] = []
    if plan.problems:
        count = len(plan.problems)
        lines.append(f"Plan is invalid ({_plural(count, 'problem')}); nothing will be applied.")
        lines.extend(problem.render() for problem in plan.problems)
        lines.append("")
    for change in plan.changes:
        if change.action in WRITING_ACTIONS:
            lines.extend(_render_change(change, show_diff=show_diff))
    lines.extend(
        _SECRET_LINES[secret.action].format(f"{secret.namespace}/{secret.key}")
        for secret in plan.secret_changes
    )
    if not plan.has_changes:
        lines.append("No changes.")
    orphans = [c for c in plan.changes if c.action is Action.ORPHAN]
    if orphans or plan.orphaned_secrets:
        # Their own section, once: apply leaves these live, so they are not changes.
        lines.append("")
        lines.append("Orphaned (prune is off): dropped from the commit, left live as they are")
        lines.extend(
            f"  {c.namespace}/{c.flow_id}  revision {c.from_revision}  orphaned (prune is off)"
            for c in orphans
        )
        lines.extend(
            f"  secret {s.namespace}/{s.key}  orphaned (prune is off)"
            for s in plan.orphaned_secrets
        )
    counts = plan.summary
    taken = f"{counts['take_over']} to take over, " if counts.get("take_over") else ""
    orphaned = len(orphans) + len(plan.orphaned_secrets)
    lines.append(
        f"Plan: {counts['add']} to add, {counts['change']} to change, "
        f"{counts['remove']} to remove, {taken}{counts['unchanged']} unchanged; "
        f"{_plural(len(plan.secret_changes), 'secret')} changed"
        + (f"; {orphaned} orphaned (prune is off)" if orphaned else "")
    )
    return "\n".join(lines) + "\n"


def _render_change(change: FlowChange, *, show_diff: bool) -> Iterator[str]:
    name = f"{change.namespace}/{change.flow_id}"
    if change.action is Action.ADD:
        yield f"+ add {name}  {change.path}"
    elif change.action is Action.TAKE_OVER:
        yield f"! take over {name} from {change.owner}  {change.path}"
    elif change.action is Action.REMOVE:
        yield f"- remove {name}  revision {change.from_revision}"
    else:
        cosmetic = "  (cosmetic only)" if change.cosmetic else ""
        yield f"~ change {name}  revision {change.from_revision} → {change.to_revision}{cosmetic}"
    for item in change.fields:
        yield "    " + _render_field(item)
    if show_diff and change.text_diff:
        yield from ("    " + line for line in change.text_diff.splitlines())


def _render_field(item: FieldChange) -> str:
    if item.kind is FieldChangeKind.ADDED:
        return f"+ {item.path}: {_show(item.after)}"
    if item.kind is FieldChangeKind.REMOVED:
        return f"- {item.path}: {_show(item.before)}"
    if item.kind is FieldChangeKind.MOVED:
        return f"~ {item.path}: moved from {item.path.rpartition('[')[0]}[{item.before}]"
    return f"~ {item.path}: {_show(item.before)} → {_show(item.after)}"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class _Checked:
    validated: ValidatedFlow
    spec: Mapping[str, Any]
    digest: str


# How many files ``_validate_file`` validated (memo misses) since the process started.
_VALIDATIONS = Counter[str]()


@lru_cache(maxsize=32_768)
def _validate_file(source: str, path: str) -> _Checked | tuple[Problem, ...]:
    """Validation and normalization of one file, memoized on (content, path).

    Both are pure, so a long-running server that syncs the same repository
    again (poll, webhook, self-heal) validates only the files that changed.
    Callers must not mutate the returned spec.
    """
    _VALIDATIONS["files"] += 1
    try:
        validated = validate_flow(source, file=path)
    except InvalidFlowError as exc:
        return tuple(exc.problems)
    return _Checked(validated, normalize(validated.spec), spec_digest(validated.spec))


def clear_validation_cache() -> None:
    """Forget memoized validations (benchmarks measuring a cold start use this)."""
    _validate_file.cache_clear()


def validation_count() -> int:
    """How many flow files plans have validated in this process (memoized ones count once)."""
    return _VALIDATIONS["files"]


def validator_fingerprint() -> str:
    """A digest naming the validator: what a stored normalized spec must match to be reused.

    It covers the Flowplane version and every registered task type, alias and
    polling trigger type, each with its class and the version of the package
    that declares it, so an upgrade or a plugin added, removed or upgraded
    changes it. A change to validation must come with a new version.
    """
    digest = hashlib.sha256(f"flowplane {__version__}\n".encode())
    for name, cls in sorted([*TASK_TYPES.items(), *POLLING_TRIGGERS.items()]):
        origin = PLUGIN_ORIGINS.get(name)
        package = _package_version(origin.distribution) if origin is not None else ""
        digest.update(f"type {name} {cls.__module__}.{cls.__qualname__} {package}\n".encode())
    for alias, name in sorted([*TASK_ALIASES.items(), *POLLING_ALIASES.items()]):
        digest.update(f"alias {alias} {name}\n".encode())
    return digest.hexdigest()


@lru_cache(maxsize=256)
def _package_version(distribution: str) -> str:
    try:
        return f"{distribution}=={metadata.version(distribution)}"
    except metadata.PackageNotFoundError:
        return distribution
