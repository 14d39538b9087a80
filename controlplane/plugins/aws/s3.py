"""Kestra's S3 tasks through boto3: Upload, Download, List and Delete.

Names, properties and outputs follow ``io.kestra.plugin.aws.s3.*``. Files move
between tasks as stored files (``controlplane.plugins.serdes.support``): Upload
reads ``from`` (a path an earlier task output), Download writes the object
beside the task's other stored files and outputs its path as ``uri``.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlencode

from pydantic import Field, model_validator

from controlplane.domain.fields import DynBool, DynInt, Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError, refuse
from controlplane.plugins.aws.connection import AwsConnection

_PREFIX = "io.kestra.plugin.aws.s3."
# Kestra's ChecksumAlgorithm enum, in boto3's spelling.
_CHECKSUMS = {"SHA1": "SHA1", "SHA256": "SHA256", "CRC32": "CRC32", "CRC32_C": "CRC32C"}
_JSON_ARRAY = re.compile(r"^\s*\[.*]\s*$", re.DOTALL)


class _S3Object(TaskBase, AwsConnection):
    """The properties every S3 object task has (Kestra's ``AbstractS3Object``)."""

    bucket: Text
    requestPayer: Text | None = None  # noqa: N815 - Kestra's field name

    def s3(self, context: RunContext) -> Any:
        """A boto3 S3 client for this task."""
        return self.aws_client(context, "s3")

    def text(self, context: RunContext, value: Any) -> str | None:
        """A rendered optional property."""
        return str(context.render(value)) if value is not None else None

    def call(self, what: str, function: Any, **request: Any) -> Any:
        """One S3 call; an error fails the task with S3's code and message."""
        return s3_call(what, function, **request)


class Upload(_S3Object):
    """Upload one or more stored files to an S3 bucket."""

    TYPE = _PREFIX + "Upload"
    ALIASES = ("s3.Upload",)
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "bucket": "the bucket",
        "key": "the object's key (one file only)",
        "eTag": "the object's ETag (one file only)",
        "versionId": "the object's version (one file only, on a versioned bucket)",
    }

    from_: Annotated[Text | list[Text], Field(alias="from")]
    key: Text
    metadata: dict[str, Text] | None = None
    cacheControl: Text | None = None  # noqa: N815 - Kestra's field names
    contentType: Text | None = None  # noqa: N815
    contentEncoding: Text | None = None  # noqa: N815
    contentDisposition: Text | None = None  # noqa: N815
    contentLanguage: Text | None = None  # noqa: N815
    expires: Text | None = None
    acl: Text | None = None
    storageClass: Text | None = None  # noqa: N815
    serverSideEncryption: Text | None = None  # noqa: N815
    checksumAlgorithm: Literal["SHA1", "SHA256", "CRC32", "CRC32_C"] | None = None  # noqa: N815
    checksum: Text | None = None
    expectedBucketOwner: Text | None = None  # noqa: N815
    objectLockMode: Text | None = None  # noqa: N815
    objectLockLegalHoldStatus: Text | None = None  # noqa: N815
    objectLockRetainUntilDate: Text | None = None  # noqa: N815
    tagging: dict[str, Text] | None = None

    @model_validator(mode="before")
    @classmethod
    def _refused(cls, values: Any) -> Any:
        return refuse(
            values,
            {
                "contentLength": "the length is the file's own",
                "bucketKeyEnabled": "set S3 Bucket Keys in the bucket's default encryption",
            },
        )

    @model_validator(mode="after")
    def _checksum_needs_its_algorithm(self) -> Upload:
        if self.checksum is not None and self.checksumAlgorithm is None:
            raise ValueError("checksum needs checksumAlgorithm, which names its algorithm")
        return self

    def run(self, context: RunContext) -> dict[str, Any]:
        """Upload each file; several files go under ``key`` as a directory."""
        bucket = str(context.render(self.bucket))
        key = str(context.render(self.key))
        sources = _sources(context.render(self.from_))
        client = self.s3(context)
        extra = self._extra_args(context)
        for source in sources:
            name = PurePosixPath(source).name
            target = key if len(sources) == 1 else str(PurePosixPath(key) / name)
            with context.open_file(source) as handle:
                self.call(
                    f"upload to s3://{bucket}/{target}",
                    client.upload_fileobj,
                    Fileobj=handle,
                    Bucket=bucket,
                    Key=target,
                    ExtraArgs=extra or None,
                )
            context.log("INFO", f"uploaded {name} to s3://{bucket}/{target}")
        if len(sources) > 1:
            return {"bucket": bucket}
        head = self.call(
            "HeadObject",
            client.head_object,
            Bucket=bucket,
            Key=key,
            ExpectedBucketOwner=extra.get("ExpectedBucketOwner"),
            RequestPayer=extra.get("RequestPayer"),
        )
        return _without_none(
            {
                "bucket": bucket,
                "key": key,
                "eTag": head.get("ETag"),
                "versionId": head.get("VersionId"),
            }
        )

    def _extra_args(self, context: RunContext) -> dict[str, Any]:
        """boto3's ``ExtraArgs`` for the properties that are set."""

        def text(value: str | None) -> str | None:
            return self.text(context, value)

        extra: dict[str, Any] = {
            "RequestPayer": text(self.requestPayer),
            "CacheControl": text(self.cacheControl),
            "ContentType": text(self.contentType),
            "ContentEncoding": text(self.contentEncoding),
            "ContentDisposition": text(self.contentDisposition),
            "ContentLanguage": text(self.contentLanguage),
            "Expires": text(self.expires),
            "ACL": text(self.acl),
            "StorageClass": text(self.storageClass),
            "ServerSideEncryption": text(self.serverSideEncryption),
            "ExpectedBucketOwner": text(self.expectedBucketOwner),
            "ObjectLockMode": text(self.objectLockMode),
            "ObjectLockLegalHoldStatus": text(self.objectLockLegalHoldStatus),
            "ObjectLockRetainUntilDate": text(self.objectLockRetainUntilDate),
        }
        if self.metadata is not None:
            extra["Metadata"] = {k: str(context.render(v)) for k, v in self.metadata.items()}
        if self.tagging is not None:
            tags = {k: str(context.render(v)) for k, v in self.tagging.items()}
            extra["Tagging"] = urlencode(tags)
        if self.checksumAlgorithm is not None:
            algorithm = _CHECKSUMS[self.checksumAlgorithm]
            extra["ChecksumAlgorithm"] = algorithm
            if self.checksum is not None:
                extra[f"Checksum{algorithm}"] = text(self.checksum)
        return {k: v for k, v in extra.items() if v is not None}


