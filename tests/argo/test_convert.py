"""The converter on small Argo documents: the mapping, and each refusal's message."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from controlplane.domain.argo import convert_source, convert_sources, to_yaml
from controlplane.domain.argo.depends import (
    DependsError,
    evaluate_depends,
    format_depends,
    parse_depends,
)
from controlplane.domain.argo.durations import iso_duration
from controlplane.domain.argo.expr import ExprError, translate_expr
from controlplane.domain.argo.leaf import image_repository, is_plain_image
from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError

HEAD = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: demo
spec:
  entrypoint: main
"""


def workflow(body: str) -> str:
    """A Workflow whose spec continues with ``body`` (indented as under spec)."""
    return HEAD + textwrap.indent(textwrap.dedent(body), "  ")


def convert(text: str, **options: Any) -> dict[str, Any]:
    (flow,) = convert_source(text, file="wf.yaml", namespace="demo", **options)
    validate_flow(to_yaml(flow), file="demo.yaml")  # every conversion is a valid flow
    return flow.spec


def refusal(text: str) -> list[str]:
    with pytest.raises(InvalidFlowError) as caught:
        convert_source(text, file="wf.yaml", namespace="demo")
    return [problem.render() for problem in caught.value.problems]


def tasks_by_id(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def walk(items: list[Any]) -> None:
        for item in items:
            task = item["task"] if "task" in item and "id" not in item else item
            found[task["id"]] = task
            for key in ("tasks", "then", "finally"):
                walk(task.get(key) or [])

    walk(spec["tasks"] + spec.get("finally", []))
    return found


# --- refused constructs: one message each -------------------------------------------

LEAF = """\
templates:
  - name: main
    container: {image: busybox, command: [echo, hi]}
"""
REFUSED = {
    "external artifact repository": (
        LEAF
        + "    outputs:\n      artifacts:\n        - {name: out, path: /tmp/o, s3: {key: k}}\n",
        "wf.yaml:12:39: spec.templates[0].outputs.artifacts[0].s3: artifacts backed by an "
        "external repository (s3, gcs, git, http, ...) are not supported: Flowplane passes "
        "artifacts between tasks inline, in their outputs (a later issue may add repositories)",
    ),
    "sidecars": (
        LEAF + "    sidecars: [{name: db, image: postgres}]\n",
        "wf.yaml:10:7: spec.templates[0].sidecars: sidecars are not supported: a Flowplane "
        "task is one process; run the service outside the flow and pass its address as a "
        "parameter",
    ),
    "daemons": (
        LEAF + "    daemon: true\n",
        "wf.yaml:10:7: spec.templates[0].daemon: daemon templates are not supported: a "
        "Flowplane task runs to completion; run the service outside the flow and pass its "
        "address as a parameter",
    ),
    "volumes": (
        "volumes: [{name: work, emptyDir: {}}]\n" + LEAF,
        "wf.yaml:7:3: spec.volumes: volumes are not supported: Flowplane tasks share no "
        "volumes; pass values through parameters (a later issue may add volumes)",
    ),
    "volume mounts": (
        LEAF.replace("command: [echo, hi]}", "command: [echo, hi], volumeMounts: []}"),
        "wf.yaml:9:56: spec.templates[0].container.volumeMounts: volumes are not supported: "
        "Flowplane tasks share no volumes; pass values through parameters (a later issue "
        "may add volumes)",
    ),
    "resource templates": (
        "templates:\n  - name: main\n    resource: {action: create, manifest: 'kind: Pod'}\n",
        "wf.yaml:9:7: spec.templates[0].resource: resource templates are not supported: "
        "Flowplane does not create Kubernetes objects from a template; use a Kubernetes "
        "task type",
    ),
    "HTTP templates": (
        "templates:\n  - name: main\n    http: {url: 'https://example.com'}\n",
        "wf.yaml:9:7: spec.templates[0].http: HTTP templates are not supported by the "
        "converter; use Flowplane's io.kestra.plugin.core.http.Request task",
    ),
    "plugins": (
        "templates:\n  - name: main\n    plugin: {hello: {}}\n",
        "wf.yaml:9:7: spec.templates[0].plugin: executor plugin templates are not supported",
    ),
}


@pytest.mark.parametrize("construct", sorted(REFUSED))
def test_each_refused_construct_has_its_message(construct: str) -> None:
    body, message = REFUSED[construct]
    assert refusal(workflow(body)) == [message]


def test_an_unknown_field_is_refused_not_dropped() -> None:
    body = LEAF.replace("command: [echo, hi]}", "command: [echo, hi], colour: red}")
    assert refusal(workflow(body)) == [
        "wf.yaml:9:56: spec.templates[0].container.colour: unknown field 'colour' of container"
    ]


def test_an_unknown_variable_is_refused_at_convert_time() -> None:
    body = LEAF.replace("[echo, hi]", "[echo, '{{workflow.nonsense}}']")
    assert refusal(workflow(body)) == [
        "wf.yaml:9:51: spec.templates[0].container.command[1]: unknown variable "
        "{{workflow.nonsense}}"
    ]


def test_a_step_may_not_read_a_later_step() -> None:
    body = """\
    templates:
      - name: main
        steps:
          - - name: a
              template: say
              arguments: {parameters: [{name: m, value: "{{steps.b.outputs.result}}"}]}
          - - {name: b, template: say, arguments: {parameters: [{name: m, value: x}]}}
      - name: say
        inputs: {parameters: [{name: m}]}
        container: {image: busybox, command: [echo, "{{inputs.parameters.m}}"]}
    """
    (problem,) = refusal(workflow(body))
    assert "spec.templates[0].steps[0][0].arguments.parameters[0].value" in problem
    assert "no earlier step named 'b'" in problem


def test_fields_with_no_flowplane_meaning_are_listed_in_the_header() -> None:
    body = "podGC: {strategy: OnPodSuccess}\n" + LEAF
    (flow,) = convert_source(workflow(body), file="wf.yaml", namespace="demo")
    assert "#   podGC: pod garbage collection; Flowplane keeps no pods [spec.podGC]" in to_yaml(
        flow
    )


# --- the mapping ------------------------------------------------------------------------


def test_a_container_runs_its_exact_argv_with_templated_arguments_in_env() -> None:
    spec = convert(
        workflow("""\
        arguments: {parameters: [{name: who, value: world}]}
        templates:
          - name: main
            container:
              image: "alpine:3.23"
              command: [sh, -c]
              args: ["echo {{workflow.parameters.who}}"]
        """)
    )
    (task,) = spec["tasks"]
    assert task["type"] == "io.kestra.plugin.scripts.shell.Commands"
    assert task["env"] == {"ARGO_ARG_2": "echo {{ inputs['who'] }}"}
    assert 'argo_run sh -c "$ARGO_ARG_2"' in task["commands"][0]
    assert spec["inputs"] == [
        {"id": "who", "type": "STRING", "defaults": "world", "required": False}
    ]
    assert "argo_run()" in spec["variables"]["argo"]


def test_the_kubernetes_runner_keeps_the_image() -> None:
    spec = convert(workflow(LEAF.replace("busybox", "golang:1.22")), runner="kubernetes")
    (task,) = spec["tasks"]
    assert task["containerImage"] == "golang:1.22"
    assert task["taskRunner"] == {"type": "io.kestra.plugin.ee.kubernetes.runner.Kubernetes"}


def test_the_process_runner_refuses_an_image_that_is_not_a_plain_base_image() -> None:
    spec = convert(workflow(LEAF.replace("busybox", "golang:1.22")))
    (task,) = spec["tasks"]
    assert "argo_refuse 'image golang:1.22 is not a plain base image" in task["commands"][0]
    assert "argo_run" not in task["commands"][0].split("{{ vars.argo }}")[1]


@pytest.mark.parametrize(
    ("image", "plain"),
    [
        ("busybox", True),
        ("alpine:3.23", True),
        ("python:alpine3.23", True),
        ("docker.io/library/debian:12@sha256:ab", True),
        ("ubuntu", True),
        ("golang:1.8", False),
        ("argoproj/argosay:v2", False),
        ("myorg/alpine", False),
    ],
)
def test_plain_base_images(image: str, plain: bool) -> None:
    assert is_plain_image(image) is plain
    assert image_repository("registry:5000/team/app:1") == "registry:5000/team/app"


def test_a_script_is_written_as_a_file_its_interpreter_runs() -> None:
    spec = convert(
        workflow("""\
        templates:
          - name: main
            script: {image: alpine, command: [sh], source: "x=abc; echo ${#x}\\n"}
        """)
    )
    (task,) = spec["tasks"]
    # Braces that would start a template are escaped: the script runs as written.
    assert task["inputFiles"] == {"argo-script": "x=abc; echo ${{ '{' }}#x}\n"}
    assert "argo_run sh argo-script" in task["commands"][0]


def test_dag_depends_continue_on_and_target() -> None:
    spec = convert(
        workflow("""\
        templates:
          - name: main
            dag:
              failFast: false
              tasks:
                - {name: a, template: say}
                - name: b
                  template: say
                  depends: "a.Failed || a.Skipped"
                  continueOn: {failed: true}
                - {name: c, template: say, dependencies: [b]}
          - name: say
            container: {image: busybox, command: [echo, hi]}
        """)
    )
    (dag,) = spec["tasks"]
    assert dag["type"] == "io.flowplane.argo.Dag"
    assert dag["depends"] == {"b": "a.Failed || a.Skipped"}
    assert dag["continueOn"] == {"b": {"failed": True}}
    assert dag["failFast"] is False
    assert [n.get("dependsOn") for n in dag["tasks"]] == [None, ["a"], ["b"]]


def test_steps_when_loops_continue_on_and_exit_hooks() -> None:
    spec = convert(
        workflow("""\
        templates:
          - name: main
            steps:
              - - name: each
                  template: say
                  arguments: {parameters: [{name: m, value: "{{item.n}}"}]}
                  withItems: [{n: 1}, {n: 2}]
                  when: "{{item.n}} > 1"
                  continueOn: {failed: true}
                  hooks: {exit: {template: bye}}
          - name: say
            inputs: {parameters: [{name: m}]}
            container: {image: busybox, command: [echo, "{{inputs.parameters.m}}"]}
          - name: bye
            container: {image: busybox, command: [echo, bye]}
        """)
    )
    found = tasks_by_id(spec)
    assert found["each"]["type"] == "io.kestra.plugin.core.flow.AllowFailure"
    loop = found["each_loop"]
    assert loop["type"] == "io.flowplane.argo.Loop"
    assert loop["items"] == [{"n": 1}, {"n": 2}]
    hooked = found["each_hooked"]
    assert hooked["runIf"] == (
        "{{ (((fromJson(taskrun.value | substringAfter(':'))['n'] ~ '') | number) > 1) }}"
    )
    assert [t["id"] for t in hooked["finally"]] == ["each_exit"]
    assert found["each_item"]["env"] == {
        "ARGO_ARG_1": "{{ fromJson(taskrun.value | substringAfter(':'))['n'] }}"
    }


def test_retry_strategy_with_backoff() -> None:
    body = LEAF + (
        "    retryStrategy: {limit: '3', retryPolicy: Always, backoff: {duration: '1', "
        "factor: '2', maxDuration: 1m, cap: '5'}}\n"
    )
    (task,) = convert(workflow(body))["tasks"]
    assert task["retry"] == {
        "type": "exponential",
        "interval": "PT1S",
        "delayFactor": 2.0,
        "maxInterval": "PT5S",
        "maxDuration": "PT1M",
        "maxAttempts": 4,
    }


def test_retry_on_error_only_is_refused() -> None:
    body = LEAF + "    retryStrategy: {limit: 2, retryPolicy: OnError}\n"
    (problem,) = refusal(workflow(body))
    assert "retryPolicy OnError is not supported" in problem


def test_timeouts_and_suspend() -> None:
    spec = convert(
        workflow("""\
        templates:
          - name: main
            steps:
              - - {name: wait, template: approve}
              - - {name: work, template: slow}
          - name: approve
            suspend: {duration: 2m}
          - name: slow
            activeDeadlineSeconds: 30
            timeout: 1m
            container: {image: busybox, command: [sleep, "1"]}
        """)
    )
    found = tasks_by_id(spec)
    assert found["wait"]["type"] == "io.kestra.plugin.core.flow.Pause"
    assert found["wait"]["pauseDuration"] == "PT2M"
    assert found["work"]["timeout"] == "PT30S"


def test_on_exit_reads_the_workflow_status() -> None:
    spec = convert(
        workflow("""\
        onExit: bye
        templates:
          - name: main
            container: {image: busybox, command: [echo, hi]}
          - name: bye
            container: {image: busybox, command: [echo, "{{workflow.status}}"]}
        """)
    )
    (bye,) = spec["finally"]
    assert bye["env"] == {
        "ARGO_ARG_1": "{{ (outputs['argo-workflow-failed'].values.status ?? 'Succeeded') }}"
    }
    assert spec["errors"][0]["values"] == {"status": "Failed"}


def test_cron_workflow_becomes_schedule_triggers() -> None:
    text = """\
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: nightly}
spec:
  schedule: "0 2 * * *"
  timezone: Europe/Paris
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 60
  suspend: true
  workflowSpec:
    entrypoint: main
    templates:
      - name: main
        container: {image: busybox, command: [echo, hi]}
"""
    spec = convert(text)
    assert spec["triggers"] == [
        {
            "id": "schedule",
            "type": "io.kestra.plugin.core.trigger.Schedule",
            "cron": "0 2 * * *",
            "timezone": "Europe/Paris",
            "lateMaximumDelay": "PT1M",
            "disabled": True,
        }
    ]
    assert spec["concurrency"] == {"limit": 1, "behavior": "CANCEL"}


def test_template_ref_and_workflow_template_ref_become_subflows() -> None:
    template = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: shared}
