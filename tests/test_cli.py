"""The command line: the same features as the library."""

from __future__ import annotations

import importlib.metadata
import io
import os
import threading
import tomllib
from pathlib import Path

import polars as pl
import pytest

import capframe
from capframe import cli
from capframe.cli import main
from capframe.errors import ConfigurationError, InvalidArgumentError
from capframe.sandbox import Sandbox, SandboxServer


def run(*argv: str, stdin: str | None = None) -> tuple[int, str]:
    out = io.StringIO()
    if stdin is None:
        return main(list(argv), out=out), out.getvalue()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(stdin))
        return main(list(argv), out=out), out.getvalue()


def test_demo_fetches_summarises_and_writes_parquet(tmp_path: Path) -> None:
    target = tmp_path / "customers.parquet"
    code, text = run("demo", "--count", "500", "-o", str(target))
    assert code == 0
    assert "Fetched 505 ids from the embedded sandbox" in text
    assert "8109" in text
    assert "8015" in text
    frame = pl.read_parquet(target)
    assert frame.height == 505
    assert frame["customer_id"].is_unique().all()


def test_customers_reads_ids_from_a_file_and_writes_any_table(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("# documented\n564332013, 565338404\n566135941\n")
    code, _ = run("customers", "--ids", str(ids), "--sandbox", "--table", "identifiers", "-o", str(tmp_path / "i.csv"))
    assert code == 0
    identifiers = pl.read_csv(tmp_path / "i.csv")
    assert set(identifiers["customer_id"]) == {565338404, 566135941}


def test_customers_from_stdin_to_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("565338404\n"))
    code, text = run("customers", "--ids", "-", "--sandbox", "-o", "-")
    assert code == 0
    assert text.splitlines()[1].startswith("565338404,true,,,Muhammad,Johns,INSTORE")


def test_children_by_parent(tmp_path: Path) -> None:
    code, _ = run("children", "--parent", "mobile:917799889933", "--sandbox", "-o", str(tmp_path / "c.parquet"))
    assert code == 0
    assert pl.read_parquet(tmp_path / "c.parquet")["first_name"].to_list() == ["Lalit", "tom"]


def test_errors_are_one_clear_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("12\nabc\n")
    assert run("customers", "--ids", str(ids), "--sandbox")[0] == 2
    assert "line 2: 'abc' is not a customer id" in capsys.readouterr().err
    ids.write_text("12\n")
    assert run("customers", "--ids", str(ids), "--sandbox", "--source", "SHOP")[0] == 2
    assert "unknown source 'SHOP'" in capsys.readouterr().err
    assert run("customers", "--ids", str(ids), "--sandbox", "-o", "x.txt")[0] == 2
    assert "a .xlsx workbook or a folder" in capsys.readouterr().err


def test_sandbox_prints_ids_for_pipelines() -> None:
    code, text = run("sandbox", "--print-ids", "3")
    assert code == 0
    assert len(text.split()) == 3
    assert all(t.isdigit() for t in text.split())