class _Listing(_S3Object):
    """Listing properties (Kestra's ``ListInterface``), shared by List and multi-file Download."""

    prefix: Text | None = None
    delimiter: Text | None = None
    marker: Text | None = None
    maxKeys: DynInt = 1000  # noqa: N815 - Kestra's field names
    expectedBucketOwner: Text | None = None  # noqa: N815
    regexp: Text | None = None
    maxFiles: DynInt = 25  # noqa: N815

    def listed(
        self, context: RunContext, client: Any, kind: str, encoding: str | None = None
    ) -> list[dict[str, Any]]:
        """The matching objects, ``kind`` FILES, DIRECTORY or BOTH, at most ``maxFiles``."""
        bucket = str(context.render(self.bucket))
        pattern = str(context.render(self.regexp)) if self.regexp else None
        request = {
            "Bucket": bucket,
            "Prefix": self.text(context, self.prefix),
            "Delimiter": self.text(context, self.delimiter),
            "Marker": self.text(context, self.marker),
            "MaxKeys": int(context.render(self.maxKeys)),
            "EncodingType": encoding,
            "RequestPayer": self.text(context, self.requestPayer),
            "ExpectedBucketOwner": self.text(context, self.expectedBucketOwner),
        }
        objects = list_objects(client, request, kind, pattern)
        limit = int(context.render(self.maxFiles))
        if len(objects) > limit:
            context.log(
                "WARN",
                f"the listing found {len(objects)} objects but maxFiles is {limit}: only the "
                f"first {limit} are returned; raise maxFiles for more",
            )
            objects = objects[:limit]
        return objects


