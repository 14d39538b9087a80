"""The files AnsibleCLI writes beside the playbooks: a results callback and the ``kestra`` module.

They are Ansible plugins, run by ``ansible-playbook`` inside the sandbox, so
they are kept here as source text and written into the working directory for
each run, where Kestra's task writes its own (``callback_plugins/kestra_logger.py``,
``library/kestra.py``, ``ansible.cfg``). A flow's ``ansibleConfig`` copied from
Kestra's documentation therefore finds them at the same relative paths.

The callback is Flowplane's own: it collects, per ``ansible-playbook`` run,
the plays, their tasks and each host's status and result (the ``playbooks``
output), and the values a playbook declares with the ``kestra`` module (the
``vars.outputs`` map). It appends one JSON line per run to the file named by
``FLOWPLANE_ANSIBLE_OUTPUTS``, so several commands in one task add up.
"""

from __future__ import annotations

CALLBACK_NAME = "kestra_logger"
CALLBACK_PATH = "callback_plugins/kestra_logger.py"
MODULE_PATH = "library/kestra.py"
OUTPUTS_ENV = "FLOWPLANE_ANSIBLE_OUTPUTS"
MODE_ENV = "FLOWPLANE_ANSIBLE_OUTPUTS_MODE"

DEFAULT_CONFIG = """\
[defaults]
log_path          = {{ workingDir }}/log
callback_plugins  = ./callback_plugins
callbacks_enabled = kestra_logger
library           = ./library
"""

CALLBACK_SOURCE = '''\
"""Collect per-host results of a playbook run for Flowplane's AnsibleCLI task."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: kestra_logger
    type: aggregate
    short_description: Per-host results and declared outputs for Flowplane
    description:
      - Records each play, task and host result, and the outputs declared with the kestra
        module, and appends them as one JSON line to the file named by FLOWPLANE_ANSIBLE_OUTPUTS.
"""

_OUTPUT_ACTIONS = frozenset({"kestra", "ansible.legacy.kestra"})
_DROPPED = ("stdout_lines", "stderr_lines")


def _now():
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "kestra_logger"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._explicit = os.environ.get("FLOWPLANE_ANSIBLE_OUTPUTS_MODE", "ALL") == "EXPLICIT"
        self._plays = []
        self._play = None
        self._task = None
        self._declared = {}

    def v2_playbook_on_play_start(self, play):
        self._end_task()
        self._play = {"name": play.get_name().strip() or "unnamed_play", "tasks": []}
        self._plays.append(self._play)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start_task(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start_task(task)

    def v2_runner_on_ok(self, result):
        if getattr(result._task, "action", None) in _OUTPUT_ACTIONS:
            declared = result._result.get("outputs")
            if isinstance(declared, dict):
                self._declared.update(declared)
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        self._end_task()
        path = os.environ.get("FLOWPLANE_ANSIBLE_OUTPUTS")
        if not path:
            return
        line = json.dumps(
            {"playbook": {"plays": self._plays}, "outputs": self._declared},
            default=str,
            separators=(",", ":"),
        )
        # 0600: host results may carry what a playbook fetched.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
            handle.write(line + "\\n")

    def _start_task(self, task):
        self._end_task()
        if self._play is None:
            self._play = {"name": "implicit_play", "tasks": []}
            self._plays.append(self._play)
        name = task.get_name().strip() or str(getattr(task, "action", "") or "unnamed_task")
        self._task = {
            "uid": self._play["name"] + " | " + name,
            "name": name,
            "startedAt": _now(),
            "endedAt": None,
            "hosts": [],
        }
        self._play["tasks"].append(self._task)

    def _end_task(self):
        if self._task is not None and self._task["endedAt"] is None:
            self._task["endedAt"] = _now()

    def _record(self, result, status):
        if self._task is None:
            self._start_task(result._task)
        payload = {k: v for k, v in result._result.items() if k not in _DROPPED}
        if self._explicit:
            # Only the declared outputs leave the run; a failure keeps its reason.
            kept = {"changed": bool(payload.get("changed", False))}
            if status in ("failed", "unreachable") and "msg" in payload:
                kept["msg"] = payload["msg"]
            payload = kept
        host = result._host.get_name() if result._host else "unknown_host"
        self._task["hosts"].append({"host": host, "status": status, "result": payload})
'''

MODULE_SOURCE = '''\
#!/usr/bin/python
"""kestra: declare values a playbook hands to the flow (AnsibleCLI's vars.outputs)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: kestra
short_description: Declare outputs for the Flowplane (Kestra-compatible) AnsibleCLI task
options:
  outputs:
    description: A map of output names to JSON-serialisable values.
    type: dict
    required: true
"""


def main():
    module = AnsibleModule(
        argument_spec={"outputs": {"type": "dict", "required": True}},
        supports_check_mode=True,
    )
    module.exit_json(changed=False, outputs=module.params["outputs"])


if __name__ == "__main__":
    main()
'''