def test_help_says_how_to_configure(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "CAPILLARY_HOST" in capsys.readouterr().out


def test_demo_ids_is_now_count_and_the_old_spelling_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """One meaning per option name: --ids is a file of ids (customers); the demo's count is --count."""
    assert run("demo", "--ids", "5")[0] == 2
    assert "demo --ids 5: say --count 5" in capsys.readouterr().err


def test_customers_prints_a_summary_with_a_few_key_columns() -> None:
    code, text = run("customers", "--ids", "-", "--sandbox", stdin="565338404\n566135941\n564332013\n")
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == "customers: 3 rows, 1 failed ids (8109: 1)"
    header = next(line for line in lines if "customer_id" in line)
    assert [cell.strip() for cell in header.strip("│").split("┆")] == [
        "customer_id", "success", "error_code", "first_name", "loyalty_type", "lifetime_purchases"
    ]  # fmt: skip
    assert "565338404" in text  # not wrapped as "5653384 / 04"
    assert max(map(len, lines[:8])) <= 100
    assert "auto_update_time" not in text
    assert "-o report.xlsx" in text


def test_customers_writes_every_table_to_a_workbook_or_a_folder(tmp_path: Path) -> None:
    ids = "565338404\n566135941\n564332013\n"
    code, text = run("customers", "--ids", "-", "--sandbox", "-o", str(tmp_path / "report.xlsx"), stdin=ids)
    assert code == 0
    assert f"Wrote every table to {tmp_path / 'report.xlsx'}" in text
    sheets = pl.read_excel(tmp_path / "report.xlsx", sheet_id=0)
    assert list(sheets) == [
        "customers",
        "profiles",
        "identifiers",
        "comm_channels",
        "fields",
        "segments",
        "cards",
        "errors",
        "columns",  # what describes the tables: the data dictionary and the provenance
        "provenance",
    ]
    assert sheets["customers"].height == 3
    tables = list(sheets)[:-2]

    code, _ = run("customers", "--ids", "-", "--sandbox", "-o", str(tmp_path / "all"), "--format", "csv", stdin=ids)
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(f"{name}.csv" for name in tables)
    code, _ = run("customers", "--ids", "-", "--sandbox", "-o", str(tmp_path / "pq"), stdin=ids)
    assert code == 0
    assert pl.read_parquet(tmp_path / "pq" / "identifiers.parquet").height == 5


@pytest.mark.parametrize(
    ("content", "options"),
    [
        ("customer_id\n565338404\n566135941\n", []),  # a header line
        ("name,customer_id,city\nA,565338404,X\nB,566135941,Y\n", []),  # a CSV with a customer_id column
        ("name,id\nA,565338404\nB,566135941\n", ["--column", "id"]),  # another column, named
        ("id\n565338404.0\n566135941.0\n", []),  # pandas' floats for an integer column with a gap
    ],
)
def test_customers_reads_ids_from_a_csv_column(tmp_path: Path, content: str, options: list[str]) -> None:
    ids = tmp_path / "ids.csv"
    ids.write_text(content)
    code, _ = run("customers", "--ids", str(ids), *options, "--sandbox", "-o", str(tmp_path / "c.parquet"))
    assert code == 0
    assert pl.read_parquet(tmp_path / "c.parquet")["customer_id"].to_list() == [565338404, 566135941]


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        ("customer_id\n565338404\nnan\n", [], "line 3: 'nan' is a missing value, not a customer id"),
        ("name,customer_id\nA,565338404\nB,\n", [], "line 3: 'an empty value' is a missing value"),
        ("565338404\nNaN\n", [], "line 2: 'NaN' is a missing value"),
        ("name,id\nA,565338404\n", [], "its header names the columns name, id: say which holds the customer ids"),
        ("name,id\nA,565338404\n", ["--column", "cid"], "no column 'cid'"),
    ],
)
def test_ids_files_with_missing_values_or_no_id_column_are_refused_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, options: list[str], message: str
) -> None:
    ids = tmp_path / "ids.csv"
    ids.write_text(content)
    assert run("customers", "--ids", str(ids), *options, "--sandbox")[0] == 2
    assert message in capsys.readouterr().err


IDS = ["565338404", "566135941"]


@pytest.mark.parametrize(
    ("content", "options"),
    [
        ("\ufeffcustomer_id\n565338404\n566135941\n".encode(), []),  # Excel's "CSV UTF-8" starts with a BOM
        ("\ufeff565338404\n566135941\n".encode(), []),
        (b"customer_id\r\n565338404\r\n\r\n566135941\r\n\r\n", []),  # Windows line ends, blank lines
        ("customer_id\n565338404\n566135941\n".encode("utf-16"), []),  # Excel's "Unicode Text"
        (b",name,customer_id\n0,A,565338404.0\n1,B,566135941.0\n", []),  # pandas' to_csv() with its index
        (b",id\n0,565338404\n1,566135941\n", []),  # the index and one named column
        (b"name;customer_id\nA;565338404\nB;566135941\n", []),  # Excel's CSV where the comma is a decimal mark
        (b"name\tid\nA\t565338404\nB\t566135941\n", ["--column", "id"]),  # tab-separated
    ],
)
def test_customers_reads_the_ids_files_spreadsheets_and_pandas_write(
    tmp_path: Path, content: bytes, options: list[str]
) -> None:
    ids = tmp_path / "ids.csv"
    ids.write_bytes(content)
    code, _ = run("customers", "--ids", str(ids), *options, "--sandbox", "-o", str(tmp_path / "c.parquet"))
    assert code == 0
    assert pl.read_parquet(tmp_path / "c.parquet")["customer_id"].to_list() == [int(i) for i in IDS]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no customer ids"),
        (b"customer_id\n", "holds no customer ids"),
        (b"# only a comment\n\n", "holds no customer ids"),
        (b"\xff\x00\xfe\x12", "is not a text file"),
    ],
)
def test_an_ids_file_without_ids_is_refused_rather_than_an_empty_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    ids = tmp_path / "ids.csv"
    ids.write_bytes(content)
    assert run("customers", "--ids", str(ids), "--sandbox", "-o", str(tmp_path / "c.parquet"))[0] == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "c.parquet").exists()


