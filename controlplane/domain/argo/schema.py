"""What the converter does with every field of every Argo object it reads.

Each object kind lists its fields in one of three ways:

- **converted** (``None``): the converter maps the field (``convert.py``);
- **noted** (``Note``): the field has no meaning in Flowplane (a Kubernetes
  scheduling or bookkeeping detail); the converted flow's header lists it with
  the reason, so nothing is dropped silently;
- **refused** (``Refuse``): the conversion fails with the message, at the
  field's line and column.

A field an object does not list is refused as unknown. This table is the one
place to look when a field "disappears": it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Note:
    """A field kept out of the flow on purpose; ``reason`` says why."""

    reason: str


@dataclass(frozen=True)
class Refuse:
    """A field the converter cannot express; ``message`` is the error."""

    message: str


Rule = Note | Refuse | None

_K8S = "a Kubernetes pod setting; Flowplane's runners do not read it"
_BOOKKEEPING = "Kubernetes object bookkeeping, set by the cluster"
_VOLUMES = Refuse(
    "volumes are not supported: Flowplane tasks share no volumes; "
    "pass values through parameters (a later issue may add volumes)"
)
_ARTIFACTS = Refuse(
    "an artifact repository is not supported: Flowplane passes artifacts between tasks "
    "inline, in their outputs (a later issue may add repositories)"
)
_EXTERNAL = Refuse(
    "artifacts backed by an external repository (s3, gcs, git, http, ...) are not "
    "supported: Flowplane passes artifacts between tasks inline, in their outputs "
    "(a later issue may add repositories)"
)
_DAEMON = Refuse(
    "daemon templates are not supported: a Flowplane task runs to completion; "
    "run the service outside the flow and pass its address as a parameter"
)
_SIDECARS = Refuse(
    "sidecars are not supported: a Flowplane task is one process; "
    "run the service outside the flow and pass its address as a parameter"
)
_SYNCHRONIZATION = Refuse(
    "synchronization (mutexes and semaphores) is not supported; "
    "use the flow's concurrency limit or a template parallelism instead"
)
_MEMOIZE = Refuse("memoize is not supported: Flowplane does not cache task results")
_POD_PATCH = Refuse("podSpecPatch is not supported: Flowplane does not build pods from patches")

FIELDS: dict[str, dict[str, Rule]] = {
    "document": {
        "apiVersion": None,
        "kind": None,
        "metadata": None,
        "spec": None,
        "status": Note("the status of a submitted workflow; a new run starts fresh"),
    },
    "metadata": {
        "name": None,
        "generateName": None,
        "namespace": None,
        "labels": None,
        "annotations": None,
        "uid": Note(_BOOKKEEPING),
        "resourceVersion": Note(_BOOKKEEPING),
        "creationTimestamp": Note(_BOOKKEEPING),
        "generation": Note(_BOOKKEEPING),
        "managedFields": Note(_BOOKKEEPING),
        "ownerReferences": Note(_BOOKKEEPING),
        "finalizers": Note(_BOOKKEEPING),
        "selfLink": Note(_BOOKKEEPING),
    },
    "workflowSpec": {
        "entrypoint": None,
        "templates": None,
        "arguments": None,
        "onExit": None,
        "hooks": None,
        "parallelism": None,
        "activeDeadlineSeconds": None,
        "templateDefaults": None,
        "workflowTemplateRef": None,
        "serviceAccountName": None,
        "nodeSelector": None,
        "priority": Note("a pod scheduling priority; Flowplane runs tasks in order of readiness"),
        "podPriority": Note(_K8S),
        "podPriorityClassName": Note(_K8S),
        "schedulerName": Note(_K8S),
        "securityContext": Note(_K8S),
        "tolerations": Note(_K8S),
        "affinity": Note(_K8S),
        "imagePullSecrets": Note(_K8S),
        "dnsPolicy": Note(_K8S),
        "dnsConfig": Note(_K8S),
        "hostNetwork": Note(_K8S),
        "automountServiceAccountToken": Note(_K8S),
        "executor": Note(_K8S),
        "podMetadata": Note(_K8S),
        "podDisruptionBudget": Note(_K8S),
        "podGC": Note("pod garbage collection; Flowplane keeps no pods"),
        "ttlStrategy": Note("Kubernetes object retention; Flowplane keeps every execution"),
        "archiveLogs": Note("log archiving; Flowplane stores every task log"),
        "metrics": Note("Prometheus metrics of the workflow; Flowplane exports its own"),
        "workflowMetadata": Note("labels of the created Workflow objects"),
        "volumes": _VOLUMES,
        "volumeClaimTemplates": _VOLUMES,
        "volumeClaimGC": _VOLUMES,
        "artifactRepositoryRef": _ARTIFACTS,
        "artifactGC": _ARTIFACTS,
        "synchronization": _SYNCHRONIZATION,
        "podSpecPatch": _POD_PATCH,
        "hostAliases": Refuse("hostAliases are not supported: tasks use the worker's resolver"),
        "retryStrategy": Refuse(
            "a workflow-level retryStrategy is not supported; set it on the templates"
        ),
        "shutdown": Refuse("shutdown is not supported: stop a run through the API or the UI"),
        "suspend": Refuse("spec.suspend is not supported: put a suspend template first"),
    },
    "template": {
        "name": None,
        "inputs": None,
        "outputs": None,
        "container": None,
        "script": None,
        "steps": None,
        "dag": None,
        "suspend": None,
        "retryStrategy": None,
        "activeDeadlineSeconds": None,
        "timeout": None,
        "parallelism": None,
        "failFast": None,
        "nodeSelector": None,
        "serviceAccountName": None,
        "metadata": Note("labels and annotations of the template's pod"),
        "annotations": Note("display annotations of the template's node in Argo's UI"),
        "metrics": Note("Prometheus metrics of the template; Flowplane exports its own"),
        "priority": Note(_K8S),
        "priorityClassName": Note(_K8S),
        "schedulerName": Note(_K8S),
        "securityContext": Note(_K8S),
        "tolerations": Note(_K8S),
        "affinity": Note(_K8S),
        "automountServiceAccountToken": Note(_K8S),
        "executor": Note(_K8S),
        "hostAliases": Note(_K8S),
        "daemon": _DAEMON,
        "sidecars": _SIDECARS,
        "initContainers": Refuse(
            "initContainers are not supported: put the preparation in the command or a step"
        ),
        "volumes": _VOLUMES,
        "resource": Refuse(
            "resource templates are not supported: Flowplane does not create Kubernetes "
            "objects from a template; use a Kubernetes task type"
        ),
        "http": Refuse(
            "HTTP templates are not supported by the converter; "
            "use Flowplane's io.kestra.plugin.core.http.Request task"
        ),
        "plugin": Refuse("executor plugin templates are not supported"),
        "containerSet": Refuse("containerSet templates are not supported"),
        "data": Refuse("data templates are not supported: they read artifacts"),
        "archiveLocation": _ARTIFACTS,
        "memoize": _MEMOIZE,
        "synchronization": _SYNCHRONIZATION,
        "podSpecPatch": _POD_PATCH,
    },
    "container": {
        "image": None,
        "command": None,
        "args": None,
        "env": None,
        "workingDir": None,
        "resources": None,
        "imagePullPolicy": None,
        "name": Note("the container's name inside its pod"),
        "ports": Note("ports matter to daemons and services, which Flowplane does not run"),
        "readinessProbe": Note("probes matter to daemons, which Flowplane does not run"),
        "livenessProbe": Note("probes matter to daemons, which Flowplane does not run"),
        "startupProbe": Note("probes matter to daemons, which Flowplane does not run"),
        "securityContext": Note(_K8S),
        "terminationMessagePath": Note(_K8S),
        "terminationMessagePolicy": Note(_K8S),
        "volumeMounts": _VOLUMES,
        "volumeDevices": _VOLUMES,
        "envFrom": Refuse("envFrom is not supported: list the variables under env"),
        "lifecycle": Refuse("container lifecycle hooks are not supported"),
        "stdin": Refuse("stdin is not supported: Flowplane tasks read no input stream"),
        "stdinOnce": Refuse("stdin is not supported: Flowplane tasks read no input stream"),
        "tty": Refuse("tty is not supported: Flowplane tasks have no terminal"),
    },
    "env": {
        "name": None,
        "value": None,
        "valueFrom": Refuse(
            "env valueFrom is not supported: give the value, or a Flowplane secret "
            "through a workflow parameter"
        ),
    },
    "inputs": {"parameters": None, "artifacts": None},
    "outputs": {
        "parameters": None,
        "artifacts": None,
        "result": Refuse("outputs.result is set by Argo, not written in a template"),
        "exitCode": Refuse("outputs.exitCode is set by Argo, not written in a template"),
    },
    "arguments": {"parameters": None, "artifacts": None},
    "artifact": {
        "name": None,
        "path": None,
        "from": None,
        "fromExpression": None,
        "optional": None,
        "globalName": None,
        "raw": None,
        "archive": Note("Flowplane always passes an artifact as a tar archive, inline"),
        "mode": Refuse(
            "artifact mode is not supported: files keep the mode they were written with"
        ),
        "subPath": Refuse("artifact subPath is not supported"),
        "recurseMode": Refuse("artifact recurseMode is not supported"),
        "archiveLogs": Note("log archiving; Flowplane stores every task log"),
        "deleted": Note(_BOOKKEEPING),
        "artifactGC": _ARTIFACTS,
        "s3": _EXTERNAL,
        "gcs": _EXTERNAL,
        "git": _EXTERNAL,
        "http": _EXTERNAL,
        "artifactory": _EXTERNAL,
        "oss": _EXTERNAL,
        "hdfs": _EXTERNAL,
        "azure": _EXTERNAL,
        "plugin": _EXTERNAL,
    },
    "parameter": {
        "name": None,
        "value": None,
        "default": None,
        "description": None,
        "enum": None,
        "valueFrom": None,
        "globalName": None,
    },
    "valueFrom": {
        "path": None,
        "parameter": None,
        "expression": None,
        "supplied": None,
        "default": None,
        "event": Refuse("valueFrom.event is not supported: Flowplane has no Argo Events"),
        "jqFilter": Refuse("valueFrom.jqFilter reads resource templates, which are refused"),
        "jsonPath": Refuse("valueFrom.jsonPath reads resource templates, which are refused"),
        "configMapKeyRef": Refuse(
            "valueFrom.configMapKeyRef is not supported: put the value in the flow "
            "or in the namespace's key-value store"
        ),
    },
    "dagTemplate": {"tasks": None, "failFast": None, "target": None},
    "step": {
        "name": None,
        "template": None,
        "templateRef": None,
        "inline": None,
        "arguments": None,
        "when": None,
        "withItems": None,
        "withParam": None,
        "withSequence": None,
        "continueOn": None,
        "onExit": None,
        "hooks": None,
    },
    "dagTask": {
        "name": None,
        "template": None,
        "templateRef": None,
        "inline": None,
        "arguments": None,
        "dependencies": None,
        "depends": None,
        "when": None,
        "withItems": None,
        "withParam": None,
        "withSequence": None,
        "continueOn": None,
        "onExit": None,
        "hooks": None,
    },
    "retryStrategy": {
        "limit": None,
        "retryPolicy": None,
        "backoff": None,
        "affinity": Note("node anti-affinity between retries; Flowplane's runners place no pods"),
        "expression": None,
    },
    "backoff": {"duration": None, "factor": None, "maxDuration": None, "cap": None},
    "continueOn": {"failed": None, "error": None},
    "hook": {
        "template": None,
        "templateRef": None,
        "arguments": None,
        "expression": Refuse(
            "hook expressions are not supported: only the exit hook runs, when the step ends"
        ),
    },
    "sequence": {"count": None, "start": None, "end": None, "format": None},
    "suspend": {"duration": None},
    "templateRef": {"name": None, "template": None, "clusterScope": None},
    "workflowTemplateRef": {"name": None, "clusterScope": None},
    "cronSpec": {
        "schedule": None,
        "schedules": None,
        "timezone": None,
        "concurrencyPolicy": None,
        "startingDeadlineSeconds": None,
        "suspend": None,
        "workflowSpec": None,
        "workflowMetadata": Note("labels of the created Workflow objects"),
        "successfulJobsHistoryLimit": Note(
            "Kubernetes object retention; Flowplane keeps every execution"
        ),
        "failedJobsHistoryLimit": Note(
            "Kubernetes object retention; Flowplane keeps every execution"
        ),
        "when": None,
        "stopStrategy": Refuse("stopStrategy is not supported: disable the trigger instead"),
    },
}

# A script template is a container with its source.
FIELDS["script"] = {**FIELDS["container"], "source": None}
