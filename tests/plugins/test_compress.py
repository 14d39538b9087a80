"""ArchiveCompress and ArchiveDecompress on real files of an execution (zipfile, tarfile)."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from tests.services.test_engine import logs, put_flow, run, task_runs

_ROUND_TRIP = "test_compress_then_decompress_round_trips_files"
RUNS = {
    "io.kestra.plugin.compress.ArchiveCompress": _ROUND_TRIP,
    "io.kestra.plugin.compress.ArchiveDecompress": _ROUND_TRIP,
}

_MAKE_FILES = """\
  - id: make
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    outputFiles: ["*.csv"]
    commands:
      - printf 'id,name\\n1,ada\\n' > products.csv
      - printf 'id,qty\\n1,3\\n' > orders.csv
"""


@pytest.mark.parametrize(
    ("algorithm", "compression"), [("TAR", "GZIP"), ("ZIP", None), ("TAR", "XZ")]
)
def test_compress_then_decompress_round_trips_files(
    client: TestClient, algorithm: str, compression: str | None
) -> None:
    compressed = f"\n    compression: {compression}" if compression else ""
    source = f"""\
id: archives
namespace: demo
tasks:
{_MAKE_FILES}
  - id: archive_compress
    type: io.kestra.plugin.compress.ArchiveCompress
    from:
      products.csv: "{{{{ outputs.make.outputFiles['products.csv'] }}}}"
      data/orders.csv: "{{{{ outputs.make.outputFiles['orders.csv'] }}}}"
    algorithm: {algorithm}{compressed}
  - id: unzip
    type: io.kestra.plugin.compress.ArchiveDecompress
    from: "{{{{ outputs.archive_compress.uri }}}}"
    algorithm: {algorithm}{compressed}
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ read(outputs.unzip.files['data/orders.csv']) | trim }}}}"
"""
    put_flow(client, source)
    execution = run(client, "demo", "archives")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    runs = task_runs(execution)
    archive = Path(runs["archive_compress"]["outputs"]["uri"])
    if algorithm == "ZIP":
        assert archive.name == "archive_compress.zip"
        with zipfile.ZipFile(archive) as zipped:
            assert sorted(zipped.namelist()) == ["data/orders.csv", "products.csv"]
    else:
        suffix = {"GZIP": ".tar.gz", "XZ": ".tar.xz"}[str(compression)]
        assert archive.name == f"archive_compress{suffix}"
        with tarfile.open(archive) as tarred:  # tarfile detects the compression itself
            assert sorted(tarred.getnames()) == ["data/orders.csv", "products.csv"]
    files = runs["unzip"]["outputs"]["files"]
    assert sorted(files) == ["data/orders.csv", "products.csv"]
    assert Path(files["products.csv"]).read_text(encoding="utf-8") == "id,name\n1,ada\n"
    assert runs["show"]["outputs"]["value"] == "id,qty\n1,3"


def test_an_entry_leaving_the_folder_fails_the_task(client: TestClient) -> None:
    source = """\
id: slip
namespace: demo
tasks:
  - id: make
    type: io.kestra.plugin.scripts.python.Script
    outputFiles: ["evil.zip"]
    script: |
      import zipfile
      with zipfile.ZipFile("evil.zip", "w") as z:
          z.writestr("../../escaped.txt", "boom")
  - id: unzip
    type: io.kestra.plugin.compress.ArchiveDecompress
    from: "{{ outputs.make.outputFiles['evil.zip'] }}"
    algorithm: ZIP
"""
    put_flow(client, source)
    execution = run(client, "demo", "slip")
    lines = logs(client, execution["id"])
    assert execution["state"] == "FAILED"
    assert any("would land outside the task's folder" in line for line in lines), lines


def test_codecs_without_a_stdlib_implementation_are_refused_at_validation() -> None:
    source = """\
id: refused
namespace: demo
tasks:
  - id: unzip
    type: io.kestra.plugin.compress.ArchiveDecompress
    from: /tmp/x.tar
    algorithm: CPIO
    compression: ZSTD
"""
    with pytest.raises(InvalidFlowError) as caught:
        validate_flow(source)
    text = str(caught.value)
    assert "algorithm CPIO is not supported by Flowplane" in text
    assert "compression ZSTD is not supported by Flowplane" in text