def test_an_ids_path_that_is_no_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("customers", "--ids", str(tmp_path / "missing.txt"), "--sandbox")[0] == 2
    assert f"--ids {tmp_path / 'missing.txt'}: no such file" in capsys.readouterr().err
    assert run("customers", "--ids", str(tmp_path), "--sandbox")[0] == 2
    assert "is a folder: give the path of a file of customer ids" in capsys.readouterr().err


def test_output_in_a_missing_folder_is_made_and_an_unwritable_one_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = "\n".join(IDS)
    (tmp_path / "tables.v2").mkdir()  # an existing folder whose name has a dot
    for target in ("new1/report.xlsx", "new2/one.parquet", "new3/one.csv", "tables.v2", "new4/tables.v3/"):
        code, _ = run("customers", "--ids", "-", "--sandbox", "-o", f"{tmp_path}/{target}", stdin=ids)
        assert code == 0, target
        assert (tmp_path / target.rstrip("/")).exists(), target
    # An existing folder is written into whatever its name, and a path ending in / is a folder.
    assert (tmp_path / "tables.v2" / "customers.parquet").exists()
    assert (tmp_path / "new4" / "tables.v3" / "identifiers.parquet").exists()
    (tmp_path / "a-file").write_text("")
    for target in ("a-file/report.xlsx", "a-file/one.parquet"):
        code, _ = run("customers", "--ids", "-", "--sandbox", "-o", str(tmp_path / target), stdin=ids)
        assert code == 2, target
        err = capsys.readouterr().err
        assert err.startswith(f"capframe: error: cannot write {tmp_path / target}"), err
        assert "Traceback" not in err


def test_a_named_column_of_an_empty_file_says_it_holds_no_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ids.csv").write_text("\n")
    assert run("customers", "--ids", str(tmp_path / "ids.csv"), "--column", "id", "--sandbox")[0] == 2
    assert "holds no customer ids" in capsys.readouterr().err


def test_demo_writes_what_its_output_names(tmp_path: Path) -> None:
    # A workbook name gets a workbook (not parquet bytes named .xlsx), a missing folder is made.
    code, _ = run("demo", "--count", "20", "--no-progress", "-o", str(tmp_path / "new" / "demo.xlsx"))
    assert code == 0
    sheets = pl.read_excel(tmp_path / "new" / "demo.xlsx", sheet_id=0)
    assert sheets["customers"].height == 25
    code, _ = run("demo", "--count", "20", "--no-progress", "-o", str(tmp_path / "demo.csv"))
    assert code == 0
    assert pl.read_csv(tmp_path / "demo.csv").height == 25


@pytest.mark.parametrize(
    ("count", "message"),
    [
        ("0", "--count 0: fetch at least one"),
        ("-5", "--count -5: fetch at least one"),
        ("20000", "has 10,000 customers"),
    ],
)
def test_demo_refuses_a_count_it_cannot_fetch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], count: str, message: str
) -> None:
    assert run("demo", "--count", count, "--no-progress", "-o", str(tmp_path / "d.parquet"))[0] == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "d.parquet").exists()


def test_children_with_a_cache_dir_and_the_snapshot_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snap = str(tmp_path / "snap")
    for name in ("CAPILLARY_HOST", "CAPILLARY_USERNAME", "CAPILLARY_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    code, _ = run(
        "children", "--parent", "mobile:917799889933", "--sandbox", "--cache-dir", snap, "-o", str(tmp_path / "a.csv")
    )
    assert code == 0
    # A complete snapshot: no --sandbox, no credentials, the same children.
    code, _ = run("children", "--parent", "mobile:917799889933", "--cache-dir", snap, "-o", str(tmp_path / "b.csv"))
    assert code == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()

    code, text = run("snapshot", "info", snap)
    assert code == 0
    assert "children   1 units" in text
    assert "INSTORE" in text
    code, text = run("snapshot", "verify", snap)
    assert (code, text.strip()) == (0, f"{snap}: every file is intact")
    victim = next((tmp_path / "snap" / "children" / "children").glob("*.parquet"))
    victim.write_bytes(b"garbage")
    code, text = run("snapshot", "verify", snap)
    assert code == 1
    assert f"damaged: children/children/{victim.name}" in text
    code, text = run("snapshot", "prune", snap, "--older-than", "30d")
    assert (code, text.strip()) == (0, f"removed 0 unit(s) fetched more than 30 days, 0:00:00 ago from {snap}")
    code, text = run("snapshot", "prune", snap, "--older-than", "0s")
    assert "removed 1 unit(s)" in text


