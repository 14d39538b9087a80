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
resource has one, then derives replacements. Every other call goes to `tf`
untouched.
"""

from __future__ import annotations

import importlib
from typing import Any

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

    def PlanResourceChange(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC name
        """`tf`'s plan, then the resource's ``modify_plan`` and the replacement check."""
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
    importlib.import_module("tf.runner").run_provider(provider, argv)
