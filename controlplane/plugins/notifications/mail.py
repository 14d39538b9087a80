"""Sending an email over SMTP with the standard library's smtplib."""

from __future__ import annotations

import json
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from pydantic import Field, field_validator

from controlplane.domain.fields import DynInt, StrictModel, Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError

_PORTS = {"SMTP": 25, "SMTP_TLS": 587, "SMTPS": 465}
_NO_CLIENT_TEXT = "Please view this email in a modern email client"  # Kestra's default


class Attachment(StrictModel):
    """A file the run produced, sent with the message (or embedded, for images)."""

    uri: Text
    name: Text
    contentType: Text = "application/octet-stream"  # noqa: N815 - Kestra's field name


class MailSend(TaskBase):
    """Send an email over SMTP (SMTP, SMTP_TLS with STARTTLS, or SMTPS), with HTML and files."""

    TYPE = "io.kestra.plugin.notifications.mail.MailSend"
    ALIASES = ("io.kestra.plugin.email.MailSend",)

    host: Text
    port: DynInt | None = None
    username: Text | None = None
    password: Text | None = None
    transportStrategy: Text = "SMTPS"  # noqa: N815 - Kestra's field name and default
    sessionTimeout: DynInt = 10000  # noqa: N815 - milliseconds
    from_: Text = Field(alias="from")
    to: Text | list[Text]
    cc: Text | list[Text] | None = None
    subject: Text | None = None
    htmlTextContent: Text | None = None  # noqa: N815
    plainTextContent: Text | None = None  # noqa: N815
    attachments: list[Attachment] | Text | None = None
    embeddedImages: list[Attachment] | Text | None = None  # noqa: N815

    @field_validator("transportStrategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if "{{" in value or value in _PORTS:
            return value
        if value == "SMTP_OAUTH2":
            raise ValueError("SMTP_OAUTH2 is not supported: use SMTP, SMTP_TLS or SMTPS")
        raise ValueError(f"must be SMTP, SMTP_TLS or SMTPS, not {value!r}")

    def run(self, context: RunContext) -> dict[str, Any]:
        """Build the message, connect with the transport strategy, log in, send."""
        strategy = str(context.render(self.transportStrategy))
        if strategy not in _PORTS:
            raise TaskFailedError(f"transportStrategy must be SMTP, SMTP_TLS or SMTPS: {strategy}")
        sender = str(context.render(self.from_))
        to = _addresses(context.render(self.to))
        cc = _addresses(context.render(self.cc)) if self.cc is not None else []
        if not to:
            raise TaskFailedError("to names no recipient")
        message = self._message(context, sender, to, cc)
        host = str(context.render(self.host))
        port = int(context.render(self.port)) if self.port is not None else _PORTS[strategy]
        timeout = int(context.render(self.sessionTimeout)) / 1000
        try:
            refused = _send(
                message,
                sender,
                to + cc,
                host=host,
                port=port,
                strategy=strategy,
                timeout=timeout,
                login=self._login(context),
            )
        except (smtplib.SMTPException, OSError) as exc:
            raise TaskFailedError(f"sending mail through {host}:{port} failed: {exc}") from None
        if refused:
            raise TaskFailedError(f"the server refused recipients: {', '.join(sorted(refused))}")
        context.log("INFO", f"mail sent through {host}:{port} ({strategy}) to {len(to + cc)}")
        return {}

    def _login(self, context: RunContext) -> tuple[str, str] | None:
        if self.username is None:
            return None
        password = str(context.render(self.password)) if self.password is not None else ""
        return str(context.render(self.username)), password

    def _message(
        self, context: RunContext, sender: str, to: list[str], cc: list[str]
    ) -> EmailMessage:
        message = EmailMessage()
        message["From"] = sender
        message["To"] = ", ".join(to)
        if cc:
            message["Cc"] = ", ".join(cc)
        if self.subject is not None:
            message["Subject"] = str(context.render(self.subject))
        plain = self.plainTextContent
        message.set_content(str(context.render(plain)) if plain is not None else _NO_CLIENT_TEXT)
        images = _attachments(context, self.embeddedImages, "embeddedImages")
        if self.htmlTextContent is not None:
            message.add_alternative(str(context.render(self.htmlTextContent)), subtype="html")
            html = message.get_body(preferencelist=("html",))
            if html is None:  # set just above; the check keeps the type checker informed
                raise TaskFailedError("the HTML part could not be built")
            for name, content_type, data in images:
                maintype, subtype = content_type.split("/", 1)
                # Referenced from the HTML as <img src="cid:NAME">.
                html.add_related(data, maintype, subtype, cid=f"<{name}>", filename=name)
        elif images:
            raise TaskFailedError("embeddedImages need htmlTextContent to be shown in")
        for name, content_type, data in _attachments(context, self.attachments, "attachments"):
            maintype, subtype = content_type.split("/", 1)
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        return message


def _send(
    message: EmailMessage,
    sender: str,
    recipients: list[str],
    *,
    host: str,
    port: int,
    strategy: str,
    timeout: float,
    login: tuple[str, str] | None,
) -> dict[str, Any]:
    """Deliver ``message``; the recipients the server refused (all refused raises)."""
    tls = ssl.create_default_context()
    smtp = (
        smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls)
        if strategy == "SMTPS"
        else smtplib.SMTP(host, port, timeout=timeout)
    )
    with smtp:
        if strategy == "SMTP_TLS":
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                # Sending in clear instead would break the promise of SMTP_TLS.
                raise TaskFailedError(f"{host}:{port} does not offer STARTTLS (SMTP_TLS needs it)")
            smtp.starttls(context=tls)
            smtp.ehlo()
        if login is not None:
            smtp.login(*login)
        return smtp.send_message(message, from_addr=sender, to_addrs=recipients)


def _addresses(value: Any) -> list[str]:
    """Recipients from Kestra's ``a@x; b@y`` text (commas accepted too) or a list."""
    items = value if isinstance(value, list) else [value]
    found: list[str] = []
    for item in items:
        found += [part.strip() for part in str(item).replace(",", ";").split(";") if part.strip()]
    return found


def _attachments(context: RunContext, value: Any, name: str) -> list[tuple[str, str, bytes]]:
    """``(name, contentType, bytes)`` of each file; only files of this execution."""
    if value is None:
        return []
    items: Any = value
    if isinstance(value, str):
        rendered = str(context.render(value))
        try:
            items = json.loads(rendered) if rendered.strip() else []
        except json.JSONDecodeError:
            raise TaskFailedError(f"{name} must be a list, or JSON text of one") from None
        if isinstance(items, str):  # Kestra's `{{ x | toJson }}` of JSON text
            items = json.loads(items)
        items = [Attachment.model_validate(item) for item in items]
    files = []
    for item in items:
        uri = str(context.render(item.uri))
        content_type = str(context.render(item.contentType))
        if "/" not in content_type:
            raise TaskFailedError(f"{name}: contentType {content_type!r} is not type/subtype")
        # The context opens only files of this execution (links resolved, not followed).
        with context.open_file(uri) as handle:
            data = handle.read()
        files.append((str(context.render(item.name)), content_type, data))
    return files