def test_demo_to_stdout_writes_only_the_csv_there(capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run("demo", "--count", "20", "--no-progress", "-o", "-")
    assert code == 0
    assert pl.read_csv(io.StringIO(text)).height == 25  # the summary went to stderr, not into the CSV
    assert "Fetched 25 ids" in capsys.readouterr().err


# --- errors in a command-line user's terms ---------------------------------------------------------

_VARIABLES = (
    "CAPILLARY_HOST",
    "CAPILLARY_USERNAME",
    "CAPILLARY_PASSWORD",
    "CAPILLARY_CLIENT_KEY",
    "CAPILLARY_CLIENT_SECRET",
)
_PYTHON_ONLY = ("client=", "Client.sandbox", "pass username", "client_key and", "from_env")


def _one_line_for_the_command_line(err: str) -> str:
    """The error a CLI user sees: one line, nothing that only means something in Python."""
    assert err.startswith("capframe: error: "), err
    assert err.count("\n") == 1, err
    assert not [word for word in _PYTHON_ONLY if word in err], err
    return err


@pytest.mark.parametrize(
    ("variables", "argv", "what"),
    [
        ({}, ["customers", "--ids", "-"], "no Capillary cluster is configured"),
        ({}, ["children", "--parent", "mobile:917799889933"], "no Capillary cluster is configured"),
        ({"CAPILLARY_HOST": "eu"}, ["customers", "--ids", "-"], "no credentials"),
        ({"CAPILLARY_HOST": "eu", "CAPILLARY_USERNAME": "till"}, ["customers", "--ids", "-"], "incomplete credentials"),
        ({"CAPILLARY_HOST": "eu", "CAPILLARY_CLIENT_KEY": "k"}, ["customers", "--ids", "-"], "incomplete credentials"),
    ],
)
def test_missing_credentials_say_what_a_command_line_user_can_do(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variables: dict[str, str],
    argv: list[str],
    what: str,
) -> None:
    """The library says "pass client=capframe.Client.sandbox()": on a command line, --sandbox and the variables."""
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert run(*argv, "--no-progress", stdin="565338404\n")[0] == 2
    err = _one_line_for_the_command_line(capsys.readouterr().err)
    assert what in err
    assert "--sandbox" in err
    assert "CAPILLARY_HOST" in err
    assert "CAPILLARY_USERNAME/CAPILLARY_PASSWORD" in err
    assert "CAPILLARY_CLIENT_KEY/CAPILLARY_CLIENT_SECRET" in err


def test_a_snapshot_without_credentials_says_what_a_command_line_user_can_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sandbox_server: SandboxServer
) -> None:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    snap = str(tmp_path / "snap")
    # An empty snapshot: nothing to read, nothing configured to fetch with.
    assert run("customers", "--ids", "-", "--cache-dir", snap, stdin="565338404\n")[0] == 2
    err = _one_line_for_the_command_line(capsys.readouterr().err)
    assert "no Capillary cluster is configured" in err
    assert "--sandbox" in err
    # A snapshot holding some of the ids.
    assert (
        run("customers", "--ids", "-", "--sandbox", "--cache-dir", snap, "--no-progress", stdin="565338404\n")[0] == 0
    )
    capsys.readouterr()
    assert run("customers", "--ids", "-", "--cache-dir", snap, stdin="565338404\n566135941\n")[0] == 2
    err = _one_line_for_the_command_line(capsys.readouterr().err)
    assert f"1 of 2 customer ids are not in the snapshot {snap} for {Sandbox.BASE_URL} and source INSTORE: " in err
    assert ": to fetch them, set CAPILLARY_HOST" in err
    assert "--sandbox" in err
    # A snapshot of two hosts: CAPILLARY_HOST says which one to read.
    with monkeypatch.context() as patch:
        patch.setenv("CAPILLARY_HOST", sandbox_server.url)
        patch.setenv("CAPILLARY_USERNAME", Sandbox.USERNAME)
        patch.setenv("CAPILLARY_PASSWORD", Sandbox.PASSWORD)
        assert run("customers", "--ids", "-", "--cache-dir", snap, "--no-progress", stdin="565338404\n")[0] == 0
    capsys.readouterr()
    assert run("customers", "--ids", "-", "--cache-dir", snap, stdin="565338404\n")[0] == 2
    err = _one_line_for_the_command_line(capsys.readouterr().err)
    assert "holds several hosts" in err
    assert err.rstrip().endswith("set CAPILLARY_HOST to say which one")


