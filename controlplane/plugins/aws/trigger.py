"""``io.kestra.plugin.aws.s3.Trigger``: start a run for each new object in a bucket.

Every ``interval`` the trigger lists the bucket (``prefix``, ``regexp``,
``filter``, as ``s3.List``) and fires once per object, keyed by its key and
ETag: an object already fired for does not fire again, whichever server polls,
and one rewritten with new content fires anew. The run sees the object as
``trigger.objects`` (a list of one ``S3Object``: key, etag, size,
lastModified, owner), Kestra's shape.

``action`` is Kestra's: ``NONE`` leaves the objects, ``MOVE`` copies each to
``moveTo`` (``<moveTo.key>/<file name>``, in ``moveTo.bucket`` or the same
bucket) and deletes the original, before the run starts. Kestra's trigger
downloads each object into internal storage first (``objects[].uri``);
Flowplane's polls have no execution to store files in, so the run reads the
object itself (``s3.Download``), and ``DELETE``, which would remove it first,
is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, ClassVar, Literal

from pydantic import model_validator

from controlplane.domain.fields import DynInt, StrictModel, Text
from controlplane.domain.polling import Fire, PollingTrigger, TriggerContext
from controlplane.plugins.aws.connection import AwsConnection
from controlplane.plugins.aws.s3 import list_objects, s3_call


class MoveTo(StrictModel):
    """Where ``action: MOVE`` puts an object (Kestra's ``CopyObject``)."""

    key: Text
    bucket: Text | None = None


class Trigger(PollingTrigger, AwsConnection):
    """Start a run for each new object of an S3 bucket (under a prefix, matching a regexp)."""

    TYPE: ClassVar[str] = "io.kestra.plugin.aws.s3.Trigger"
    ALIASES: ClassVar[tuple[str, ...]] = ("s3.Trigger",)
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "objects": "the new object, as a list of one S3Object (key, etag, size, lastModified)"
    }

    bucket: Text
    requestPayer: Text | None = None  # noqa: N815 - Kestra's field names
    prefix: Text | None = None
    delimiter: Text | None = None
    marker: Text | None = None
    encodingType: Text | None = None  # noqa: N815
    maxKeys: DynInt = 1000  # noqa: N815
    expectedBucketOwner: Text | None = None  # noqa: N815
    regexp: Text | None = None
    filter: Literal["FILES", "DIRECTORY", "BOTH"] = "BOTH"
    action: Literal["NONE", "MOVE", "DELETE"]
    moveTo: MoveTo | None = None  # noqa: N815

    @model_validator(mode="before")
    @classmethod
    def _refused(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("action") == "DELETE":
            raise ValueError(
                "action DELETE is not supported: Flowplane's trigger does not download the "
                "object first, so it would be gone before the run reads it; use MOVE (the "
                "run downloads it from moveTo), or delete it in the flow with s3.Delete"
            )
        return values

    @model_validator(mode="after")
    def _move_needs_a_target(self) -> Trigger:
        if self.action == "MOVE" and self.moveTo is None:
            raise ValueError("action MOVE needs moveTo (its key, and optionally its bucket)")
        return self

    def poll(self, context: TriggerContext) -> list[Fire] | None:
        """List the bucket; fire once per object and ETag; then apply the action."""
        client = self.aws_client(context, "s3")
        bucket = str(context.render(self.bucket))

        def text(value: Any) -> str | None:
            return str(context.render(value)) if value is not None else None

        request = {
            "Bucket": bucket,
            "Prefix": text(self.prefix),
            "Delimiter": text(self.delimiter),
            "Marker": text(self.marker),
            "EncodingType": text(self.encodingType),
            "MaxKeys": int(context.render(self.maxKeys)),
            "RequestPayer": text(self.requestPayer),
            "ExpectedBucketOwner": text(self.expectedBucketOwner),
        }
        objects = list_objects(client, request, self.filter, text(self.regexp))
        fires = [
            Fire(key=f"s3://{bucket}/{o['key']}@{o.get('etag', '')}", variables={"objects": [o]})
            for o in objects
        ]
        if self.action == "MOVE" and self.moveTo is not None:
            target_bucket = text(self.moveTo.bucket) or bucket
            directory = str(context.render(self.moveTo.key)).rstrip("/")
            for item in objects:
                target = f"{directory}/{PurePosixPath(item['key']).name}"
                s3_call(
                    f"move of s3://{bucket}/{item['key']}",
                    client.copy_object,
                    Bucket=target_bucket,
                    Key=target,
                    CopySource={"Bucket": bucket, "Key": item["key"]},
                    RequestPayer=request["RequestPayer"],
                )
                s3_call(
                    f"delete of s3://{bucket}/{item['key']}",
                    client.delete_object,
                    Bucket=bucket,
                    Key=item["key"],
                    RequestPayer=request["RequestPayer"],
                )
                context.log(
                    "INFO", f"moved s3://{bucket}/{item['key']} to s3://{target_bucket}/{target}"
                )
        return fires
