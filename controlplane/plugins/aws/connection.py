"""The AWS connection every Kestra AWS task shares: credentials, region, endpoint, STS role.

Properties and defaults follow Kestra's ``AbstractConnection``. Without
``accessKeyId`` the worker's own credential chain is used (environment,
``~/.aws``, instance role), as Kestra's default provider does; a flow that
must not use the worker's identity names its keys, from secrets.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar, Protocol

from controlplane.domain.durations import parse_duration
from controlplane.domain.fields import DynBool, DynDuration, StrictModel, Text
from controlplane.plugins.api import TaskFailedError, require_extra

_LOCK = threading.Lock()
# Reading botocore's service models takes ~0.6 s per session; one loader caches them for all.
_LOADER: list[Any] = []
# Kestra's AWS_MIN_STS_ROLE_SESSION_DURATION, the shortest session STS grants.
_MIN_STS_SESSION = "PT15M"


class Renders(Protocol):
    """What the connection needs of a task's run context or a trigger's poll context."""

    def render(self, value: Any) -> Any:
        """``value`` with its templates rendered."""
        ...


class AwsConnection(StrictModel):
    """Kestra's AWS connection properties (``io.kestra.plugin.aws.AbstractConnection``).

    A mixin of the task types and the trigger, which name their ``TYPE``.
    """

    TYPE: ClassVar[str] = ""

    region: Text | None = None
    endpointOverride: Text | None = None  # noqa: N815 - Kestra's field names
    # Kestra picks its SDK's plainer client with it; boto3 has only that one, so
    # both values behave the same (docs/plugins/aws.md).
    compatibilityMode: DynBool = False  # noqa: N815
    accessKeyId: Text | None = None  # noqa: N815
    secretKeyId: Text | None = None  # noqa: N815
    sessionToken: Text | None = None  # noqa: N815
    stsRoleArn: Text | None = None  # noqa: N815
    stsRoleExternalId: Text | None = None  # noqa: N815
    stsRoleSessionName: Text | None = None  # noqa: N815
    stsEndpointOverride: Text | None = None  # noqa: N815
    stsRoleSessionDuration: DynDuration = _MIN_STS_SESSION  # noqa: N815

    def aws_client(self, context: Renders, service: str) -> Any:
        """A boto3 client for ``service`` with this task's credentials and endpoint."""
        boto3 = require_extra("boto3", "aws", self.TYPE)
        config = require_extra("botocore.config", "aws", self.TYPE)

        def text(value: str | None) -> str | None:
            return str(context.render(value)) if value is not None else None

        session = boto3.session.Session(
            botocore_session=_botocore_session(self.TYPE),
            aws_access_key_id=text(self.accessKeyId),
            aws_secret_access_key=text(self.secretKeyId),
            aws_session_token=text(self.sessionToken),
            region_name=text(self.region),
        )
        if self.stsRoleArn is not None:
            session = self._assume_role(session, context, text)
        with _LOCK:  # botocore sessions are not thread-safe while they build clients
            return session.client(
                service,
                endpoint_url=text(self.endpointOverride),
                config=config.Config(retries={"max_attempts": 3, "mode": "standard"}),
            )

    def _assume_role(self, session: Any, context: Renders, text: Any) -> Any:
        """A session with the temporary credentials of ``stsRoleArn`` (STS AssumeRole)."""
        boto3 = require_extra("boto3", "aws", self.TYPE)
        seconds = parse_duration(str(context.render(self.stsRoleSessionDuration))).total_seconds()
        request: dict[str, Any] = {
            "RoleArn": text(self.stsRoleArn),
            "RoleSessionName": text(self.stsRoleSessionName) or "flowplane",
            "DurationSeconds": int(seconds),
        }
        if self.stsRoleExternalId is not None:
            request["ExternalId"] = text(self.stsRoleExternalId)
        with _LOCK:
            sts = session.client("sts", endpoint_url=text(self.stsEndpointOverride))
        try:
            credentials = sts.assume_role(**request)["Credentials"]
        except Exception as exc:  # noqa: BLE001 - botocore raises many kinds
            raise TaskFailedError(f"STS AssumeRole of {request['RoleArn']} failed: {exc}") from None
        return boto3.session.Session(
            botocore_session=_botocore_session(self.TYPE),
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=session.region_name,
        )


def _botocore_session(task_type: str) -> Any:
    """A fresh botocore session (own credentials) sharing the process's model loader."""
    botocore_session = require_extra("botocore.session", "aws", task_type)
    loaders = require_extra("botocore.loaders", "aws", task_type)
    with _LOCK:
        if not _LOADER:
            _LOADER.append(loaders.create_loader())
        session = botocore_session.get_session()
        session.register_component("data_loader", _LOADER[0])
    return session