def test_a_damaged_snapshot_without_credentials_says_what_a_command_line_user_can_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    snap = tmp_path / "snap"
    fetched = run(
        "customers", "--ids", "-", "--sandbox", "--cache-dir", str(snap), "--no-progress", stdin="565338404\n"
    )
    assert fetched[0] == 0
    capsys.readouterr()
    # A damaged table file, then a damaged index: no credentials to fetch again what they held.
    for damaged in ("customers/*/*.parquet", "customers/*.parquet"):
        for path in snap.glob(damaged):
            path.write_bytes(b"garbage")
        assert run("customers", "--ids", "-", "--cache-dir", str(snap), stdin="565338404\n")[0] == 2
        err = _one_line_for_the_command_line(capsys.readouterr().err)
        assert "damaged" in err
        assert "no credentials to fetch" in err
        assert "--sandbox" in err
        assert "CAPILLARY_USERNAME/CAPILLARY_PASSWORD" in err


def test_a_python_remedy_in_words_the_command_line_does_not_know_gets_its_remedy_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise ConfigurationError("the cluster was renamed; pass client= for the new one")

    monkeypatch.setattr("capframe.cli.fetch_customer_tables", refuse)
    assert run("customers", "--ids", "-", stdin="565338404\n")[0] == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "capframe: error: the cluster was renamed; pass client= for the new one; on the command line, "
    )
    assert "set CAPILLARY_HOST" in err
    assert "--sandbox" in err


@pytest.mark.parametrize(
    ("content", "line", "token"),
    [
        ("565338404\n0\n", 2, "0"),
        ("565338404\n# a comment\n\n00\n", 4, "00"),  # the file's line, counting comments and blank lines
        ("565338404, 566135941\n-5\n", 2, "-5"),
        ("565338404\n1.5\n", 2, "1.5"),
        ("565338404 9223372036854775808\n", 1, "9223372036854775808"),  # past 2**63 - 1
        ("565338404\n" + "1" * 5000 + "\n", 2, "1" * 20),  # shown cut short
        ("customer_id\n565338404\n0\n", 3, "0"),
        ("name,customer_id\nA,565338404\nB,-7\n", 3, "-7"),
    ],
)
def test_an_id_that_is_no_customer_id_names_the_file_and_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, line: int, token: str
) -> None:
    ids = tmp_path / "ids.csv"
    ids.write_text(content)
    assert run("customers", "--ids", str(ids), "--sandbox", "-o", str(tmp_path / "c.parquet"))[0] == 2
    err = capsys.readouterr().err
    assert err == (
        f"capframe: error: {ids}: line {line}: {token!r} is not a customer id: customer ids are positive"
        " integers below 2**63; correct or remove that line\n"
    )
    assert not (tmp_path / "c.parquet").exists()


def test_an_id_from_stdin_that_is_no_customer_id_names_stdin_and_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("customers", "--ids", "-", "--sandbox", stdin="565338404\n0\n")[0] == 2
    assert "capframe: error: stdin: line 2: '0' is not a customer id" in capsys.readouterr().err


# --- ids files are bounded: untrusted input, read whole ----------------------------------------------


def test_a_device_as_ids_file_is_refused_without_reading_it(capsys: pytest.CaptureFixture[str]) -> None:
    for device in ("/dev/zero", "/dev/urandom"):
        assert run("customers", "--ids", device, "--sandbox")[0] == 2
        assert f"--ids {device} is a device, not a file" in capsys.readouterr().err


