"""The plan hook `tf` lacks, added around its gRPC servicer.

`tf` (1.2) calls ``Resource.plan`` only for updates, without the
configuration, and decides which attributes force a replacement *before*
calling it. Flowplane needs more:

1. **Creates are planned too.** A new flow's namespace and id are read from its
   content while planning, so ``flowplane_flow.x.id`` is known in the plan and
   an invalid flow fails the plan, not the apply.
2. **The configuration is at hand**, to tell a namespace the user wrote (which
   must match the content) from one Terraform proposed from the prior state.
3. **A replacement follows the plan.** When the content moves a flow to another
   namespace or id (attributes left unset, so Terraform proposed the old
   values), the flow is replaced, not updated in place: its identity changed.

``PlanningServicer`` wraps `tf`'s ``ProviderServicer``: after `tf` has planned,
it calls the resource's ``modify_plan(ctx, prior, planned, config)`` when the
resource has one, then derives replacements.

It also keeps the **server id** in each resource's private state (bytes
Terraform stores beside the state and hands back, never shown): a plan made
against one server is refused at apply when the endpoint now answers with
another server id, and so is a read of state written against another server,
which would otherwise see every object as deleted. ``StopProvider`` reaches
the provider (``FlowplaneProvider.stop``) instead of ending the process.
Every other call goes to `tf` untouched.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from controlplane.terraform_provider import lifecycle
from controlplane.terraform_provider.framework import Field, State, new_diagnostics

_tf_provider: Any = importlib.import_module("tf.provider")
_tf_iface = importlib.import_module("tf.iface")
_tf_utils = importlib.import_module("tf.utils")
_pb = importlib.import_module("tf.gen.tfplugin_pb2")

# Kept before ``serve`` points `tf.provider.ProviderServicer` at the wrapper.
_TF_SERVICER: Any = _tf_provider.ProviderServicer


class PlanningServicer:
    """`tf`'s servicer, with creates planned and replacements derived from the plan."""

    def __init__(self, app: Any) -> None:
        self._inner = _TF_SERVICER(app)
        self._app = app
        prefix = app.get_model_prefix()
        self._resources = {prefix + cls.get_name(): cls for cls in app.get_resources()}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def StopProvider(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC name
        """Stop gracefully: requests already sent finish and are recorded."""
        del request, context
        self._app.stop()
        return _pb.StopProvider.Response()

    def ReadResource(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC name
        """`tf`'s read, refused when the state belongs to another server."""
        current = _tf_utils.read_dynamic_value(request.current_state)
        error = self._other_server(request.private, "read", current)
        if error is not None:
            return _pb.ReadResource.Response(diagnostics=[error], new_state=request.current_state)
        response = self._inner.ReadResource(request, context)
        self._finish_state(request.type_name, response.new_state)
        response.private = self._private(request.private)
        return response

    def ApplyResourceChange(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC name
        """`tf`'s apply with write-only values from the configuration, never returned."""
        prior = _tf_utils.read_dynamic_value(request.prior_state)
        error = self._other_server(request.planned_private, "apply", prior)
        if error is not None:
            return _pb.ApplyResourceChange.Response(
                diagnostics=[error], new_state=request.prior_state
            )
        write_only = self._write_only(request.type_name)
        planned = _tf_utils.read_dynamic_value(request.planned_state)
        if write_only and planned is not None:
            # Terraform plans write-only attributes as null; their values are
            # only in the configuration, which `tf` does not pass on.
            config = _tf_utils.read_dynamic_value(request.config) or {}
            request = _copy(request)
            planned.update({name: config.get(name) for name in write_only})
            request.planned_state.CopyFrom(_tf_utils.to_dynamic_value(planned))
        response = self._inner.ApplyResourceChange(request, context)
        self._finish_state(request.type_name, response.new_state)
        response.private = self._private(request.planned_private)
        return response

    def ImportResourceState(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC name
        """`tf`'s import, with the server id recorded."""
        response = self._inner.ImportResourceState(request, context)
        for imported in response.imported_resources:
            self._finish_state(request.type_name, imported.state)
            imported.private = self._private(b"")
        return response

    def PlanResourceChange(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC name
        """`tf`'s plan, then the resource's ``modify_plan`` and the replacement check."""
        prior = _tf_utils.read_dynamic_value(request.prior_state)
        error = self._other_server(request.prior_private, "plan", prior)
        if error is not None:
            return _pb.PlanResourceChange.Response(diagnostics=[error])
        response = self._plan(request, context)
        self._finish_state(request.type_name, response.planned_state)
        response.planned_private = self._private(request.prior_private)
        return response

    def _write_only(self, type_name: str) -> list[str]:
        klass = self._resources.get(type_name)
        return [f.name for f in getattr(klass, "FIELDS", ()) if f.write_only]

    def _finish_state(self, type_name: str, value: Any) -> None:
        """Null the write-only attributes and record the server id, in place.

        Terraform refuses a write-only attribute that is not null in a plan or
        a state, so this runs on every state the provider hands back.
        """
        klass = self._resources.get(type_name)
        state = _tf_utils.read_dynamic_value(value)
        if klass is None or not isinstance(state, dict):
            return
        for name in self._write_only(type_name):
            state[name] = None
        if getattr(klass, "SERVER_TRACKED", False):
            client = self._app.client
            server = None if client is None else client.server_id
            state["server_id"] = server if server is not None else state.get("server_id")
        value.CopyFrom(_tf_utils.to_dynamic_value(state))

    def _other_server(self, private: bytes, action: str, state: State | None) -> Any:
        """An error when the object was recorded against a server other than the endpoint's.

        The record is the private state, else the ``server_id`` attribute.
        """
        recorded = server_id_of(private)
        if recorded is None and isinstance(state, dict):
            value = state.get("server_id")
            recorded = value if isinstance(value, str) else None
        client = self._app.client
        current = None if client is None else client.server_id
        if recorded is None or current is None or recorded == current:
            return None
        where = "" if client is None else f" at {client.endpoint}"
        return _pb.Diagnostic(
            severity=_pb.Diagnostic.ERROR,
            summary=f"refusing to {action}: the Flowplane server changed",
            detail=(
                f"This object was recorded against server {recorded}, but the endpoint{where} "
                f"now answers as server {current}. Nothing was changed. Point the provider "
                "back at the original server; if the move is intended, run `terraform plan` "
                "again (after `terraform state rm` for objects that do not exist there)."
            ),
        )

    def _private(self, previous: bytes) -> bytes:
        """Private state naming the current server; ``previous`` when it is unknown."""
        client = self._app.client
        current = None if client is None else client.server_id
        if current is None:
            return previous
        return json.dumps({"server_id": current}).encode()

    def _plan(self, request: Any, context: Any) -> Any:
        response = self._inner.PlanResourceChange(request, context)
        if any(d.severity == _pb.Diagnostic.ERROR for d in response.diagnostics):
            return response
        prior: State | None = _tf_utils.read_dynamic_value(request.prior_state)
        planned: State | None = _tf_utils.read_dynamic_value(response.planned_state)
        config: State = _tf_utils.read_dynamic_value(request.config) or {}
        klass = self._resources.get(request.type_name)
        modify = getattr(klass, "modify_plan", None)
        if planned is None or klass is None or modify is None:
            return response
        diagnostics = new_diagnostics()
        context = _tf_iface.PlanContext(diagnostics, request.type_name, set(planned))
        planned = self._app.new_resource(klass).modify_plan(context, prior, planned, config)
        # Every attribute type here encodes as itself, so the raw value is the wire value.
        response.planned_state.CopyFrom(_tf_utils.to_dynamic_value(planned))
        response.diagnostics.extend(diagnostics.to_pb())
        if prior is not None and planned is not None:
            fields: tuple[Field, ...] = getattr(klass, "FIELDS", ())
            for name in replaced_attributes(fields, prior, planned):
                if not any(_names(p) == [name] for p in response.requires_replace):
                    step = _pb.AttributePath.Step(attribute_name=name)
                    response.requires_replace.append(_pb.AttributePath(steps=[step]))
        return response


def _copy(message: Any) -> Any:
    """A copy of a protobuf message, so the caller's stays as Terraform sent it."""
    duplicate = type(message)()
    duplicate.CopyFrom(message)
    return duplicate


def server_id_of(private: bytes) -> str | None:
    """The server id recorded in a resource's private state, if any."""
    if not private:
        return None
    try:
        data = json.loads(private)
    except ValueError:
        return None
    value = data.get("server_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def replaced_attributes(fields: tuple[Field, ...], prior: State, planned: State) -> list[str]:
    """Attributes that force replacement and whose planned value differs from the prior."""
    return [
        f.name
        for f in fields
        if f.requires_replace and f.name in planned and planned[f.name] != prior.get(f.name)
    ]


def _names(path: Any) -> list[str]:
    return [step.attribute_name for step in path.steps]


def serve(provider: Any, argv: list[str] | None = None) -> None:
    """Run the provider's gRPC server (the executable's main), with the wrapper installed."""
    # run_provider looks `tf.provider.ProviderServicer` up when it starts, so
    # pointing that name at the wrapper is how the wrapper gets in without
    # copying run_provider (which also owns the TLS handshake and dev mode).
    _tf_provider.ProviderServicer = PlanningServicer
    lifecycle.install()
    importlib.import_module("tf.runner").run_provider(provider, argv)