class List(_Listing):
    """List the objects of an S3 bucket, optionally under a prefix or matching a regexp."""

    TYPE = _PREFIX + "List"
    ALIASES = ("s3.List",)
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "objects": "the objects: key, etag, size, lastModified, owner"
    }

    encodingType: Text | None = None  # noqa: N815 - Kestra's field names
    filter: Literal["FILES", "DIRECTORY", "BOTH"] = "BOTH"

    def run(self, context: RunContext) -> dict[str, Any]:
        """List the objects."""
        client = self.s3(context)
        objects = self.listed(context, client, self.filter, self.text(context, self.encodingType))
        context.log("INFO", f"found {len(objects)} objects in s3://{context.render(self.bucket)}")
        return {"objects": objects}


class Download(_Listing):
    """Download one object (``key``), or every object a prefix, delimiter or regexp selects."""

    TYPE = _PREFIX + "Download"
    ALIASES = ("s3.Download",)
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "uri": "the downloaded file (one object)",
        "eTag": "the object's ETag",
        "contentLength": "its size in bytes",
        "contentType": "its content type",
        "metadata": "its user metadata",
        "versionId": "its version",
        "files": "per key, the same fields (prefix, delimiter or regexp given)",
    }

    key: Text | None = None
    versionId: Text | None = None  # noqa: N815 - Kestra's field names

    @model_validator(mode="after")
    def _one_mode(self) -> Download:
        if (
            self.key is None
            and self.prefix is None
            and self.delimiter is None
            and (self.regexp is None)
        ):
            raise ValueError(
                "give key to download one object, or prefix, delimiter or regexp for several"
            )
        return self

    def run(self, context: RunContext) -> dict[str, Any]:
        """Download into this task's stored files."""
        client = self.s3(context)
        multiple = self.prefix is not None or self.delimiter is not None or self.regexp is not None
        if not multiple:
            return self._download(context, client, str(context.render(self.key)))
        objects = self.listed(context, client, "FILES")
        if not objects:
            context.log("WARN", "no objects match the filter")
        names: set[str] = set()
        files = {o["key"]: self._download(context, client, o["key"], names) for o in objects}
        return {"files": files}

    def _download(
        self, context: RunContext, client: Any, key: str, names: set[str] | None = None
    ) -> dict[str, Any]:
        bucket = str(context.render(self.bucket))
        name = _unique(PurePosixPath(key).name or "object", names if names is not None else set())
        response = self.call(
            f"GetObject s3://{bucket}/{key}",
            client.get_object,
            Bucket=bucket,
            Key=key,
            VersionId=self.text(context, self.versionId),
            RequestPayer=self.text(context, self.requestPayer),
            ExpectedBucketOwner=self.text(context, self.expectedBucketOwner),
        )
        with tempfile.NamedTemporaryFile(dir=context.working_dir, delete=False) as handle:
            for chunk in response["Body"].iter_chunks(1024 * 1024):
                handle.write(chunk)
            size = handle.tell()
        uri = context.put_file(Path(handle.name), name)
        context.log("INFO", f"downloaded s3://{bucket}/{key} ({size} bytes)")
        return _without_none(
            {
                "uri": uri,
                "eTag": response.get("ETag"),
                "contentLength": response.get("ContentLength"),
                "contentType": response.get("ContentType"),
                "metadata": response.get("Metadata") or {},
                "versionId": response.get("VersionId"),
            }
        )


