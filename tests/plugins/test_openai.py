"""ChatCompletion through the official openai client against a local OpenAI-compatible server.

The server implements POST /v1/chat/completions with request and response
shapes written from OpenAI's API reference (a ``chat.completion`` object with
``choices`` and ``usage``; errors as ``{"error": {"message", "type", "code"}}``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from tests.plugins.fake_servers import FakeServer, Reply, Request, serve
from tests.services.test_engine import logs, put_flow, run, task_runs

RUNS = {"io.kestra.plugin.openai.ChatCompletion": "test_chat_completion_sends_the_conversation"}

NS = "platform.ai"
KEY = "sk-test-0penA1-k3y-55aa"


def _completion(request: Request) -> Reply:
    if request.headers.get("authorization") != f"Bearer {KEY}":
        return Reply(
            401,
            {
                "error": {
                    "message": "Incorrect API key provided.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        )
    if request.method != "POST" or request.path != "/v1/chat/completions":
        return Reply(
            404, {"error": {"message": "Unknown request URL", "type": "invalid_request_error"}}
        )
    body = request.json()
    if "functions" in body:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "triage", "arguments": '{"urgency": "reply_immediately"}'},
        }
        finish = "function_call"
    else:
        last = body["messages"][-1]["content"]
        message = {"role": "assistant", "content": f"echo: {last}", "refusal": None}
        finish = "stop"
    return Reply(
        200,
        {
            "id": "chatcmpl-abc123",
            "object": "chat.completion",
            "created": 1741569952,
            "model": body["model"] + "-2024-07-18",
            "system_fingerprint": "fp_fake",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
        },
    )


@pytest.fixture
def api(client: TestClient) -> Iterator[FakeServer]:
    with serve(_completion) as server:
        response = client.put(f"/api/v1/namespaces/{NS}/secrets/OPENAI_KEY", json={"value": KEY})
        assert response.status_code in {200, 201}
        yield server


def _flow(base: str, extra: str = "") -> str:
    return f"""\
id: ask
namespace: {NS}
tasks:
  - id: chat
    type: io.kestra.plugin.openai.ChatCompletion
    apiKey: "{{{{ secret('OPENAI_KEY') }}}}"
    baseUrl: "{base}/v1"
    model: gpt-4o-mini
    messages:
      - {{role: system, content: "You answer for {{{{ flow.id }}}}."}}
    prompt: "Is {{{{ flow.namespace }}}} healthy?"
    temperature: 0.2
    maxTokens: 50
    stop: ["\\n\\n"]
    user: ops
{extra}"""


def test_chat_completion_sends_the_conversation(client: TestClient, api: FakeServer) -> None:
    put_flow(client, _flow(api.url))
    execution = run(client, NS, "ask")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    sent = api.requests[-1].json()
    assert sent == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You answer for ask."},
            {"role": "user", "content": "Is platform.ai healthy?"},
        ],
        "temperature": 0.2,
        "max_tokens": 50,
        "stop": ["\n\n"],
        "user": "ops",
    }
    outputs = task_runs(execution)["chat"]["outputs"]
    assert outputs["id"] == "chatcmpl-abc123"
    assert outputs["object"] == "chat.completion"
    assert outputs["model"] == "gpt-4o-mini-2024-07-18"
    assert outputs["choices"][0]["message"]["content"] == "echo: Is platform.ai healthy?"
    assert outputs["usage"]["total_tokens"] == 29
    lines = logs(client, execution["id"])
    assert not [line for line in lines if KEY in line]
    assert KEY not in str(execution["task_runs"])


def test_functions_are_described_and_their_arguments_parsed(
    client: TestClient, api: FakeServer
) -> None:
    extra = """\
    functions:
      - name: triage
        description: Decide how urgently to reply.
        parameters:
          - {name: urgency, type: string, description: How urgent, required: true,
             enumValues: [reply_immediately, reply_later]}
    functionCall: triage
  - id: urgency
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.chat.choices[0].message.function_call.arguments.urgency }}"
"""
    put_flow(client, _flow(api.url, extra))
    execution = run(client, NS, "ask")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    sent = api.requests[-1].json()
    assert sent["functions"] == [
        {
            "name": "triage",
            "description": "Decide how urgently to reply.",
            "parameters": {
                "type": "object",
                "properties": {
                    "urgency": {
                        "type": "string",
                        "description": "How urgent",
                        "enum": ["reply_immediately", "reply_later"],
                    }
                },
                "required": ["urgency"],
            },
        }
    ]
    assert sent["function_call"] == {"name": "triage"}
    assert task_runs(execution)["urgency"]["outputs"]["value"] == "reply_immediately"


def test_base_url_from_the_environment_and_api_errors(
    client: TestClient, api: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without baseUrl the client reads OPENAI_BASE_URL, as the openai library documents.
    monkeypatch.setenv("OPENAI_BASE_URL", f"{api.url}/v1")
    source = _flow(api.url).replace(f'    baseUrl: "{api.url}/v1"\n', "")
    put_flow(client, source)
    execution = run(client, NS, "ask")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert api.requests[-1].path == "/v1/chat/completions"

    client.put(f"/api/v1/namespaces/{NS}/secrets/OPENAI_KEY", json={"value": "sk-wrong-key-1"})
    refused = run(client, NS, "ask")
    assert refused["state"] == "FAILED"
    assert "OpenAI answered 401: Incorrect API key provided." in logs(client, refused["id"])

    with pytest.raises(InvalidFlowError) as raised:
        validate_flow(
            source.replace('    prompt: "Is {{ flow.namespace }} healthy?"\n', "").replace(
                '    messages:\n      - {role: system, content: "You answer for {{ flow.id }}."}\n',
                "",
            )
        )
    assert "either messages or prompt must be set" in str(raised.value.problems)


def test_sampling_options_reach_the_api_and_client_timeout_ends_a_stalled_request(
    client: TestClient, api: FakeServer
) -> None:
    extra = """\
    topP: 0.9
    n: 2
    presencePenalty: 0.5
    frequencyPenalty: "{{ 0.25 }}"
    logitBias: {"50256": -100}
"""
    put_flow(client, _flow(api.url, extra))
    execution = run(client, NS, "ask")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    sent = api.requests[-1].json()
    assert (sent["top_p"], sent["n"]) == (0.9, 2)
    assert (sent["presence_penalty"], sent["frequency_penalty"]) == (0.5, 0.25)
    assert sent["logit_bias"] == {"50256": -100}

    # A server that never answers: clientTimeout 1 (s) ends the run FAILED within
    # the 8 s this test waits; the default (10 s) would keep it going past that.
    release = threading.Event()
    with serve(lambda _request: Reply(200, {}) if release.wait(60) else Reply(500)) as stalled:
        try:
            put_flow(client, _flow(stalled.url, "    clientTimeout: 1\n"))
            response = client.post(
                f"/api/v1/executions/{NS}/ask", params={"wait": True, "timeout": 8}, json={}
            )
            assert response.status_code == 201, response.text
            slow = response.json()
            assert slow["state"] == "FAILED", slow["state"]
            assert "OpenAI request failed: Request timed out." in logs(client, slow["id"])
        finally:
            release.set()
