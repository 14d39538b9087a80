"""Argo CD Sync and Status against a local server speaking Argo CD's REST API.

No Argo CD runs here. ``FakeArgoCD`` implements exactly the endpoints the
tasks call, with payloads written from Argo CD's API reference (swagger:
``applicationApplicationSyncRequest`` in, ``v1alpha1Application`` out;
grpc-gateway errors as ``{"error", "code", "message"}``). It models what a
sync does to an application: the API server records the operation, the
controller runs it (``operationState.phase`` Running, then Succeeded, the
``operation`` field cleared), and the resources turn Healthy a few reads later.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from tests.conftest import token_headers
from tests.plugins import fake_servers
from tests.plugins.fake_servers import FakeServer, Reply, Request, serve
from tests.services.test_engine import logs, put_flow, run, task_runs, wait_for_end

_PROMOTION = "test_template_promotes_one_revision_to_staging_then_prod"
RUNS = {
    "io.kestra.plugin.argocd.apps.Sync": _PROMOTION,
    "io.kestra.plugin.argocd.apps.Status": _PROMOTION,
}

NS = "platform.ops"
TOKEN = "argocd-T0ken-s3cr3t-0451"  # noqa: S105 - a fixture value
TEMPLATE = (
    Path(__file__).resolve().parents[2]
    / "flows-repo-template/flows/platform.ops/argocd-promote.yaml"
)
SYNC_READS = 2  # reads until the controller has run the sync operation
HEALTH_READS = 3  # further reads until the resources report Healthy


def _application(name: str) -> dict[str, Any]:
    """A ``v1alpha1Application`` as GET /api/v1/applications/{name} answers, OutOfSync."""
    return {
        "metadata": {"name": name, "namespace": "argocd", "resourceVersion": "1"},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://git.example/shop.git", "path": "deploy"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
        },
        "status": {
            "sync": {"status": "OutOfSync", "revision": "0000000"},
            "health": {"status": "Healthy"},
            "resources": [
                {
                    "group": "apps",
                    "version": "v1",
                    "kind": "Deployment",
                    "name": "shop",
                    "namespace": name,
                    "status": "OutOfSync",
                    "health": {"status": "Healthy"},
                },
            ],
            "conditions": [],
            "operationState": {"phase": "Succeeded", "message": "successfully synced"},
        },
    }


class FakeArgoCD:
    """Applications whose sync operations advance one step per successful read."""

    def __init__(self) -> None:
        self.apps = {name: _application(name) for name in ("shop-staging", "shop-prod")}
        self.reads = dict.fromkeys(self.apps, 0)
        self.flaky = 0  # how many of the next reads answer 503, as a proxy in front may
        self.lock = threading.Lock()

    def route(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            message = "invalid session: token signature is invalid"
            return Reply(401, {"error": message, "code": 16, "message": message})
        parts = request.path.strip("/").split("/")
        if parts[:3] != ["api", "v1", "applications"] or len(parts) not in {4, 5}:
            return Reply(404, {"error": "Not Found", "code": 5, "message": "Not Found"})
        name = parts[3]
        if name not in self.apps:
            message = f'applications.argoproj.io "{name}" not found'
            return Reply(404, {"error": message, "code": 5, "message": message})
        if len(parts) == 5 and parts[4] == "sync" and request.method == "POST":
            return self._sync(name, request.json())
        if len(parts) == 4 and request.method == "GET":
            return self._get(name)
        return Reply(405, {"error": "Method Not Allowed", "code": 12, "message": "unsupported"})

    def _sync(self, name: str, body: dict[str, Any]) -> Reply:
        # ApplicationSyncRequest: name, revision, dryRun, prune, strategy, ...
        assert body["name"] == name
        app = self.apps[name]
        revision = body.get("revision") or "HEAD"
        app["operation"] = {
            "sync": {
                "revision": revision,
                "prune": body.get("prune", False),
                "dryRun": body.get("dryRun", False),
            },
            "initiatedBy": {"username": "admin"},
        }
        status = app["status"]
        status["operationState"] = {
            "phase": "Running",
            "message": "one or more tasks are running",
            "operation": app["operation"],
        }
        status["sync"]["status"] = "OutOfSync"
        status["health"]["status"] = "Progressing"
        self.reads[name] = 0
        return Reply(200, app)

    def _get(self, name: str) -> Reply:
        if self.flaky:
            self.flaky -= 1
            return Reply(503, "upstream connect error", {"Content-Type": "text/plain"})
        app = self.apps[name]
        if app["status"]["health"]["status"] == "Progressing":
            self.reads[name] += 1
            status = app["status"]
            if self.reads[name] == SYNC_READS:
                revision = app.pop("operation")["sync"]["revision"]
                status["operationState"]["phase"] = "Succeeded"
                status["operationState"]["message"] = "successfully synced (all tasks run)"
                status["sync"] = {"status": "Synced", "revision": revision}
            if self.reads[name] == SYNC_READS + HEALTH_READS:
                status["health"]["status"] = "Healthy"
        return Reply(200, app)


@pytest.fixture
def argocd() -> Iterator[tuple[FakeArgoCD, FakeServer]]:
    fake = FakeArgoCD()
    with serve(fake.route) as server:
        yield fake, server


def _secrets(client: TestClient, server: str, token: str = TOKEN) -> None:
    for key, value in {
        "ARGOCD_SERVER": server,
        "ARGOCD_TOKEN": token,
        "SLACK_WEBHOOK_URL": f"{server}/slack",
    }.items():
        response = client.put(f"/api/v1/namespaces/{NS}/secrets/{key}", json={"value": value})
        assert response.status_code in {200, 201}, response.text


def _template() -> str:
    # The template polls every 10 s and retries after 5 s; the fake advances per read.
    return (
        TEMPLATE.read_text(encoding="utf-8").replace("PT10S", "PT0.05S").replace("PT5S", "PT0.05S")
    )


def test_template_promotes_one_revision_to_staging_then_prod(
    client: TestClient, argocd: tuple[FakeArgoCD, FakeServer]
) -> None:
    fake, server = argocd
    _secrets(client, server.url)
    put_flow(client, _template())
    paused = run(client, NS, "argocd-promote", revision="9f8e7d6")
    assert paused["state"] == "PAUSED", logs(client, paused["id"])
    staging = task_runs(paused)
    assert staging["sync_staging"]["outputs"]["syncStatus"] == "Synced"
    assert staging["sync_staging"]["outputs"]["revision"] == "9f8e7d6"
    assert staging["wait_staging"]["state"] == "SUCCESS"
    # Healthy only on the HEALTH_READS-th read after the sync ended: WaitFor polled.
    assert staging["wait_staging"]["outputs"]["iterationCount"] == HEALTH_READS
    syncs = [r for r in server.requests if r.method == "POST"]
    assert [r.path for r in syncs] == ["/api/v1/applications/shop-staging/sync"]
    assert syncs[0].json() == {
        "name": "shop-staging",
        "revision": "9f8e7d6",
        "prune": True,
        "dryRun": False,
    }
    assert fake.apps["shop-prod"]["status"]["sync"]["status"] == "OutOfSync"  # gate holds

    resumed = client.post(
        f"/api/v1/executions/{paused['id']}/resume",
        json={"inputs": {"reason": "staging is green"}},
        headers=token_headers(client, "alice"),
    )
    assert resumed.status_code == 200, resumed.text
    final = wait_for_end(client, paused["id"])
    lines = logs(client, paused["id"])
    assert final["state"] == "SUCCESS", lines
    assert fake.apps["shop-prod"]["status"]["sync"] == {"status": "Synced", "revision": "9f8e7d6"}
    assert fake.apps["shop-prod"]["status"]["health"]["status"] == "Healthy"
    assert "9f8e7d6 is live in prod: staging is green" in lines
    prod_sync = [r for r in server.requests if r.path.endswith("shop-prod/sync")]
    assert prod_sync[0].json()["revision"] == "9f8e7d6"
    # The token went only into the Authorization header; no log or output shows it.
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in server.requests)
    assert not [line for line in lines if TOKEN in line]
    assert TOKEN not in str(final["task_runs"]) + str(final["outputs"])


def test_status_retries_a_flaky_api_and_reads_every_output(
    client: TestClient, argocd: tuple[FakeArgoCD, FakeServer]
) -> None:
    fake, server = argocd
    _secrets(client, server.url)
    fake.flaky = 2
    source = f"""\