spec:
  entrypoint: run
  templates:
    - name: run
      inputs: {parameters: [{name: x}]}
      container: {image: busybox, command: [echo, "{{inputs.parameters.x}}"]}
"""
    caller = workflow("""\
    templates:
      - name: main
        steps:
          - - name: call
              templateRef: {name: shared, template: run}
              arguments: {parameters: [{name: x, value: "1"}]}
    """)
    flows = convert_sources([("t.yaml", template), ("c.yaml", caller)], namespace="demo")
    (call,) = flows[1].spec["tasks"]
    assert (call["type"], call["flowId"], call["inputs"]) == (
        "io.kestra.plugin.core.flow.Subflow",
        "shared",
        {"x": "1"},
    )
    with pytest.raises(InvalidFlowError, match="not among the converted files"):
        convert_source(caller, file="c.yaml", namespace="demo")


def test_a_template_that_calls_itself_becomes_its_own_flow() -> None:
    text = workflow("""\
    templates:
      - name: main
        steps:
          - - {name: flip, template: flip}
          - - {name: again, template: main, when: "{{steps.flip.outputs.result}} == tails"}
      - name: flip
        container: {image: busybox, command: [echo, heads]}
    """)
    flows = convert_source(text, file="wf.yaml", namespace="demo")
    assert [f.flow_id for f in flows] == ["demo", "demo-main"]
    again = tasks_by_id(flows[1].spec)["again"]
    assert (again["type"], again["flowId"]) == ("io.kestra.plugin.core.flow.Subflow", "demo-main")


# --- expressions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "pebble"),
    [
        ("a == 'x' && !b", "((a == 'x') and (not b))"),
        ("n > 2 ? 'big' : 'small'", "((n > 2) ? 'big' : 'small')"),
        ("asInt(n) + 1", "((n | int) + 1)"),
        ("jsonpath(j, '$[0].value')", "(fromJson(j) | jq('.[0][\"value\"]') | first)"),
        ("s contains 'x'", "('x' in s)"),
        ("x ?? 'none'", "(x ?? 'none')"),
        ("m matches 'a|b'", "(('a' in m) or ('b' in m))"),
    ],
)
def test_expr_becomes_pebble(source: str, pebble: str) -> None:
    assert translate_expr(source, ".".join) == pebble


@pytest.mark.parametrize("source", ["m matches '^a.*'", "unknownFn(1)", "x.Method()"])
def test_expr_that_cannot_be_rewritten_is_refused(source: str) -> None:
    with pytest.raises(ExprError):
        translate_expr(source, ".".join)


def test_depends_parse_evaluate_and_format() -> None:
    node = parse_depends("A && (C.Succeeded || C.Failed) && !B.Skipped")
    results = {"A": {"Succeeded": True}, "B": {"Failed": True}, "C": {"Failed": True}}
    assert evaluate_depends(node, results, {})
    assert not evaluate_depends(parse_depends("B"), results, {})
    assert evaluate_depends(parse_depends("B"), results, {"B": {"Failed"}})  # continueOn
    assert format_depends(node, str.lower) == "a && (c.Succeeded || c.Failed) && !b.Skipped"
    with pytest.raises(DependsError, match="task result 'Done'"):
        parse_depends("A.Done")


@pytest.mark.parametrize(
    ("argo", "iso"), [("20", "PT20S"), ("2m", "PT2M"), ("1h30m", "PT1H30M"), (90, "PT1M30S")]
)
def test_durations(argo: str | int, iso: str) -> None:
    assert iso_duration(argo) == iso
