"""The ``flowplane`` command line (typer + rich)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from controlplane import __version__
from controlplane.cli_convert import convert_app
from controlplane.cli_ops import register as register_operator_commands
from controlplane.cli_ops.client import ServerOption
from controlplane.domain.argo import convert_source, is_argo_source, to_yaml
from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError, Problem
from controlplane.heap import freeze_startup_objects

app = typer.Typer(help="Flowplane: a GitOps control plane for Kestra-compatible flows.")
out = Console()
err = Console(stderr=True)

_FLOW_SUFFIXES = {".yaml", ".yml"}


@app.command()
def version() -> None:
    """Print the Flowplane version."""
    out.print(f"flowplane {__version__}")


@app.command()
def server(  # noqa: PLR0917 - typer passes every option by name
    host: Annotated[str | None, typer.Option(help="Interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL; default SQLite in the data dir")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Directory for the SQLite database")] = None,
    workers: Annotated[int | None, typer.Option(help="Embedded workers (0: none)")] = None,
    worker_processes: Annotated[
        int,
        typer.Option(
            min=0,
            max=64,
            help="Workers as processes of their own (embedded workers default to 0 then)",
        ),
    ] = 0,
    api_workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Processes serving HTTP; this process then runs workers, scheduler and poller",
        ),
    ] = 1,
    watch: Annotated[
        Path | None,
        typer.Option(
            help="Apply this directory (flows/<namespace>/<id>.yaml, secrets/) on every change",
            exists=True,
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Run the API server (SQLite in WAL mode in the data dir unless told otherwise).

    With ``--watch DIR`` the server keeps DIR's flows and secrets active: every
    settled change is planned (source ``local``, origin ``local:<DIR>``) and
    applied when valid; an invalid file fails the plan and activates nothing.
    """
    import uvicorn  # noqa: PLC0415 - only the server needs it

    from controlplane.api import create_app  # noqa: PLC0415 - keeps `validate` start-up fast
    from controlplane.logging import configure_logging  # noqa: PLC0415
    from controlplane.settings import Settings  # noqa: PLC0415

    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "host": host,
            "port": port,
            "database_url": database_url,
            "data_dir": data_dir,
            "workers": workers if workers is not None or not worker_processes else 0,
        }.items()
        if value is not None
    }
    settings = Settings(**overrides)
    configure_logging(settings.log_level, json=settings.log_json)
    from controlplane.services.watch import DirectoryWatcher  # noqa: PLC0415
    from controlplane.services.worker.processes import WorkerProcesses  # noqa: PLC0415
    from controlplane.store.db import create_engine  # noqa: PLC0415

    if settings.database_url is None:
        settings.prepare()
    engine = create_engine(settings.resolved_database_url())
    application = create_app(settings, engine=engine)  # migrates the database
    watcher = None
    if watch is not None:
        # Registered with the app's loops, so /readyz also covers the watcher.
        watcher = DirectoryWatcher(
            engine, watch, settings.data_dir.resolve() / "git", loops=application.state.loops
        )
        first = watcher.start()
        out.print(f"watching {watch.resolve()}: plan {first.id} {first.status}")
    out.print(
        f"flowplane {__version__} on http://{settings.host}:{settings.port} "
        f"(database: {_redact(settings.resolved_database_url())})"
    )
    # Started once the app has migrated the database, which they share.
    processes = None
    if worker_processes:
        processes = WorkerProcesses(
            worker_processes, settings.resolved_database_url(), settings.data_dir.resolve()
        )
        processes.start()
        # uvicorn re-raises SIGTERM once it has shut down, with the handler it found:
        # the default one would end this process before it stops its workers.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if api_workers > 1:
            _serve_processes(application, settings, api_workers)
        else:
            freeze_startup_objects()
            uvicorn.run(application, host=settings.host, port=settings.port, log_config=None)
    finally:
        if processes is not None:
            processes.stop(settings.lease_seconds)
        if watcher is not None:
            watcher.stop()
        engine.dispose()


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _serve_processes(application: Any, settings: Any, processes: int) -> None:
    """Serve HTTP from ``processes`` uvicorn workers; run ``application``'s services here.

    The children build the API with no embedded worker, scheduler or poller
    (``api_app``), from the same settings passed through the environment, so
    the background work runs once, in this process, whatever ``processes`` is.
    """
    import asyncio  # noqa: PLC0415
    import os  # noqa: PLC0415
    import threading  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415

    for key, value in {
        "FLOWPLANE_DATABASE_URL": settings.resolved_database_url(),
        "FLOWPLANE_DATA_DIR": str(settings.data_dir.resolve()),
        "FLOWPLANE_WORKERS": "0",
        "FLOWPLANE_SCHEDULER": "false",
        "FLOWPLANE_POLL_SOURCES": "false",
    }.items():
        os.environ[key] = value
    stop = threading.Event()

    async def hold() -> None:
        async with application.router.lifespan_context(application):
            await asyncio.to_thread(stop.wait)

    services = threading.Thread(target=asyncio.run, args=(hold(),), name="services")
    services.start()
    try:
        uvicorn.run(
            "controlplane.cli:api_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=processes,
            log_config=None,
        )
    finally:
        stop.set()
        services.join(30)


