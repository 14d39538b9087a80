"""deploy/kubernetes renders with kustomize and holds against the Kubernetes OpenAPI schemas.

Rendering uses ``kubectl kustomize`` (no cluster needed); validation uses the
schemas ``kubernetes-validate`` ships, so the test runs offline.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"
TARGETS = ["base", "overlays/staging", "overlays/production"]
KUBERNETES_VERSION = "1.31.0"


def render(target: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl (for `kubectl kustomize`) is not on PATH")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(ROOT / target)], check=True, capture_output=True, text=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_is_valid_against_the_openapi_schema(target: str) -> None:
    docs = render(target)
    assert len(docs) >= 13
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validator_can_fail() -> None:
    deployment = by_kind(render("base"), "Deployment")["flowplane-worker"]
    deployment["spec"]["replicas"] = "many"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment["spec"]["replicas"] = 1
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_pods_run_unprivileged_with_a_read_only_root(target: str) -> None:
    for deployment in by_kind(render(target), "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/data", "/tmp", "/data/identity.age"} <= mounts  # noqa: S108 - mount paths
            env = {e["name"]: e for e in container["env"]}
            database = env["FLOWPLANE_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
            assert database == {"name": "flowplane", "key": "database-url"}


def test_workers_scale_out_and_may_start_task_pods() -> None:
    docs = render("overlays/production")
    deployments = by_kind(docs, "Deployment")
    assert deployments["flowplane-worker"]["spec"]["replicas"] == 4
    assert deployments["flowplane-server"]["spec"]["replicas"] == 1
    worker_pod = deployments["flowplane-worker"]["spec"]["template"]["spec"]
    binding = by_kind(docs, "RoleBinding")["flowplane-task-runner"]
    assert binding["subjects"][0]["name"] == worker_pod["serviceAccountName"]
    rules = by_kind(docs, "Role")[binding["roleRef"]["name"]]["rules"]
    granted = {(res, verb) for rule in rules for res in rule["resources"] for verb in rule["verbs"]}
    assert {("pods", "create"), ("pods", "delete"), ("pods", "watch"), ("pods/log", "get")} <= (
        granted
    )
    # The server needs no API access at all.
    assert (
        deployments["flowplane-server"]["spec"]["template"]["spec"]["automountServiceAccountToken"]
        is False
    )


def test_budgets_policies_and_ingress_select_real_objects() -> None:
    docs = render("overlays/production")
    labels = [
        d["spec"]["template"]["metadata"]["labels"] for d in by_kind(docs, "Deployment").values()
    ]

    def selects(selector: dict[str, str]) -> bool:
        return any(selector.items() <= pod.items() for pod in labels)

    budgets = by_kind(docs, "PodDisruptionBudget")
    assert set(budgets) == {"flowplane-server", "flowplane-worker"}
    assert all(selects(b["spec"]["selector"]["matchLabels"]) for b in budgets.values())
    policies = by_kind(docs, "NetworkPolicy")
    assert len(policies) >= 3
    assert all(selects(p["spec"]["podSelector"]["matchLabels"]) for p in policies.values())
    backend = by_kind(docs, "Ingress")["flowplane"]["spec"]["rules"][0]["http"]["paths"][0]
    assert backend["backend"]["service"]["name"] in by_kind(docs, "Service")
    secret = by_kind(docs, "Secret")["flowplane"]
    assert {"database-url", "identity.age", "admin-token"} <= set(secret["stringData"])
    assert {d["metadata"].get("namespace") for d in docs} == {"flowplane"}