def test_an_ids_file_past_the_bounds_is_an_error_naming_it_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bounds, made small: a file or stdin past them is refused, a FIFO (a shell's <(...)) too."""
    monkeypatch.setattr(cli, "MAX_IDS_BYTES", 1000)
    monkeypatch.setattr(cli, "MAX_IDS_LINES", 50)
    ids = "565338404\n"
    (tmp_path / "long.txt").write_text(ids * 101)  # 1010 bytes
    assert run("customers", "--ids", str(tmp_path / "long.txt"), "--sandbox")[0] == 2
    assert f"--ids {tmp_path / 'long.txt'} holds more than" in capsys.readouterr().err
    assert run("customers", "--ids", "-", "--sandbox", stdin=ids * 101)[0] == 2
    assert "stdin holds more than" in capsys.readouterr().err
    (tmp_path / "many.txt").write_text("1\n" * 51)
    assert run("customers", "--ids", str(tmp_path / "many.txt"), "--sandbox")[0] == 2
    err = capsys.readouterr().err
    assert "many.txt has more than 50 lines" in err
    assert "split the ids into several files" in err

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(b"1\n" * 2000), daemon=True)
    writer.start()
    with pytest.raises(InvalidArgumentError, match="holds more than"):
        cli._read_ids(str(fifo), io.StringIO())
    # Within the bounds, all is read as before.
    (tmp_path / "fits.txt").write_text(ids * 50)
    assert cli._read_ids(str(tmp_path / "fits.txt"), io.StringIO()) == [565338404] * 50


def test_the_version_is_pyprojects_wherever_a_user_sees_it(capsys: pytest.CaptureFixture[str]) -> None:
    """pyproject.toml says it once; the package, `capframe --version` and a result's provenance say the same."""
    declared = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["version"]
    installed = importlib.metadata.version("capframe")
    assert installed == declared, f"the installed metadata says {installed}: reinstall (pip install -e .)"
    assert capframe.__version__ == declared
    with pytest.raises(SystemExit) as shown:
        main(["--version"])
    assert shown.value.code == 0
    assert capsys.readouterr().out == f"capframe {declared}\n"
    client = capframe.Client.sandbox(100)
    tables = capframe.fetch_customer_tables([565338404], "INSTORE", client=client, progress=False)
    assert tables.provenance.capframe_version == declared


def test_a_warning_is_said_in_the_command_lines_terms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No file and line of capframe's code, and the table to write rather than a Python accessor."""
    mobiles = tmp_path / "campaign.txt"
    mobiles.write_text("912726093529\n910000000000\n")
    code = main(["customers", "--sandbox", "--ids", str(mobiles), "--identifier", "mobile", "--no-progress"])
    assert code == 0
    err = capsys.readouterr().err
    assert "capframe: warning: 1 of 2 identifier values have no customer in INSTORE: --table lookups" in err
    assert "cli.py" not in err
    assert "failed_lookups" not in err


def test_account_id_looks_identifiers_up_in_a_multi_account_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = Sandbox(3000)
    mobile = next(v for c, s, t, v in org.identifiers() if (s, t) == ("WECHAT", "mobile"))
    values = tmp_path / "wechat.txt"
    values.write_text(f"{mobile}\n")
    lookups = tmp_path / "lookups.csv"
    argv = ["customers", "--sandbox", "--ids", str(values), "--identifier", "mobile", "--source", "WECHAT"]
    assert run(*argv, "--account-id", "wx-1", "--table", "lookups", "-o", str(lookups))[0] == 0
    assert pl.read_csv(lookups)["found"].to_list() == [True]
    assert run(*argv, "--table", "lookups", "-o", str(lookups))[0] == 0
    assert pl.read_csv(lookups)["error_code"].to_list() == [8045]
    assert main(["customers", "--sandbox", "--ids", str(values), "--account-id", "wx-1"]) == 2
    assert "capframe: error: --account-id goes with --identifier" in capsys.readouterr().err
    assert main([*argv, "--account-id", " "]) == 2
    assert "None" not in capsys.readouterr().err  # no Python value in a command line's remedy


@pytest.mark.parametrize(
    ("text", "column", "said"),
    [
        ("name,mobile\nA,912726093529\nB,\n", "mobile", "3 is empty"),
        ("912726093529\n# a comment\n" + "9" * 600 + "\n", None, "3 is 600 characters long"),
    ],
)
def test_a_bad_identifier_value_is_named_by_its_line_and_not_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, column: str | None, said: str
) -> None:
    """As a bad customer id is: the library named it "value #2", a position the analyst had to map
    back to the file by hand (comments and the header make it another number)."""
    values = tmp_path / "values.txt"
    values.write_text(text)
    argv = ["customers", "--sandbox", "--ids", str(values), "--identifier", "mobile", "--no-progress"]
    assert main([*argv, *(["--column", column] if column else [])]) == 2
    err = capsys.readouterr().err
    assert f"capframe: error: {values}: line {said}" in err
    assert "9" * 20 not in err
