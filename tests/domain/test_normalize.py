"""Normalization decides whether two sources mean the same flow."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from controlplane.domain.normalize import canonical_json, spec_digest
from controlplane.domain.validate import validate_flow

BASE = """\
id: backup
namespace: platform.ops
labels:
  team: ops
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
    retry:
      type: constant
      interval: PT1S
      maxAttempts: 3
"""

SAME_MEANING = """\
# a comment changes nothing
namespace: "platform.ops"
id: backup
labels: [{key: team, value: ops}]
tasks:
- type: Log
  id: hello
  message: 'hi'
  level: INFO          # the default, written out
  disabled: false
  retry: {type: constant, interval: PT1S, maxAttempt: 3}
"""


def digest(source: str) -> str:
    return spec_digest(validate_flow(source).spec)


def test_cosmetic_and_default_differences_normalize_equal() -> None:
    assert canonical_json(validate_flow(BASE).spec) == canonical_json(
        validate_flow(SAME_MEANING).spec
    )


def test_real_changes_change_the_digest() -> None:
    assert digest(BASE) != digest(BASE.replace("message: hi", "message: bye"))
    assert digest(BASE) != digest(BASE.replace("maxAttempts: 3", "maxAttempts: 4"))
    assert digest(BASE) != digest(BASE.replace("team: ops", "team: dev"))


def test_normalized_form_drops_server_owned_revision() -> None:
    assert digest(BASE) == digest("revision: 7\n" + BASE)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40))
def test_any_message_round_trips_through_normalization(message: str) -> None:
    source = BASE.replace("message: hi", f"message: {message!r}".replace("\\", "\\\\"))
    try:
        flow = validate_flow(source)
    except Exception:  # noqa: BLE001 - odd text may not be valid YAML; that is not the point
        return
    again = validate_flow(source)
    assert canonical_json(flow.spec) == canonical_json(again.spec)
