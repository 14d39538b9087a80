"""S3 Upload, List, Download and Delete through the engine, against moto in server mode.

moto's S3 (``ThreadedMotoServer``, started here on 127.0.0.1) is a local server
speaking the S3 REST protocol; boto3 in the tasks talks to it over HTTP through
``endpointOverride``. Authentication is switched on (moto's ``reset-auth``):
requests are checked against an IAM user's access key with SigV4, so a wrong
secret key fails the task as S3 would. Credentials always come from secrets,
and the tests check the secret key never reaches logs or outputs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer
from sqlalchemy import Engine

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from controlplane.services.polling import PollingTriggers
from controlplane.store.tables import utcnow
from tests.services.test_engine import logs, put_flow, run, task_runs, wait_for_end

RUNS: dict[str, str] = {
    "io.kestra.plugin.aws.s3.Upload": "test_upload_list_download_and_delete",
    "io.kestra.plugin.aws.s3.List": "test_upload_list_download_and_delete",
    "io.kestra.plugin.aws.s3.Download": "test_upload_list_download_and_delete",
    "io.kestra.plugin.aws.s3.Delete": "test_upload_list_download_and_delete",
}

REGION = "eu-west-1"
_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*", "sts:*"], "Resource": "*"}],
}


@dataclass(frozen=True)
class S3Server:
    """moto's server, and the IAM user whose key the flows sign with."""

    url: str
    access_key_id: str
    secret_key: str
    # A user allowed sts:AssumeRole and nothing else: its S3 calls must use the role.
    assumer: tuple[str, str] = ("", "")

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_key,
        )


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    setup = {
        "endpoint_url": url,
        "region_name": REGION,
        "aws_access_key_id": "setup",
        "aws_secret_access_key": "setup",
    }
    iam = boto3.client("iam", **setup)
    iam.create_user(UserName="flowplane")
    iam.put_user_policy(UserName="flowplane", PolicyName="s3", PolicyDocument=json.dumps(_POLICY))
    key = iam.create_access_key(UserName="flowplane")["AccessKey"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="reader", PolicyName="s3", PolicyDocument=json.dumps(_POLICY))
    iam.create_user(UserName="assumer")
    only_sts = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
    }
    iam.put_user_policy(UserName="assumer", PolicyName="sts", PolicyDocument=json.dumps(only_sts))
    assumer = iam.create_access_key(UserName="assumer")["AccessKey"]
    # From here on every request is authenticated and authorised against IAM.
    httpx.post(f"{url}/moto-api/reset-auth", content=b"0").raise_for_status()
    try:
        yield S3Server(
            url,
            key["AccessKeyId"],
            key["SecretAccessKey"],
            (assumer["AccessKeyId"], assumer["SecretAccessKey"]),
        )
    finally:
        httpx.post(f"{url}/moto-api/reset-auth", content=b"inf")
        httpx.post(f"{url}/moto-api/reset")
        server.stop()


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    name = f"flows-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return name


def _secrets(
    client: TestClient, server: S3Server, secret_key: str | None = None, *, assumer: bool = False
) -> None:
    key_id, secret = server.assumer if assumer else (server.access_key_id, server.secret_key)
    for key, value in {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_KEY_ID": secret_key or secret,
    }.items():
        response = client.put(f"/api/v1/namespaces/demo/secrets/{key}", json={"value": value})
        assert response.status_code in {200, 201}, response.text


CONNECTION = """\
    region: eu-west-1
    endpointOverride: "{{ inputs.endpoint }}"
    accessKeyId: "{{ secret('AWS_ACCESS_KEY_ID') }}"
    secretKeyId: "{{ secret('AWS_SECRET_KEY_ID') }}"
    bucket: "{{ inputs.bucket }}"
"""
INPUTS = """\
inputs:
  - {id: endpoint, type: STRING}
  - {id: bucket, type: STRING}
"""