def api_app() -> Any:
    """The app one ``--api-workers`` process serves, from FLOWPLANE_* settings."""
    from controlplane.api import create_app  # noqa: PLC0415
    from controlplane.logging import configure_logging  # noqa: PLC0415
    from controlplane.settings import Settings  # noqa: PLC0415

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    application = create_app(settings)
    freeze_startup_objects()
    return application


@app.command()
def worker(
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL shared with the server")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Directory for working files")] = None,
) -> None:
    """Run a standalone worker against the server's database until SIGTERM or Ctrl-C.

    On SIGTERM the worker finishes the run in hand, then exits.
    """
    from datetime import timedelta  # noqa: PLC0415

    from controlplane.logging import configure_logging  # noqa: PLC0415
    from controlplane.runners.sandbox import Sandbox  # noqa: PLC0415
    from controlplane.services.worker.processes import end_with_parent  # noqa: PLC0415
    from controlplane.services.worker.worker import Worker  # noqa: PLC0415
    from controlplane.settings import Settings  # noqa: PLC0415
    from controlplane.store.db import create_engine, migrate  # noqa: PLC0415

    end_with_parent()
    overrides: dict[str, Any] = {
        key: value
        for key, value in {"database_url": database_url, "data_dir": data_dir}.items()
        if value is not None
    }
    settings = Settings(**overrides)
    configure_logging(settings.log_level, json=settings.log_json)
    if settings.database_url is None:
        settings.prepare()
    engine = create_engine(settings.resolved_database_url())
    migrate(engine)
    runner = Worker(
        engine,
        settings.data_dir.resolve(),
        lease=timedelta(seconds=settings.lease_seconds),
        sandbox=Sandbox.from_settings(settings),
    )
    signal.signal(signal.SIGTERM, lambda *_: runner.request_stop())
    out.print(f"flowplane worker {runner.worker_id} polling {_redact(str(engine.url))}")
    freeze_startup_objects()
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        runner.request_stop()


secrets_app = typer.Typer(help="The server's age identity for namespace secrets.")
app.add_typer(secrets_app, name="secrets")


@secrets_app.command("recipient")
def secrets_recipient(
    data_dir: Annotated[Path | None, typer.Option(help="The server's data directory")] = None,
    *,
    server: ServerOption,
) -> None:
    """Print the server's age recipient; encrypt to it with `age -r`.

    It is read from the identity in the data directory when there is one,
    else asked of the server (``GET /api/v1/secrets/recipient``): a directory
    without an identity never gets a new one, whose key the server would not hold.
    """
    from controlplane.services.secrets import IDENTITY_FILE, load_keyring  # noqa: PLC0415
    from controlplane.settings import Settings  # noqa: PLC0415

    directory = (data_dir or Settings().data_dir).resolve()
    if (directory / IDENTITY_FILE).exists():
        out.print(load_keyring(directory).recipient)
        return
    if data_dir is not None:
        err.print(f"no server identity in {directory}; omit --data-dir to ask the server")
        raise typer.Exit(2)
    out.print(_call(server, "GET", "/api/v1/secrets/recipient")["recipient"])