id: status
namespace: {NS}
tasks:
  - id: status
    type: io.kestra.plugin.argocd.apps.Status
    server: "{{{{ secret('ARGOCD_SERVER') }}}}"
    token: "{{{{ secret('ARGOCD_TOKEN') }}}}"
    application: shop-prod
    refresh: true
    retry: {{type: constant, interval: PT0.05S, maxAttempts: 3}}
"""
    put_flow(client, source)
    execution = run(client, NS, "status")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    status = task_runs(execution)["status"]
    assert status["attempt"] == 3  # two 503s, then an answer
    outputs = status["outputs"]
    assert (outputs["syncStatus"], outputs["healthStatus"], outputs["revision"]) == (
        "OutOfSync",
        "Healthy",
        "0000000",
    )
    assert outputs["resources"][0]["kind"] == "Deployment"
    assert outputs["conditions"] == []
    assert '"name": "shop-prod"' in outputs["rawOutput"]
    assert server.requests[-1].query == {"refresh": ["normal"]}
    assert any("answered 503" in line for line in logs(client, execution["id"]))


def test_a_failed_sync_operation_fails_the_task_with_argo_cds_message(
    client: TestClient, argocd: tuple[FakeArgoCD, FakeServer]
) -> None:
    fake, server = argocd
    _secrets(client, server.url, token="wrong-token")  # noqa: S106
    source = f"""\
id: broken
namespace: {NS}
tasks:
  - id: sync
    type: io.kestra.plugin.argocd.apps.Sync
    server: "{{{{ secret('ARGOCD_SERVER') }}}}"
    token: "{{{{ secret('ARGOCD_TOKEN') }}}}"
    application: shop-prod
    force: true
    dryRun: true