def test_upload_list_download_and_delete(
    client: TestClient, s3_server: S3Server, bucket: str
) -> None:
    _secrets(client, s3_server)
    source = f"""\
id: s3
namespace: demo
{INPUTS}tasks:
  - id: files
    type: LocalFiles
    inputs:
      report.csv: "id,total\\n1,42\\n"
      notes.txt: "shipped"
    outputs: ["*"]
  - id: upload
    type: io.kestra.plugin.aws.s3.Upload
{CONNECTION}    from: "{{{{ outputs.files.uris['report.csv'] }}}}"
    key: reports/2024/report.csv
    contentType: text/csv
    metadata: {{team: data}}
    tagging: {{stage: raw}}
  - id: upload_many
    type: io.kestra.plugin.aws.s3.Upload
{CONNECTION}    from:
      - "{{{{ outputs.files.uris['report.csv'] }}}}"
      - "{{{{ outputs.files.uris['notes.txt'] }}}}"
    key: batch
  - id: list
    type: io.kestra.plugin.aws.s3.List
{CONNECTION}    prefix: reports/
    maxKeys: 1
    maxFiles: 10
  - id: download
    type: io.kestra.plugin.aws.s3.Download
{CONNECTION}    key: reports/2024/report.csv
  - id: download_batch
    type: io.kestra.plugin.aws.s3.Download
{CONNECTION}    prefix: batch/
    regexp: ".*\\\\.txt"
    delimiter: /
    marker: batch/a
    maxKeys: 1
    maxFiles: 5
  - id: delete
    type: io.kestra.plugin.aws.s3.Delete
{CONNECTION}    key: reports/2024/report.csv
  - id: after
    type: s3.List
{CONNECTION}    filter: FILES
"""
    put_flow(client, source)
    execution = run(client, "demo", "s3", endpoint=s3_server.url, bucket=bucket)
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    runs = {k: v["outputs"] for k, v in task_runs(execution).items()}

    upload = runs["upload"]
    assert (upload["bucket"], upload["key"]) == (bucket, "reports/2024/report.csv")
    assert upload["eTag"].strip('"')
    assert runs["upload_many"] == {"bucket": bucket}

    (listed,) = runs["list"]["objects"]
    assert (listed["key"], listed["size"]) == ("reports/2024/report.csv", 14)
    assert listed["etag"] == upload["eTag"]

    download = runs["download"]
    assert Path(download["uri"]).read_text() == "id,total\n1,42\n"
    assert download["contentType"] == "text/csv"
    assert download["contentLength"] == 14
    assert download["metadata"] == {"team": "data"}
    assert list(runs["download_batch"]["files"]) == ["batch/notes.txt"]
    assert Path(runs["download_batch"]["files"]["batch/notes.txt"]["uri"]).read_text() == "shipped"

    # What S3 holds: the deletion, the batch under its directory key, the tags.
    assert [o["key"] for o in runs["after"]["objects"]] == ["batch/notes.txt", "batch/report.csv"]
    assert "uploaded report.csv to s3://" + bucket + "/reports/2024/report.csv" in lines
    assert "deleted s3://" + bucket + "/reports/2024/report.csv" in lines

    # The secret key signs requests; it is in no log line and no output.
    assert s3_server.secret_key not in "\n".join(lines)
    assert s3_server.secret_key not in json.dumps(execution)


def test_tags_and_metadata_reach_s3(client: TestClient, s3_server: S3Server, bucket: str) -> None:
    _secrets(client, s3_server)
    source = f"""\
id: s3-tags
namespace: demo
{INPUTS}tasks:
  - id: files
    type: LocalFiles
    inputs: {{a.json: "{{}}"}}
    outputs: [a.json]
  - id: upload
    type: io.kestra.plugin.aws.s3.Upload
{CONNECTION}    from: "{{{{ outputs.files.uris['a.json'] }}}}"
    key: a.json
    cacheControl: no-cache
    tagging: {{stage: raw, owner: ops}}
    checksumAlgorithm: SHA256
"""
    put_flow(client, source)
    execution = run(client, "demo", "s3-tags", endpoint=s3_server.url, bucket=bucket)
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    s3 = s3_server.client()
    tags = s3.get_object_tagging(Bucket=bucket, Key="a.json")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("owner", "ops"), ("stage", "raw")]
    head = s3.head_object(Bucket=bucket, Key="a.json", ChecksumMode="ENABLED")
    assert head["CacheControl"] == "no-cache"
    assert head.get("ChecksumSHA256")


