"""Task models: one pydantic model per Kestra task type, and their registry.

Import ``Task`` (the union) and the helpers from ``registry``; importing this
package makes sure every family has registered.
"""

from controlplane.domain.tasktypes.base import TASK_ALIASES, TASK_TYPES, TaskBase, canonical_type
from controlplane.domain.tasktypes.registry import Task, iter_tasks, suggest_task_type

__all__ = [
    "TASK_ALIASES",
    "TASK_TYPES",
    "Task",
    "TaskBase",
    "canonical_type",
    "iter_tasks",
    "suggest_task_type",
]
