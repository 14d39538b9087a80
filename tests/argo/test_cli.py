"""``flowplane convert argo``: YAML on stdout, flows/<ns>/<id>.yaml with --out, 1 on a refusal."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from controlplane.cli import app
from controlplane.domain.validate import validate_flow
from tests.argo.corpus import CORPUS


def test_prints_the_flow_with_a_header_naming_the_source() -> None:
    source = CORPUS / "dag-diamond.yaml"
    result = CliRunner().invoke(app, ["convert", "argo", str(source), "--namespace", "team.argo"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Converted from Argo Workflows by `flowplane convert argo`")
    assert f"# Source: {source} (document 1: Workflow dag-diamond)" in result.stdout
    flow = validate_flow(result.stdout)
    assert (flow.namespace, flow.id) == ("team.argo", "dag-diamond")


def test_several_files_go_to_flows_namespace_id_with_out(tmp_path: Path) -> None:
    files = [CORPUS / "steps.yaml", CORPUS / "cron-workflow.yaml", CORPUS / "dag-coinflip.yaml"]
    result = CliRunner().invoke(
        app, ["convert", "argo", *map(str, files), "-n", "team.argo", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.yaml"))
    assert written == [
        "flows/team.argo/dag-diamond-coinflip-coinflip.yaml",  # the template that calls itself
        "flows/team.argo/dag-diamond-coinflip.yaml",
        "flows/team.argo/hello-world.yaml",
        "flows/team.argo/steps.yaml",
    ]
    for path in tmp_path.rglob("*.yaml"):
        validate_flow(path.read_text(), file=str(path))


def test_a_refused_construct_exits_1_naming_the_field(tmp_path: Path) -> None:
    source = CORPUS / "dag-daemon-task.yaml"
    result = CliRunner().invoke(app, ["convert", "argo", str(source), "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert (
        f"{source}:58:5: spec.templates[1].daemon: daemon templates are not supported"
        in result.stdout
    )
    assert "nothing converted" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_kubernetes_runner_keeps_images() -> None:
    source = CORPUS / "dag-inline-workflow.yaml"
    result = CliRunner().invoke(app, ["convert", "argo", str(source), "--runner", "kubernetes"])
    assert result.exit_code == 0, result.output
    assert "containerImage: argoproj/argosay:v2" in result.stdout
    assert "type: io.kestra.plugin.ee.kubernetes.runner.Kubernetes" in result.stdout


def test_an_unknown_runner_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["convert", "argo", "x.yaml", "--runner", "podman"])
    assert result.exit_code == 2


def test_validate_checks_an_argo_file_by_converting_it() -> None:
    good, bad = CORPUS / "steps.yaml", CORPUS / "dag-daemon-task.yaml"
    result = CliRunner().invoke(app, ["validate", str(good), str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:58:5: spec.templates[1].daemon" in result.stdout
    assert str(good) not in result.stdout
    assert "1 of 2 flow(s) valid" in result.output