class Delete(_S3Object):
    """Delete one S3 object."""

    TYPE = _PREFIX + "Delete"
    ALIASES = ("s3.Delete",)
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "versionId": "the version of the delete marker, on a versioned bucket",
        "deleteMarker": "whether a delete marker was created or removed",
        "requestCharged": "set when the requester was charged",
    }

    key: Text
    bypassGovernanceRetention: DynBool | None = None  # noqa: N815 - Kestra's field names
    mfa: Text | None = None

    def run(self, context: RunContext) -> dict[str, Any]:
        """Delete the object (S3 answers the same whether it existed or not)."""
        bucket = str(context.render(self.bucket))
        key = str(context.render(self.key))
        bypass = context.render(self.bypassGovernanceRetention)
        response = self.call(
            f"DeleteObject s3://{bucket}/{key}",
            self.s3(context).delete_object,
            Bucket=bucket,
            Key=key,
            MFA=self.text(context, self.mfa),
            RequestPayer=self.text(context, self.requestPayer),
            BypassGovernanceRetention=_flag(bypass) if bypass is not None else None,
        )
        context.log("INFO", f"deleted s3://{bucket}/{key}")
        return _without_none(
            {
                "versionId": response.get("VersionId"),
                "deleteMarker": response.get("DeleteMarker"),
                "requestCharged": response.get("RequestCharged"),
            }
        )


def s3_call(what: str, function: Any, **request: Any) -> Any:
    """One S3 call, None arguments left out; an error fails with S3's code and message."""
    try:
        return function(**{k: v for k, v in request.items() if v is not None})
    except Exception as exc:  # noqa: BLE001 - botocore raises many kinds
        raise TaskFailedError(f"S3 {what} failed: {_describe(exc)}") from None


def list_objects(
    client: Any, request: dict[str, Any], kind: str, regexp: str | None
) -> list[dict[str, Any]]:
    """Every page of ListObjects, as Kestra's ``S3Object``s, filtered by kind and regexp.

    ``kind`` is FILES (keys not ending in ``/``), DIRECTORY (keys that do) or
    BOTH; ``regexp`` must match the whole key.
    """
    pattern = re.compile(regexp) if regexp else None
    request = dict(request)
    objects: list[dict[str, Any]] = []
    while True:
        page = s3_call(f"ListObjects of s3://{request['Bucket']}", client.list_objects, **request)
        for item in page.get("Contents") or []:
            key = item["Key"]
            is_dir = key.endswith("/")
            if (kind == "FILES" and is_dir) or (kind == "DIRECTORY" and not is_dir):
                continue
            if pattern is not None and not pattern.fullmatch(key):
                continue
            objects.append(_object(item))
        if not page.get("IsTruncated"):
            return objects
        request["Marker"] = page.get("NextMarker") or page["Contents"][-1]["Key"]


def _sources(value: Any) -> list[str]:
    """``from`` as Kestra reads it: one file, a list, or a JSON array in a string."""
    if isinstance(value, list):
        sources = [str(v) for v in value]
    elif isinstance(value, str) and _JSON_ARRAY.match(value):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            raise TaskFailedError("from looks like a JSON array but does not parse") from None
        sources = [str(v) for v in parsed]
    else:
        sources = [str(value)]
    if not sources:
        raise TaskFailedError("No files to upload: from is an empty array")
    return sources


def _unique(name: str, used: set[str]) -> str:
    """``name``, or ``<n>-<name>`` when another object of the same download took it."""
    candidate, counter = name, 1
    while candidate in used:
        candidate, counter = f"{counter}-{name}", counter + 1
    used.add(candidate)
    return candidate


def _object(item: dict[str, Any]) -> dict[str, Any]:
    """Kestra's ``S3Object`` of a listing entry."""
    owner = item.get("Owner")
    modified = item.get("LastModified")
    return _without_none(
        {
            "key": item["Key"],
            "etag": item.get("ETag"),
            "size": item.get("Size"),
            "lastModified": modified.isoformat() if modified is not None else None,
            "owner": (
                {"id": owner.get("ID"), "displayName": owner.get("DisplayName")} if owner else None
            ),
        }
    )


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def _describe(exc: Exception) -> str:
    """S3's error code and message when it sent them; the exception otherwise."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return f"{error.get('Code', '?')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"
