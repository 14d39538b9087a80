"""The operator commands of ``flowplane``, in the style of ``kubectl`` and ``argocd``.

``register`` adds them to the typer app of ``controlplane.cli``: ``login``,
``context``, ``run``, ``flows``, ``executions``, ``namespaces``, ``tokens``,
``sources``, and ``list``/``show`` under the existing ``plans`` group.
"""

from __future__ import annotations

import typer

from controlplane.cli_ops import gitops, resources, run, session


def register(app: typer.Typer, plans_app: typer.Typer) -> None:
    """Add the operator commands to ``app`` (and ``plans list|show`` to ``plans_app``)."""
    app.command()(session.login)
    app.command()(session.context)
    app.command("run")(run.run)
    app.add_typer(resources.flows_app, name="flows")
    app.add_typer(resources.executions_app, name="executions")
    app.add_typer(resources.namespaces_app, name="namespaces")
    app.add_typer(resources.tokens_app, name="tokens")
    app.add_typer(gitops.sources_app, name="sources")
    plans_app.command("list")(gitops.plans_list)
    plans_app.command("show")(gitops.plans_show)


__all__ = ["register"]
