"""Flowable tasks: they order, branch, repeat, wrap or park other tasks.

Each one owns its rule (``resolve``): which children run, and what its own
state becomes. The worker's loop asks them and does the rest.
"""

from controlplane.plugins.flow.argo import ArgoDag, ArgoLoop, ArgoRetry
from controlplane.plugins.flow.branching import AllowFailure, If, Parallel, Sequential, Switch
from controlplane.plugins.flow.loops import Dag, EachParallel, EachSequential, ForEach, WaitFor
from controlplane.plugins.flow.parking import Pause, Subflow
from controlplane.plugins.flow.working_directory import WorkingDirectory

PLUGINS = (
    Sequential,
    Parallel,
    If,
    Switch,
    ForEach,
    EachSequential,
    EachParallel,
    Dag,
    Subflow,
    Pause,
    AllowFailure,
    WorkingDirectory,
    WaitFor,
    ArgoDag,
    ArgoLoop,
    ArgoRetry,
)

__all__ = ["PLUGINS"]
