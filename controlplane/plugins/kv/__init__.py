"""Key-value tasks (``kv.Set/Get/Delete``) and Kestra's older ``state`` documents."""

from controlplane.plugins.kv.tasks import KvDelete, KvGet, KvSet, StateDelete, StateGet, StateSet

PLUGINS = (KvSet, KvGet, KvDelete, StateGet, StateSet, StateDelete)

__all__ = ["PLUGINS"]