@secrets_app.command("encrypt")
def secrets_encrypt(
    source: Annotated[
        str, typer.Argument(help="A YAML map of key to string value; - reads stdin")
    ] = "-",
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The .age file to write, e.g. secrets/ns.age")
    ] = Path("secrets.age"),
    recipient: Annotated[
        str | None, typer.Option(help="The server's age recipient (age1…)")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Read the recipient from this server data directory")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(help="Ask this Flowplane server for its recipient ($FLOWPLANE_TOKEN)"),
    ] = None,
) -> None:
    """Encrypt a YAML map of secrets to the server, for ``secrets/<namespace>.age`` in Git.

    The recipient comes from ``--recipient`` (print it on the server with
    ``flowplane secrets recipient``), from ``--server`` (its
    ``/api/v1/secrets/recipient``), or from the identity in ``--data-dir``.
    """
    import sys  # noqa: PLC0415

    from controlplane.errors import InvalidRequestError  # noqa: PLC0415
    from controlplane.services.gitops.secret_files import (  # noqa: PLC0415
        encrypt_secret_map,
        parse_secret_map,
    )
    from controlplane.services.secrets import load_keyring  # noqa: PLC0415
    from controlplane.settings import Settings  # noqa: PLC0415

    if recipient is None and server is not None:
        recipient = str(_call(server, "GET", "/api/v1/secrets/recipient")["recipient"])
    if recipient is None:
        directory = data_dir or Settings().data_dir
        if not (directory / "identity.age").exists():
            err.print(f"no server identity in {directory}; pass --recipient age1…")
            raise typer.Exit(2)
        recipient = load_keyring(directory.resolve()).recipient
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    try:
        values = parse_secret_map(text)
        sealed = encrypt_secret_map(values, recipient)
    except InvalidRequestError as exc:
        err.print(f"{source}: {exc}")
        raise typer.Exit(1) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(sealed)
    out.print(f"wrote {output}: {len(values)} secret(s) encrypted to {recipient}")


@app.command()
def plan(
    path: Annotated[Path, typer.Argument(help="A checkout of the flows repository")] = Path(),
    *,
    server: ServerOption,
    source: Annotated[str, typer.Option(help="The Git source id this repository is")] = "flows",
) -> None:
    """Show what this checkout would change on the server, without storing anything.

    Exits 1 when the checkout is invalid, so pull-request CI fails on it.
    """
    import httpx  # noqa: PLC0415

    from controlplane.domain.plan import render_plan_text  # noqa: PLC0415
    from controlplane.errors import FlowplaneError  # noqa: PLC0415
    from controlplane.plan_preview import plan_checkout, sealed_namespaces  # noqa: PLC0415

    try:
        with httpx.Client(base_url=server, timeout=30, headers=_auth_headers(server)) as client:
            result = plan_checkout(path, client, source)
    except FlowplaneError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from None
    out.print(render_plan_text(result, show_diff=True), markup=False, highlight=False)
    for namespace in sealed_namespaces(path):
        err.print(
            f"note: secrets/{namespace}.age opens only on the server; its keys are "
            "checked when the server syncs this commit"
        )
    if not result.valid:
        raise typer.Exit(1)


def _auth_headers(server: str | None = None) -> dict[str, str]:
    """``Authorization: Bearer`` $FLOWPLANE_TOKEN, else the token saved for ``server``."""
    from controlplane.cli_ops.contexts import token_for  # noqa: PLC0415

    token = token_for(server)
    return {"Authorization": f"Bearer {token}"} if token else {}


def _call(server: str, method: str, url: str, **kwargs: Any) -> Any:
    """One API call; an error response is printed and exits 2."""
    import httpx  # noqa: PLC0415

    try:
        with httpx.Client(base_url=server, timeout=120, headers=_auth_headers(server)) as client:
            response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        err.print(f"cannot reach {server}: {exc}")
        raise typer.Exit(2) from None
    if response.is_error:
        err.print(f"{method} {url}: {response.status_code} {_error_text(response)}", markup=False)
        raise typer.Exit(2)
    return response.json() if response.content else None


