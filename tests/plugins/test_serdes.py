"""CSV, JSON and Ion conversions of stored files, through the engine, with the real amazon.ion.

Each flow stores input files with LocalFiles, converts them, and the tests read
the stored results: Ion with ``amazon.ion`` (the values and their Ion types),
CSV and JSON as text.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import amazon.ion.simpleion as ion
import pytest
from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from controlplane.plugins.api import TaskFailedError, require_extra
from tests.services.test_engine import logs, put_flow, run, task_runs

RUNS: dict[str, str] = {
    "io.kestra.plugin.serdes.csv.CsvToIon": "test_csv_to_ion_to_json_and_back_to_csv",
    "io.kestra.plugin.serdes.json.IonToJson": "test_csv_to_ion_to_json_and_back_to_csv",
    "io.kestra.plugin.serdes.csv.IonToCsv": "test_csv_to_ion_to_json_and_back_to_csv",
    "io.kestra.plugin.serdes.json.JsonToIon": "test_json_to_ion_keeps_types_and_back",
}

PEOPLE = 'name;age;city\\nAda;36;\\"London; UK\\"\\n\\nBob;\\\\N;Paris\\nbroken;1\\n'


def test_csv_to_ion_to_json_and_back_to_csv(client: TestClient) -> None:
    source = f"""\
id: serdes
namespace: demo
tasks:
  - id: files
    type: LocalFiles
    inputs:
      people.csv: "{PEOPLE}"
    outputs: [people.csv]
  - id: csv
    type: io.kestra.plugin.serdes.csv.CsvToIon
    from: "{{{{ outputs.files.uris['people.csv'] }}}}"
    fieldSeparator: ";"
    skipEmptyRows: true
    onBadLines: WARN
  - id: json
    type: io.kestra.plugin.serdes.json.IonToJson
    from: "{{{{ outputs.csv.uri }}}}"
  - id: back
    type: io.kestra.plugin.serdes.csv.IonToCsv
    from: "{{{{ outputs.csv.uri }}}}"
    quoteMode: NON_NUMERIC
"""
    put_flow(client, source)
    execution = run(client, "demo", "serdes")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    outputs = {k: v["outputs"] for k, v in task_runs(execution).items()}

    ion_file = Path(outputs["csv"]["uri"])
    assert ion_file.suffix == ".ion"
    records = ion.loads(ion_file.read_text(), single_value=False)
    assert dict(records[0]) == {"name": "Ada", "age": "36", "city": "London; UK"}
    # `\N` is Kestra's null; the row with too few fields was logged and left out.
    assert records[1]["age"].ion_type.name == "NULL"
    assert len(records) == 2
    assert "Bad line encountered (field count mismatch): Expected 3, got 2 fields." in lines

    jsonl = Path(outputs["json"]["uri"])
    assert jsonl.suffix == ".jsonl"
    assert [json.loads(x) for x in jsonl.read_text().splitlines()] == [
        {"name": "Ada", "age": "36", "city": "London; UK"},
        {"name": "Bob", "age": None, "city": "Paris"},
    ]
    assert Path(outputs["back"]["uri"]).read_text() == (
        '"name","age","city"\n"Ada",36,"London; UK"\n"Bob","","Paris"\n'
    )


def test_json_to_ion_keeps_types_and_back(client: TestClient) -> None:
    document = json.dumps(
        [
            {"id": 1, "price": 9.5, "ok": True, "tags": ["a", "b"], "note": None},
            {"id": 2, "price": 12, "ok": False, "tags": [], "note": "x"},
        ]
    ).replace('"', '\\"')
    source = f"""\
id: serdes-json
namespace: demo
tasks:
  - id: files
    type: LocalFiles
    inputs:
      items.json: "{document}"
    outputs: [items.json]
  - id: ion
    type: io.kestra.plugin.serdes.json.JsonToIon
    from: "{{{{ outputs.files.uris['items.json'] }}}}"
    newLine: false
    charset: UTF-8
  - id: json
    type: serdes.json.IonToJson
    from: "{{{{ outputs.ion.uri }}}}"
    newLine: false
    charset: UTF-8
"""
    put_flow(client, source)
    execution = run(client, "demo", "serdes-json")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    outputs = {k: v["outputs"] for k, v in task_runs(execution).items()}
    first, second = ion.loads(Path(outputs["ion"]["uri"]).read_text(), single_value=False)
    # JSON's numbers keep their kind: an int, and a decimal (Ion's exact number).
    assert (first["id"].ion_type.name, first["price"].ion_type.name) == ("INT", "DECIMAL")
    assert Decimal(first["price"]) == Decimal("9.5")
    assert first["ok"] is True or bool(first["ok"]) is True
    assert list(second["tags"]) == []
    array = json.loads(Path(outputs["json"]["uri"]).read_text())
    assert array == [
        {"id": 1, "price": 9.5, "ok": True, "tags": ["a", "b"], "note": None},
        {"id": 2, "price": 12, "ok": False, "tags": [], "note": "x"},
    ]
    assert outputs["json"]["uri"].endswith(".json")


def test_a_bad_line_fails_by_default_and_files_stay_in_the_execution(
    client: TestClient, tmp_path: Path
) -> None:
    source = f"""\
