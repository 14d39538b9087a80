"""``/api/v1/namespaces/{ns}/kv`` and ``/files``: scopes, bounds, round trips, masking."""

from __future__ import annotations

import base64
import hashlib

import pytest

from controlplane.services.namespace_files import read_namespace_files
from controlplane.services.sealing import seal
from controlplane.store import kv as kv_store
from controlplane.store.db import transaction
from tests.conftest import token_headers

KV = "/api/v1/namespaces/team.a/kv"
FILES = "/api/v1/namespaces/team.a/files"


def test_kv_round_trip_list_and_delete(client):
    created = client.put(f"{KV}/region", json={"value": "eu-west-1", "description": "where"})
    assert created.status_code == 201, created.text
    assert created.json()["value"] == "eu-west-1"
    replaced = client.put(f"{KV}/region", json={"value": {"name": "eu", "zones": [1, 2]}})
    assert replaced.status_code == 200
    read = client.get(f"{KV}/region").json()
    assert read["value"] == {"name": "eu", "zones": [1, 2]}
    assert read["description"] is None
    assert read["sealed"] is False
    client.put(f"{KV}/a.first", json={"value": 1}).raise_for_status()
    assert [e["key"] for e in client.get(KV).json()] == ["a.first", "region"]
    assert client.delete(f"{KV}/region").status_code == 204
    assert client.get(f"{KV}/region").status_code == 404
    assert client.delete(f"{KV}/region").status_code == 404


def test_kv_internal_keys_stay_hidden_and_bad_keys_are_422(client, engine):
    with transaction(engine) as session:
        kv_store.put_entry(session, "team.a", "state:flow", {"x": 1})
    assert client.get(KV).json() == []
    assert client.get(f"{KV}/state:flow").status_code == 422
    assert client.put(f"{KV}/-dash", json={"value": 1}).status_code == 422
    nul = client.put(f"{KV}/ok", json={"value": "a\u0000b"})
    assert nul.status_code == 422
    assert client.put(f"{KV}/ok", json={"valu": 1}).status_code == 422


def test_kv_sealed_values_are_masked_and_cannot_be_written(client, engine):
    with transaction(engine) as session:
        sealed = seal(session, {"v": "hunter2-Secret"}, ["v"])["v"]
        kv_store.put_entry(session, "team.a", "token", sealed)
        kv_store.put_entry(session, "team.a", "mixed", {"user": "ops", "password": sealed})
    token = client.get(f"{KV}/token")
    assert token.status_code == 200
    assert token.json()["value"] == "******"
    assert token.json()["sealed"] is True
    mixed = client.get(f"{KV}/mixed").json()
    assert mixed["value"] == {"user": "ops", "password": "******"}
    assert mixed["sealed"] is True
    listing = client.get(KV).text
    assert "hunter2" not in listing
    assert sealed["sealed"] not in listing
    # Only the runtime seals: a copied ciphertext is refused.
    forged = client.put(f"{KV}/forged", json={"value": {"nested": sealed}})
    assert forged.status_code == 422
    assert client.get(f"{KV}/forged").status_code == 404


def test_kv_and_files_enforce_role_and_scope(client):
    client.put(f"{KV}/k", json={"value": 1}).raise_for_status()
    client.put(f"{FILES}/f.txt", json={"content": "x"}).raise_for_status()
    outside = token_headers(client, "other-team", role="editor", namespaces=("team.b",))
    for method, path in (
        ("GET", KV),
        ("GET", f"{KV}/k"),
        ("PUT", f"{KV}/k"),
        ("DELETE", f"{KV}/k"),
        ("GET", FILES),
        ("GET", f"{FILES}/f.txt"),
        ("PUT", f"{FILES}/f.txt"),
        ("DELETE", f"{FILES}/f.txt"),
    ):
        body = {"value": 2} if "/kv" in path else {"content": "y"}
        response = client.request(
            method, path, headers=outside, json=body if method == "PUT" else None
        )
        assert response.status_code == 403, (method, path, response.text)
    viewer = token_headers(client, "reader", role="viewer", namespaces=("team.*",))
    assert client.get(f"{KV}/k", headers=viewer).status_code == 200
    assert client.get(f"{FILES}/f.txt", headers=viewer).status_code == 200
    assert client.put(f"{KV}/k", json={"value": 3}, headers=viewer).status_code == 403
    assert client.put(f"{FILES}/f.txt", json={"content": "z"}, headers=viewer).status_code == 403
    assert client.get(f"{KV}/k").json()["value"] == 1
    assert read_namespace_files(client.app.state.engine, "team.a") == {"f.txt": b"x"}


def test_files_round_trip_text_and_bytes(client, engine):
    text = "print('hello')\n"
    created = client.put(f"{FILES}/scripts/etl.py", json={"content": text})
    assert created.status_code == 201, created.text
    meta = created.json()
    assert meta["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert meta["size"] == len(text)
    again = client.put(f"{FILES}/scripts/etl.py", json={"content": text})
    assert again.status_code == 200
    assert again.json()["updated_at"] == meta["updated_at"]
    binary = bytes(range(256))
    put = client.put(
        f"{FILES}/data/blob.bin", json={"content_base64": base64.b64encode(binary).decode()}
    )
    assert put.status_code == 201
    got = client.get(f"{FILES}/data/blob.bin").json()
    assert base64.b64decode(got["content_base64"]) == binary
    assert [f["path"] for f in client.get(FILES).json()] == ["data/blob.bin", "scripts/etl.py"]
    assert read_namespace_files(engine, "team.a") == {
        "data/blob.bin": binary,
        "scripts/etl.py": text.encode(),
    }
    assert read_namespace_files(engine, "team.b") == {}
    assert client.delete(f"{FILES}/scripts/etl.py").status_code == 204
    assert client.get(f"{FILES}/scripts/etl.py").status_code == 404
    assert client.delete(f"{FILES}/scripts/etl.py").status_code == 404
    assert client.get(f"{FILES}/nope.txt").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "%2e%2e/escape.txt",
        "a/%2e%2e/%2e%2e/escape.txt",
        "%2Fetc/passwd",
        "a/%00b.txt",
        "a//b.txt",
        "a/%2e/b.txt",
        "a%5Cb.txt",
    ],
)
def test_files_refuse_paths_outside_the_namespace(client, engine, path):
    for method in ("PUT", "GET", "DELETE"):
        response = client.request(
            method, f"{FILES}/{path}", json={"content": "x"} if method == "PUT" else None
        )
        assert response.status_code == 422, (method, path, response.text)
    assert read_namespace_files(engine, "team.a") == {}


def test_files_bad_bodies_are_refused(client):
    both = client.put(f"{FILES}/a.txt", json={"content": "x", "content_base64": "eA=="})
    assert both.status_code == 422
    assert client.put(f"{FILES}/a.txt", json={}).status_code == 422
    assert client.put(f"{FILES}/a.txt", json={"content_base64": "not base64!"}).status_code == 422
    assert client.put(f"{FILES}/a.txt", json={"content": "a\u0000b"}).status_code == 422
    limit = client.app.state.settings.max_body_bytes
    big = client.put(f"{FILES}/big.txt", json={"content": "x" * (limit + 1)})
    assert big.status_code == 413
    assert client.get(f"{FILES}/a.txt").status_code == 404
