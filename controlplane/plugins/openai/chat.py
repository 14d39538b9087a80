"""OpenAI chat completions through the official ``openai`` client (the ``openai`` extra)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, model_validator

from controlplane.domain.fields import DynBool, DynInt, StrictModel, Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError, require_extra

TYPE = "io.kestra.plugin.openai.ChatCompletion"


def _dyn_float(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return value
    raise ValueError("must be a number or a {{ expression }}")


DynFloat = Annotated[float | str, BeforeValidator(_dyn_float)]


class ChatMessage(StrictModel):
    """One message of the conversation: ``role`` (system, user, assistant…) and ``content``."""

    role: Text
    content: Text | None = None
    name: Text | None = None


class FunctionParameter(StrictModel):
    """One parameter of a function the model may call (Kestra's PluginChatFunctionParameter)."""

    name: Text
    type: Text
    description: Text
    enumValues: list[Text] | None = None  # noqa: N815 - Kestra's field name
    required: DynBool = False


class ChatFunction(StrictModel):
    """A function the model may call (Kestra's PluginChatFunction)."""

    name: Text
    description: Text | None = None
    parameters: list[FunctionParameter] = Field(default_factory=list)


class ChatCompletion(TaskBase):
    """Ask an OpenAI (or OpenAI-compatible) chat model; outputs the choices and usage."""

    TYPE = TYPE
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "id": "the completion's id",
        "object": "the object type, chat.completion",
        "model": "the model that answered",
        "choices": "the generated messages (function_call arguments parsed into a map)",
        "usage": "prompt, completion and total token counts",
    }

    apiKey: Text  # noqa: N815 - Kestra's field name
    model: Text
    messages: list[ChatMessage] | None = None
    prompt: Text | None = None
    functions: list[ChatFunction] | None = None
    functionCall: Text | None = None  # noqa: N815
    temperature: DynFloat | None = None
    topP: DynFloat | None = None  # noqa: N815
    n: DynInt | None = None
    stop: list[Text] | None = None
    maxTokens: DynInt | None = None  # noqa: N815
    presencePenalty: DynFloat | None = None  # noqa: N815
    frequencyPenalty: DynFloat | None = None  # noqa: N815
    logitBias: dict[str, int] | None = None  # noqa: N815
    user: Text | None = None
    clientTimeout: int = Field(default=10, ge=1)  # noqa: N815 - seconds, Kestra's default
    # Flowplane's addition (Kestra has none): an OpenAI-compatible server's /v1 URL.
    baseUrl: Text | None = None  # noqa: N815

    @model_validator(mode="after")
    def _something_to_say(self) -> ChatCompletion:
        if self.messages is None and self.prompt is None:
            raise ValueError("either messages or prompt must be set")
        return self

    def run(self, context: RunContext) -> dict[str, Any]:
        """Send one chat completion request; outputs as the API answers them."""
        openai = require_extra("openai", "openai", TYPE)
        if os.environ.get("OPENAI_CUSTOM_HEADERS"):
            # The client would add these headers (an Authorization, say) to every request.
            raise TaskFailedError(
                "the worker's environment sets OPENAI_CUSTOM_HEADERS, which the openai client "
                "would send to every flow's endpoint; unset it on the worker"
            )
        client = openai.OpenAI(
            api_key=str(context.render(self.apiKey)),
            # None: the client reads OPENAI_BASE_URL (the operator's endpoint), else api.openai.com.
            base_url=str(context.render(self.baseUrl)) if self.baseUrl else None,
            timeout=float(self.clientTimeout),
            max_retries=0,  # a retry is the task's `retry`, visible in the run
        )
        # Read from the server's OPENAI_ORG_ID, OPENAI_PROJECT_ID, OPENAI_ADMIN_KEY and
        # OPENAI_WEBHOOK_SECRET when not given: the server's account is not the flow's,
        # and a flow's baseUrl would receive them.
        client.organization = None
        client.project = None
        client.admin_api_key = None
        client.webhook_secret = None
        try:
            completion = client.chat.completions.create(**self._request(context))
        except openai.APIStatusError as exc:
            raise TaskFailedError(f"OpenAI answered {exc.status_code}: {_reason(exc)}") from None
        except openai.OpenAIError as exc:
            raise TaskFailedError(f"OpenAI request failed: {exc}") from None
        answer = completion.model_dump(mode="json", exclude_unset=True)
        usage = answer.get("usage") or {}
        context.log(
            "INFO",
            f"{answer.get('model')} answered {len(answer.get('choices', []))} choice(s), "
            f"{usage.get('total_tokens', '?')} tokens",
        )
        return {
            "id": answer.get("id"),
            "object": answer.get("object"),
            "model": answer.get("model"),
            "choices": [_parsed_arguments(c) for c in answer.get("choices", [])],
            "usage": usage,
        }

    def _request(self, context: RunContext) -> dict[str, Any]:
        """The create() arguments: the properties given, rendered."""
        messages = [
            {k: str(context.render(v)) for k, v in m.model_dump(exclude_none=True).items()}
            for m in self.messages or []
        ]
        if self.prompt is not None:
            messages.append({"role": "user", "content": str(context.render(self.prompt))})
        request: dict[str, Any] = {"model": str(context.render(self.model)), "messages": messages}
        numbers = {
            "temperature": (self.temperature, float),
            "top_p": (self.topP, float),
            "presence_penalty": (self.presencePenalty, float),
            "frequency_penalty": (self.frequencyPenalty, float),
            "n": (self.n, int),
            "max_tokens": (self.maxTokens, int),
        }
        for key, (value, kind) in numbers.items():
            if value is not None:
                request[key] = kind(context.render(value))
        if self.stop is not None:
            request["stop"] = [str(context.render(s)) for s in self.stop]
        if self.logitBias is not None:
            request["logit_bias"] = self.logitBias
        if self.user is not None:
            request["user"] = str(context.render(self.user))
        if self.functions is not None:
            request["functions"] = [_function_schema(context, f) for f in self.functions]
        if self.functionCall is not None:
            call = str(context.render(self.functionCall))
            request["function_call"] = call if call in {"auto", "none"} else {"name": call}
        return request


def _function_schema(context: RunContext, function: ChatFunction) -> dict[str, Any]:
    """Kestra's function description as the API's JSON-Schema ``parameters`` object."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in function.parameters:
        name = str(context.render(parameter.name))
        schema: dict[str, Any] = {
            "type": str(context.render(parameter.type)),
            "description": str(context.render(parameter.description)),
        }
        if parameter.enumValues is not None:
            schema["enum"] = [str(context.render(v)) for v in parameter.enumValues]
        properties[name] = schema
        if str(context.render(parameter.required)).lower() == "true":
            required.append(name)
    described: dict[str, Any] = {
        "name": str(context.render(function.name)),
        "parameters": {"type": "object", "properties": properties, "required": required},
    }
    if function.description is not None:
        described["description"] = str(context.render(function.description))
    return described


def _parsed_arguments(choice: dict[str, Any]) -> dict[str, Any]:
    """A choice with ``function_call.arguments`` parsed, as Kestra's outputs expose it."""
    call = (choice.get("message") or {}).get("function_call")
    if call and isinstance(call.get("arguments"), str):
        # The model's text stays as it was when it is not JSON.
        with contextlib.suppress(json.JSONDecodeError):
            call["arguments"] = json.loads(call["arguments"])
    return choice


def _reason(exc: Any) -> str:
    """The API's ``error.message``, else the exception text."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(exc)
