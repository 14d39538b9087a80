"""The README's five-minute tour, run as written against a live server.

The tour's shell block is taken from README.md and run by bash with the real
``flowplane`` executable. Only the server URL, the admin token and ``/tmp``
are substituted. Every command must succeed except the two the README says
fail on purpose (the bad flow, and the corpus with flows refused on purpose).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from controlplane.api import create_app
from tests.conftest import ADMIN_TOKEN
from tests.live_server import live_settings, serve_in_thread

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "kestra-valids"
EXPECTED_FAILURES = [
    "flowplane flows apply {tmp}/bad.yaml",
    "flowplane validate ../shared/corpus/kestra-valids/",
]


def tour_block() -> str:
    """The first ```sh block after the README's tour heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = text.split("## A five-minute tour", 1)[1]
    match = re.search(r"```sh\n(.*?)```", tour, re.DOTALL)
    assert match, "the README tour has no sh block"
    return match.group(1)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on uvicorn in a thread, SQLite in tmp, one embedded worker."""
    saved = structlog.get_config()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.__stderr__))
    application = create_app(live_settings(tmp_path_factory.mktemp("tour"), workers=1))
    with serve_in_thread(application) as url:
        yield url
    structlog.configure(**saved)


def test_the_readme_tour_runs_as_written(live: str, tmp_path: Path) -> None:
    assert CORPUS.is_dir(), "the tour reads ../shared/corpus beside the checkout"
    work = tmp_path / "tmp"
    work.mkdir()
    script = (
        tour_block()
        .replace("http://127.0.0.1:8080", live)
        .replace("fpt_…", ADMIN_TOKEN)
        .replace("/tmp/", f"{work}/")  # noqa: S108 - the tour's own paths, moved to tmp_path
    )
    # Report each failing command, with the tour's own text, and go on.
    traced = "trap 'echo \"TOUR-FAILED: $BASH_COMMAND\" >&2' ERR\n" + script
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "FLOWPLANE_CONFIG": str(tmp_path / "contexts.yaml"),
        "COLUMNS": "200",
        "LANG": "C.UTF-8",
    }
    done = subprocess.run(
        ["bash", "-c", traced],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    failed = re.findall(r"TOUR-FAILED: (.*)", done.stderr)
    assert failed == [f.format(tmp=work) for f in EXPECTED_FAILURES], output
    # What the README's comments promise each step shows.
    assert (
        "demo/bad.yaml:4:5: tasks[0]: unknown task type 'Lgo'; "
        "did you mean 'io.kestra.plugin.core.log.Log'?"
    ) in output
    assert "PAUSED" in output
    assert "shipping: ship it" in output
    assert "89 of 95 flow(s) valid" in output
    assert "1 of 1 flow(s) valid" in output