def _error_text(response: Any) -> str:
    """The API error's message, then one ``file:line:column: path: message`` per problem."""
    try:
        body = response.json()
    except ValueError:
        return str(response.text)
    if not isinstance(body, dict):
        return str(response.text)
    lines = [str(body.get("message", response.text))]
    for problem in body.get("problems") or []:
        where = ":".join(
            str(problem[key]) for key in ("file", "line", "column") if problem.get(key) is not None
        )
        path = f"{problem['path']}: " if problem.get("path") else ""
        lines.append(f"  {where}: {path}{problem.get('message', '')}")
    return "\n".join(lines)


def _show_plan(plan: dict[str, Any]) -> None:
    out.print(plan["text"], markup=False, highlight=False, end="")
    out.print(f"plan {plan['id']} ({plan['kind']}): {plan['status']}", markup=False)
    if plan["status"] == "failed":
        raise typer.Exit(1)


@app.command()
def sync(
    source: Annotated[str, typer.Argument(help="The Git source id")],
    *,
    server: ServerOption,
) -> None:
    """Sync a Git source now and print its plan; exits 1 when the plan failed."""
    _show_plan(_call(server, "POST", f"/api/v1/sources/{source}/sync"))


plans_app = typer.Typer(help="Review plans: approve or reject.")
app.add_typer(plans_app, name="plans")


@plans_app.command("approve")
def plans_approve(
    plan_id: Annotated[str, typer.Argument(help="The plan id")],
    comment: Annotated[str | None, typer.Option(help="A review comment")] = None,
    *,
    server: ServerOption,
) -> None:
    """Approve a plan as the token's owner; enough approvals apply it."""
    _show_plan(_call(server, "POST", f"/api/v1/plans/{plan_id}/approve", json={"comment": comment}))


@plans_app.command("reject")
def plans_reject(
    plan_id: Annotated[str, typer.Argument(help="The plan id")],
    comment: Annotated[str | None, typer.Option(help="A review comment")] = None,
    *,
    server: ServerOption,
) -> None:
    """Reject a plan; nothing activates."""
    _show_plan(_call(server, "POST", f"/api/v1/plans/{plan_id}/reject", json={"comment": comment}))


audit_app = typer.Typer(help="The tamper-evident audit log.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    database_url: Annotated[str | None, typer.Option(help="The server's database URL")] = None,
    checkpoints: Annotated[
        Path | None,
        typer.Option(help="Exported checkpoints (GET /api/v1/audit/checkpoints) to check too"),
    ] = None,
) -> None:
    """Check the hash chain and its signed checkpoints; exit 1 naming the first problem.

    Checkpoints are checked with the key derived from the server's identity in
    its data directory; without that file only the chain's links are checked.
    """
    import json  # noqa: PLC0415

    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415
    from sqlmodel import Session  # noqa: PLC0415

    from controlplane.services.secrets import IDENTITY_FILE, load_keyring  # noqa: PLC0415
    from controlplane.settings import Settings  # noqa: PLC0415
    from controlplane.store.audit import signer_from_identity, verify_chain  # noqa: PLC0415
    from controlplane.store.db import create_engine  # noqa: PLC0415

    settings = Settings(**({"database_url": database_url} if database_url else {}))  # type: ignore[arg-type]
    data_dir = settings.data_dir.resolve()
    signer = None
    if (data_dir / IDENTITY_FILE).exists():
        signer = signer_from_identity(str(load_keyring(data_dir).identity))
    else:
        err.print(f"no server identity in {data_dir}: checkpoints are not checked")
    exported = json.loads(checkpoints.read_text()) if checkpoints else []
    if settings.database_url is None and not (data_dir / "flowplane.db").exists():
        # Opening SQLite here would create an empty file and then fail deep in the query.
        err.print(
            f"no Flowplane database in {data_dir}: run this in the server's directory, "
            "set FLOWPLANE_DATA_DIR, or pass --database-url"
        )
        raise typer.Exit(2)
    engine = create_engine(settings.resolved_database_url())
    try:
        with Session(engine) as session:
            report = verify_chain(session, signer, exported=exported)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        err.print(f"cannot read the audit log at {_redact(str(engine.url))}: {reason}")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    if report.valid:
        anchored = (
            f", anchored by {report.checkpoints} checkpoints (newest at event {report.anchored_at})"
            if report.checkpoints
            else ", no checkpoint yet"
        )
        out.print(f"audit chain valid: {report.events} events{anchored if signer else ''}")
        return
    where = f" at event {report.first_broken}" if report.first_broken is not None else ""
    err.print(f"audit chain broken{where}: {report.reason}")
    raise typer.Exit(1)