def test_sts_assume_role_credentials_are_used(
    client: TestClient, s3_server: S3Server, bucket: str
) -> None:
    s3_server.client().put_object(Bucket=bucket, Key="r.txt", Body=b"r")
    # The assumer's own keys may not list the bucket: the first run, without the role, fails.
    _secrets(client, s3_server, assumer=True)
    source = f"""\
id: s3-sts-plain
namespace: demo
{INPUTS}tasks:
  - id: list
    type: io.kestra.plugin.aws.s3.List
{CONNECTION}"""
    put_flow(client, source)
    execution = run(client, "demo", "s3-sts-plain", endpoint=s3_server.url, bucket=bucket)
    assert execution["state"] == "FAILED"
    assert any("AccessDenied" in line for line in logs(client, execution["id"]))
    source = f"""\
id: s3-sts
namespace: demo
{INPUTS}tasks:
  - id: list
    type: io.kestra.plugin.aws.s3.List
{CONNECTION}    stsRoleArn: arn:aws:iam::123456789012:role/reader
    stsRoleSessionName: nightly
    stsEndpointOverride: "{{{{ inputs.endpoint }}}}"
    stsRoleSessionDuration: PT1H
    stsRoleExternalId: nightly-job
    compatibilityMode: true
"""
    put_flow(client, source)
    execution = run(client, "demo", "s3-sts", endpoint=s3_server.url, bucket=bucket)
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert [o["key"] for o in task_runs(execution)["list"]["outputs"]["objects"]] == ["r.txt"]

    # Temporary credentials given as such: sessionToken goes with the key pair.
    sts_client = boto3.client(
        "sts",
        endpoint_url=s3_server.url,
        region_name=REGION,
        aws_access_key_id=s3_server.assumer[0],
        aws_secret_access_key=s3_server.assumer[1],
    )
    role = "arn:aws:iam::123456789012:role/reader"
    temporary = sts_client.assume_role(RoleArn=role, RoleSessionName="probe")["Credentials"]
    for key, value in {
        "AWS_ACCESS_KEY_ID": temporary["AccessKeyId"],
        "AWS_SECRET_KEY_ID": temporary["SecretAccessKey"],
        "AWS_SESSION_TOKEN": temporary["SessionToken"],
    }.items():
        client.put(f"/api/v1/namespaces/demo/secrets/{key}", json={"value": value})
    source = f"""\
id: s3-session
namespace: demo
{INPUTS}tasks:
  - id: list
    type: io.kestra.plugin.aws.s3.List
{CONNECTION}    sessionToken: "{{{{ secret('AWS_SESSION_TOKEN') }}}}"
"""
    put_flow(client, source)
    execution = run(client, "demo", "s3-session", endpoint=s3_server.url, bucket=bucket)
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert temporary["SessionToken"] not in json.dumps(execution)


def test_a_wrong_secret_key_fails_the_task(
    client: TestClient, s3_server: S3Server, bucket: str
) -> None:
    wrong = "not-" + s3_server.secret_key[4:]
    _secrets(client, s3_server, secret_key=wrong)
    source = f"""\
id: s3-denied
namespace: demo
{INPUTS}tasks:
  - id: list
    type: io.kestra.plugin.aws.s3.List
{CONNECTION}"""
    put_flow(client, source)
    execution = run(client, "demo", "s3-denied", endpoint=s3_server.url, bucket=bucket)
    lines = logs(client, execution["id"])
    assert execution["state"] == "FAILED"
    assert any("SignatureDoesNotMatch" in line for line in lines), lines
    assert wrong not in "\n".join(lines)


def test_from_must_be_a_file_of_this_execution(
    client: TestClient, s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    _secrets(client, s3_server)
    outside = tmp_path / "server-file.txt"
    outside.write_text("not for flows")
    source = f"""\
id: s3-outside
namespace: demo
{INPUTS}tasks:
  - id: upload
    type: io.kestra.plugin.aws.s3.Upload
{CONNECTION}    from: {outside}
    key: stolen.txt
"""
    put_flow(client, source)
    execution = run(client, "demo", "s3-outside", endpoint=s3_server.url, bucket=bucket)
    lines = logs(client, execution["id"])
    assert execution["state"] == "FAILED"
    assert any("is not a file of this execution" in line for line in lines), lines
    assert "Contents" not in s3_server.client().list_objects(Bucket=bucket)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("key: k\n    from: f\n    contentLength: 3", "contentLength is not supported"),
        ("key: k\n    from: f\n    checksum: abc", "checksum needs checksumAlgorithm"),
    ],
)
def test_unsupported_upload_properties_are_refused(extra: str, message: str) -> None:
    source = f"""\
id: s3-refused
namespace: demo
tasks:
  - id: upload
    type: io.kestra.plugin.aws.s3.Upload
    bucket: b
    {extra}
"""
    with pytest.raises(InvalidFlowError, match=message):
        validate_flow(source)


