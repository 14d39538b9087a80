"""``flowplane convert``: foreign workflow formats as Flowplane flows (Argo Workflows today)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from controlplane.domain.argo import RUNNERS, convert_sources, to_yaml
from controlplane.errors import InvalidFlowError, Problem

convert_app = typer.Typer(help="Convert other workflow formats into Flowplane flows.")
_out = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)
_SUFFIXES = {".yaml", ".yml"}


def _files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES))
        else:
            files.append(path)
    return files


def _read(path: Path) -> tuple[str | None, Problem | None]:
    try:
        return path.read_bytes().decode("utf-8"), None
    except FileNotFoundError:
        return None, Problem("no such file", file=str(path))
    except OSError as exc:
        return None, Problem(f"cannot read: {exc.strerror or exc}", file=str(path))
    except UnicodeDecodeError as exc:
        return None, Problem(f"not valid UTF-8 (byte {exc.start})", file=str(path))


@convert_app.command("argo")
def convert_argo(  # noqa: C901 - read, convert, then print or write: one command
    paths: Annotated[list[Path], typer.Argument(help="Argo Workflow files or folders of them")],
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", help="Flow namespace (default: metadata.namespace)"),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write flows/<namespace>/<id>.yaml under this folder"),
    ] = None,
    runner: Annotated[
        str,
        typer.Option(help=f"Where containers run: {', '.join(RUNNERS)}"),
    ] = "process",
) -> None:
    """Print the Flowplane flows equal to Argo Workflows (Workflow, WorkflowTemplate, CronWorkflow).

    Anything that cannot be expressed is reported as ``file:line:col: path:
    message`` and the command exits 1, writing nothing.
    """
    if runner not in RUNNERS:
        _err.print(f"--runner must be one of {', '.join(RUNNERS)}")
        raise typer.Exit(2)
    files = _files(paths)
    if not files:
        _err.print("no Argo files found")
        raise typer.Exit(1)
    sources: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for path in files:
        text, problem = _read(path)
        if problem is not None:
            problems.append(problem)
        elif text is not None:
            sources.append((str(path), text))
    try:
        flows = convert_sources(sources, namespace=namespace, runner=runner) if not problems else []
    except InvalidFlowError as exc:
        problems.extend(exc.problems)
    if problems:
        for found in problems:
            _out.print(found.render(), markup=False, highlight=False)
        _err.print(f"{len(problems)} problem(s); nothing converted")
        raise typer.Exit(1)
    if out_dir is None:
        typer.echo("---\n".join(to_yaml(flow) for flow in flows), nl=False)
        return
    for flow in flows:
        target = out_dir / "flows" / flow.namespace / f"{flow.flow_id}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(to_yaml(flow), encoding="utf-8")
        _err.print(f"wrote {target}", markup=False, highlight=False)