def _redact(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
    return url


def collect_flow_files(paths: list[Path]) -> list[Path]:
    """Expand folders into the YAML files below them, in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in _FLOW_SUFFIXES))
        else:
            files.append(path)
    return files


def check_file(path: Path) -> list[Problem]:
    """Every problem in one flow file (empty when it is valid)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return [Problem("no such file", file=str(path))]
    except OSError as exc:  # a directory, a path through a file, no permission
        return [Problem(f"cannot read: {exc.strerror or exc}", file=str(path))]
    except UnicodeDecodeError as exc:
        return [Problem(f"not valid UTF-8 (byte {exc.start})", file=str(path))]
    try:
        if is_argo_source(text):
            # An Argo Workflows file is valid when it converts into valid flows.
            for flow in convert_source(text, file=str(path)):
                validate_flow(to_yaml(flow), file=str(path))
        else:
            validate_flow(text, file=str(path))
    except InvalidFlowError as exc:
        return exc.problems
    return []


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Flow files or folders of them")],
) -> None:
    """Validate flows; print ``file:line:col: message`` for each problem, exit 1 on any."""
    files = collect_flow_files(paths)
    if not files:
        err.print("no flow files found")
        raise typer.Exit(1)
    failed = 0
    for path in files:
        problems = check_file(path)
        failed += bool(problems)
        for problem in problems:
            out.print(problem.render(), markup=False, highlight=False, soft_wrap=True)
    summary = f"{len(files) - failed} of {len(files)} flow(s) valid"
    (err if failed else out).print(summary)
    if failed:
        raise typer.Exit(1)


plugins_app = typer.Typer(help="Task types, as the plugin registry holds them.")
app.add_typer(plugins_app, name="plugins")


@plugins_app.command("list")
def plugins_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalog as JSON")] = False,
) -> None:
    """List every registered task type: its names, family, package and outputs."""
    import json  # noqa: PLC0415

    from controlplane.domain.tasktypes.schema import catalog  # noqa: PLC0415

    entries = catalog()
    if as_json:
        out.print_json(json.dumps(entries))
        return
    for entry in entries:
        flags = " ".join(
            flag
            for flag, on in (("flowable", entry["flowable"]), ("sandbox", entry["sandbox"]))
            if on
        )
        aliases = ", ".join(entry["aliases"])
        line = f"{entry['type']}  [{entry['family']}/{entry['package']}]  {aliases}"
        out.print(f"{line}  {flags}".rstrip(), markup=False, highlight=False, soft_wrap=True)
    out.print(f"{len(entries)} task types", markup=False)


@plugins_app.command("schema")
def plugins_schema(
    task_type: Annotated[str, typer.Argument(help="A task type, by full name or alias")],
) -> None:
    """Print the JSON Schema of one task type."""
    import json  # noqa: PLC0415

    from controlplane.domain.tasktypes import suggest_task_type  # noqa: PLC0415
    from controlplane.domain.tasktypes.schema import task_schema  # noqa: PLC0415

    schema = task_schema(task_type)
    if schema is None:
        hint = suggest_task_type(task_type)
        err.print(f"unknown task type {task_type}" + (f"; did you mean {hint}?" if hint else ""))
        raise typer.Exit(1)
    out.print_json(json.dumps(schema))


schema_app = typer.Typer(help="JSON Schemas of the flow dialect, for editors.")
app.add_typer(schema_app, name="schema")


@schema_app.command("flow")
def schema_flow(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the schema to this file")
    ] = None,
) -> None:
    """Print (or write) one JSON Schema of the whole flow dialect (yaml-language-server)."""
    from controlplane.domain.tasktypes.schema import flow_schema, render_schema  # noqa: PLC0415

    text = render_schema(flow_schema())
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")


register_operator_commands(app, plans_app)
app.add_typer(convert_app, name="convert")


def main() -> None:
    """Console-script entry point."""
    app()


# `python -m controlplane.cli`: how the server starts its worker processes.
if __name__ == "__main__":
    main()