def test_download_needs_a_key_or_a_filter() -> None:
    source = """\
id: s3-download
namespace: demo
tasks:
  - {id: download, type: io.kestra.plugin.aws.s3.Download, bucket: b}
"""
    with pytest.raises(InvalidFlowError, match="give key to download one object"):
        validate_flow(source)


TRIGGER_RUNS: dict[str, str] = {
    "io.kestra.plugin.aws.s3.Trigger": "test_trigger_fires_once_per_new_object_and_moves_it",
}


def _trigger_flow(flow_id: str, server: S3Server, bucket: str, action: str) -> str:
    return f"""\
id: {flow_id}
namespace: demo
tasks:
  - id: say
    type: Log
    message: "new object {{{{ trigger.objects[0].key }}}} ({{{{ trigger.objects[0].size }}}} bytes)"
triggers:
  - id: arrivals
    type: io.kestra.plugin.aws.s3.Trigger
    region: {REGION}
    endpointOverride: {server.url}
    accessKeyId: "{{{{ secret('AWS_ACCESS_KEY_ID') }}}}"
    secretKeyId: "{{{{ secret('AWS_SECRET_KEY_ID') }}}}"
    bucket: {bucket}
    prefix: incoming/
    filter: FILES
    interval: PT1H
{action}"""


def _runs(client: TestClient, flow_id: str) -> list[dict[str, Any]]:
    items = client.get(
        "/api/v1/executions", params={"namespace": "demo", "flow_id": flow_id}
    ).json()
    return [wait_for_end(client, item["id"]) for item in items]


def test_trigger_fires_once_per_new_object_and_moves_it(
    client: TestClient, engine: Engine, s3_server: S3Server, bucket: str
) -> None:
    _secrets(client, s3_server)
    s3 = s3_server.client()
    s3.put_object(Bucket=bucket, Key="incoming/a.csv", Body=b"1,2\n")
    s3.put_object(Bucket=bucket, Key="incoming/b.csv", Body=b"3,4,5\n")
    action = "    action: MOVE\n    moveTo: {key: processed}\n"
    put_flow(client, _trigger_flow("s3-arrivals", s3_server, bucket, action))
    poller = PollingTriggers(engine, client.app.state.settings.data_dir)  # type: ignore[attr-defined]
    now = utcnow()
    poller.run_pass(now)
    poller.run_pass(now + timedelta(hours=2))  # nothing new under incoming/
    s3.put_object(Bucket=bucket, Key="incoming/c.csv", Body=b"6\n")
    poller.run_pass(now + timedelta(hours=4))

    runs = _runs(client, "s3-arrivals")
    assert all(r["state"] == "SUCCESS" for r in runs)
    keys = sorted(r["trigger"]["objects"][0]["key"] for r in runs)
    assert keys == ["incoming/a.csv", "incoming/b.csv", "incoming/c.csv"]
    said = sorted(line for r in runs for line in logs(client, r["id"]) if "new object" in line)
    assert said[0] == "new object incoming/a.csv (4 bytes)"
    listing = s3.list_objects(Bucket=bucket)["Contents"]
    assert sorted(o["Key"] for o in listing) == [
        "processed/a.csv",
        "processed/b.csv",
        "processed/c.csv",
    ]
    assert s3.get_object(Bucket=bucket, Key="processed/b.csv")["Body"].read() == b"3,4,5\n"
    assert s3_server.secret_key not in json.dumps(runs)


