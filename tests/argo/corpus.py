"""The Argo examples corpus (../shared/corpus/argo-workflows) and what converting each gives."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "argo-workflows"

# The files that do not convert, with the construct that stops each (a refused one).
REFUSED = {
    "ci-output-artifact.yaml": "volumes are not supported",
    "ci-workflowtemplate.yaml": "volumes are not supported",
    "ci.yaml": "volumes are not supported",
    "work-avoidance.yaml": "volumes are not supported",
    "cron-backfill.yaml": "resource templates are not supported",
    "dag-daemon-retry-strategy.yaml": "daemon templates are not supported",
    "dag-daemon-task.yaml": "daemon templates are not supported",
    "steps-daemon-retry-strategy.yaml": "daemon templates are not supported",
    "variables-showcase.yaml": "daemon templates are not supported",
    "map-reduce.yaml": "artifacts backed by an external repository",
    "exit-handlers.yaml": "{{workflow.failures}} is not supported",
    "cron-workflow-multiple-schedules.yaml": "concurrencyPolicy Replace with several schedules",
}


def corpus_files() -> list[Path]:
    """Every example of the corpus, sorted; a missing corpus fails the test."""
    if not CORPUS.is_dir():
        pytest.fail(f"the Argo corpus is missing at {CORPUS}; clone with ../shared beside it")
    return sorted(CORPUS.glob("*.yaml"))