"""
    put_flow(client, source)
    unauthorized = run(client, NS, "broken")
    assert unauthorized["state"] == "FAILED"
    assert any(
        "Argo CD answered 401 to POST /api/v1/applications/shop-prod/sync: invalid session" in line
        for line in logs(client, unauthorized["id"])
    )

    _secrets(client, server.url)
    put_flow(client, source.replace("shop-prod", "shop-missing"))
    missing = run(client, NS, "broken")
    assert any('"shop-missing" not found' in line for line in logs(client, missing["id"]))

    # The controller reports the operation Failed: the task fails with its message.
    original = fake._get

    def failing(name: str) -> Reply:
        app = fake.apps[name]
        if app.get("operation"):
            app.pop("operation")
            app["status"]["operationState"] = {"phase": "Failed", "message": "hook PreSync failed"}
        return original(name)

    fake._get = failing  # type: ignore[method-assign]
    put_flow(client, source)
    failed = run(client, NS, "broken")
    assert failed["state"] == "FAILED"
    assert "sync of shop-prod ended Failed: hook PreSync failed" in logs(client, failed["id"])
    post = next(
        r
        for r in server.requests
        if r.method == "POST"
        and r.path.endswith("shop-prod/sync")
        and r.headers["authorization"] == f"Bearer {TOKEN}"
    )
    assert post.json() == {
        "name": "shop-prod",
        "prune": False,
        "dryRun": True,
        "strategy": {"hook": {"force": True}},
    }


def test_cli_only_properties_are_refused_at_validation() -> None:
    source = """\
id: cli
namespace: platform.ops
tasks:
  - id: sync
    type: io.kestra.plugin.argocd.apps.Sync
    server: argocd.example
    token: t
    application: shop
    containerImage: curlimages/curl
"""
    with pytest.raises(InvalidFlowError) as raised:
        validate_flow(source)
    assert "runs no argocd CLI container" in str(raised.value.problems)


def _self_signed() -> tuple[str, str]:
    """A CA-flagged self-signed certificate for 127.0.0.1 and its key, as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "argocd.test")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def _connection_flow(server: str, connection: str) -> str:
    """A Sync then a Status of shop-prod, both with the same connection properties."""
    tasks = ""
    for kind in ("Sync", "Status"):
        tasks += f"""\
  - id: {kind.lower()}
    type: io.kestra.plugin.argocd.apps.{kind}
    server: "{server}"
    token: "{{{{ secret('ARGOCD_TOKEN') }}}}"
    application: shop-prod
{connection}"""
    return f"id: conn\nnamespace: {NS}\ntasks:\n{tasks}"


def test_tls_and_plaintext_connection_properties(
    client: TestClient,
    argocd: tuple[FakeArgoCD, FakeServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, plain = argocd
    _secrets(client, plain.url)
    cert, key = _self_signed()
    (tmp_path / "cert.pem").write_text(cert, encoding="utf-8")
    (tmp_path / "key.pem").write_text(key, encoding="utf-8")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    class TLSServer(ThreadingHTTPServer):
        """The fake server's HTTP server, speaking HTTPS with the self-signed certificate."""

        def get_request(self) -> tuple[Any, Any]:
            sock, address = super().get_request()
            return tls.wrap_socket(sock, server_side=True), address

    monkeypatch.setattr(fake_servers, "ThreadingHTTPServer", TLSServer)
    with serve(fake.route) as secure:
        https = secure.url.replace("http://", "https://")
        indented = "\n".join(f"      {line}" for line in cert.strip().splitlines())
        variants = {
            # The certificate is unknown to the worker: verification fails both tasks.
            "": "FAILED",
            "    serverCert: |\n" + indented + "\n    grpcWeb: true\n": "SUCCESS",
            "    insecure: true\n": "SUCCESS",
        }
        for connection, state in variants.items():
            put_flow(client, _connection_flow(https, connection))
            execution = run(client, NS, "conn")
            lines = logs(client, execution["id"])
            assert execution["state"] == state, (connection, lines)
            if state == "FAILED":
                assert any("CERTIFICATE_VERIFY_FAILED" in line for line in lines), lines
            else:
                outputs = {k: r["outputs"] for k, r in task_runs(execution).items()}
                assert outputs["sync"]["syncStatus"] == "Synced"
                assert outputs["status"]["syncStatus"] == "Synced"
            if "grpcWeb" in connection:
                grpc = [line for line in lines if line.startswith("grpcWeb:")]
                assert len(grpc) == 2, lines  # one per task
        assert {r.method for r in secure.requests} == {"GET", "POST"}

    # plaintext: a server given without a scheme is reached over http, not https.
    hostport = plain.url.removeprefix("http://")
    plain.clear()
    put_flow(client, _connection_flow(hostport, "    plaintext: true\n"))
    execution = run(client, NS, "conn")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert [r.method for r in plain.requests][:1] == ["POST"]
    assert plain.requests[-1].path == "/api/v1/applications/shop-prod"
    put_flow(client, _connection_flow(hostport, ""))
    refused = run(client, NS, "conn")
    assert refused["state"] == "FAILED"  # https to a plain HTTP server