id: serdes-bad
namespace: demo
tasks:
  - id: files
    type: LocalFiles
    inputs:
      people.csv: "{PEOPLE}"
    outputs: [people.csv]
  - id: csv
    type: io.kestra.plugin.serdes.csv.CsvToIon
    from: "{{{{ outputs.files.uris['people.csv'] }}}}"
    fieldSeparator: ";"
    skipEmptyRows: true
"""
    put_flow(client, source)
    execution = run(client, "demo", "serdes-bad")
    assert execution["state"] == "FAILED"
    assert any("field count mismatch" in x for x in logs(client, execution["id"]))

    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    put_flow(
        client,
        f"id: serdes-outside\nnamespace: demo\ntasks:\n"
        f"  - {{id: csv, type: io.kestra.plugin.serdes.csv.CsvToIon, from: '{outside}'}}\n",
    )
    execution = run(client, "demo", "serdes-outside")
    assert execution["state"] == "FAILED"
    assert any("is not a file of this execution" in x for x in logs(client, execution["id"]))


def test_csv_and_json_options(client: TestClient) -> None:
    quoted = "title line\\nname,note\\n'Ada','said ''hi'''x\\n"
    source = f"""\
id: serdes-options
namespace: demo
tasks:
  - id: files
    type: LocalFiles
    inputs:
      quoted.csv: "{quoted}"
      stamps.ion: "{{t: 2024-05-01T10:00:00-00:00, n: 1.5}}"
    outputs: ["*"]
  - id: csv
    type: io.kestra.plugin.serdes.csv.CsvToIon
    from: "{{{{ outputs.files.uris['quoted.csv'] }}}}"
    header: false
    skipRows: 2
    textDelimiter: "'"
    allowExtraCharsAfterClosingQuote: true
  - id: back
    type: io.kestra.plugin.serdes.csv.IonToCsv
    from: "{{{{ outputs.csv.uri }}}}"
    header: false
    alwaysDelimitText: true
    lineDelimiter: "\\r\\n"
    fieldSeparator: "|"
    textDelimiter: "'"
    charset: ISO-8859-1
  - id: json
    type: io.kestra.plugin.serdes.json.IonToJson
    from: "{{{{ outputs.files.uris['stamps.ion'] }}}}"
    timeZoneId: Europe/Paris
  - id: small
    type: io.kestra.plugin.serdes.csv.CsvToIon
    from: "{{{{ outputs.files.uris['quoted.csv'] }}}}"
    maxFieldSize: 3
    allowFailure: true
"""
    put_flow(client, source)
    execution = run(client, "demo", "serdes-options")
    lines = logs(client, execution["id"])
    runs = task_runs(execution)
    outputs = {k: v["outputs"] for k, v in runs.items()}
    # No header here: skipRows dropped the first two rows; the quote is `'`, and the
    # character after a closing quote is kept, as allowExtraCharsAfterClosingQuote says.
    (record,) = ion.loads(Path(outputs["csv"]["uri"]).read_text(), single_value=False)
    assert list(record) == ["Ada", "said 'hi'x"]
    assert Path(outputs["back"]["uri"]).read_bytes() == b"'Ada'|'said ''hi''x'\r\n"
    # A timestamp without an offset takes timeZoneId; the decimal is a JSON number.
    assert json.loads(Path(outputs["json"]["uri"]).read_text()) == {
        "t": "2024-05-01T10:00:00+02:00",
        "n": 1.5,
    }
    assert runs["small"]["state"] == "WARNING"
    assert any("a field is over 3 chars" in line for line in lines), lines


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("fieldSeparator: ';;'", "must be exactly one character"),
        ("charset: KLINGON-8", "is not a known charset"),
        ("maxBufferSize: 10", "maxBufferSize is not supported"),
    ],
)
def test_unsupported_csv_options_are_refused(extra: str, message: str) -> None:
    source = f"""\
id: serdes-refused
namespace: demo
tasks:
  - id: csv
    type: io.kestra.plugin.serdes.csv.CsvToIon
    from: x
    {extra}
"""
    with pytest.raises(InvalidFlowError, match=message):
        validate_flow(source)


def test_a_missing_extra_is_named() -> None:
    # The integration families import their client libraries only when a task runs.
    with pytest.raises(
        TaskFailedError, match=r"needs the 'serdes' extra: pip install 'flowplane\[serdes\]'"
    ):
        require_extra(
            "no_such_module_for_flowplane", "serdes", "io.kestra.plugin.serdes.csv.CsvToIon"
        )