def test_trigger_without_action_fires_again_only_for_new_content(
    client: TestClient, engine: Engine, s3_server: S3Server, bucket: str
) -> None:
    _secrets(client, s3_server)
    s3 = s3_server.client()
    s3.put_object(Bucket=bucket, Key="incoming/a.csv", Body=b"first")
    put_flow(client, _trigger_flow("s3-watch", s3_server, bucket, "    action: NONE\n"))
    poller = PollingTriggers(engine, client.app.state.settings.data_dir)  # type: ignore[attr-defined]
    now = utcnow()
    poller.run_pass(now)
    poller.run_pass(now + timedelta(hours=2))  # the same object: no second run
    s3.put_object(Bucket=bucket, Key="incoming/a.csv", Body=b"second!")
    poller.run_pass(now + timedelta(hours=4))  # rewritten: a new ETag fires again
    runs = _runs(client, "s3-watch")
    assert sorted(r["trigger"]["objects"][0]["size"] for r in runs) == [5, 7]


def test_trigger_refuses_delete() -> None:
    source = """\
id: s3-delete
namespace: demo
tasks:
  - {id: say, type: Log, message: hi}
triggers:
  - {id: t, type: io.kestra.plugin.aws.s3.Trigger, bucket: b, action: DELETE}
"""
    with pytest.raises(InvalidFlowError, match="action DELETE is not supported"):
        validate_flow(source)


def test_object_properties_reach_s3_on_a_locked_versioned_bucket(
    client: TestClient, s3_server: S3Server
) -> None:
    _secrets(client, s3_server)
    bucket = f"locked-{uuid.uuid4().hex[:12]}"
    s3 = s3_server.client()
    s3.create_bucket(
        Bucket=bucket,
        CreateBucketConfiguration={"LocationConstraint": REGION},
        ObjectLockEnabledForBucket=True,
    )
    source = f"""\
id: s3-props
namespace: demo
{INPUTS}tasks:
  - id: files
    type: LocalFiles
    inputs: {{doc.txt: "v1"}}
    outputs: [doc.txt]
  - id: upload
    type: io.kestra.plugin.aws.s3.Upload
{CONNECTION}    from: "{{{{ outputs.files.uris['doc.txt'] }}}}"
    key: docs/doc.txt
    acl: public-read
    storageClass: STANDARD_IA
    serverSideEncryption: AES256
    contentEncoding: identity
    contentDisposition: attachment
    contentLanguage: en
    expires: "2030-01-01T00:00:00Z"
    expectedBucketOwner: "123456789012"
    requestPayer: requester
    objectLockMode: GOVERNANCE
    objectLockRetainUntilDate: "2030-01-01T00:00:00Z"
    objectLockLegalHoldStatus: "OFF"
  - id: download
    type: io.kestra.plugin.aws.s3.Download
{CONNECTION}    key: docs/doc.txt
    versionId: "{{{{ outputs.upload.versionId }}}}"
    expectedBucketOwner: "123456789012"
    requestPayer: requester
  - id: list
    type: io.kestra.plugin.aws.s3.List
{CONNECTION}    prefix: docs/
    delimiter: /
    marker: docs/a
    encodingType: url
    expectedBucketOwner: "123456789012"
    requestPayer: requester
  - id: delete
    type: io.kestra.plugin.aws.s3.Delete
{CONNECTION}    key: docs/doc.txt
    bypassGovernanceRetention: true
    requestPayer: requester
    mfa: "arn:aws:iam::123456789012:mfa/ops 123456"
"""
    put_flow(client, source)
    execution = run(client, "demo", "s3-props", endpoint=s3_server.url, bucket=bucket)
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    outputs = {k: v["outputs"] for k, v in task_runs(execution).items()}
    version = outputs["upload"]["versionId"]
    head = s3.head_object(Bucket=bucket, Key="docs/doc.txt", VersionId=version)
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["ServerSideEncryption"] == "AES256"
    assert (head["ContentDisposition"], head["ContentLanguage"]) == ("attachment", "en")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockLegalHoldStatus"] == "OFF"
    grants = s3.get_object_acl(Bucket=bucket, Key="docs/doc.txt", VersionId=version)["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("/global/AllUsers") for g in grants)
    assert outputs["download"]["versionId"] == version
    assert Path(outputs["download"]["uri"]).read_text() == "v1"
    assert [o["key"] for o in outputs["list"]["objects"]] == ["docs/doc.txt"]
    # A versioned bucket: deleting the key leaves a delete marker over the locked version.
    assert outputs["delete"]["deleteMarker"] is True
