"""The command line: the same features as the library."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest

from capframe.cli import main


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
    ]
    assert sheets["customers"].height == 3

    code, _ = run("customers", "--ids", "-", "--sandbox", "-o", str(tmp_path / "all"), "--format", "csv", stdin=ids)
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(f"{name}.csv" for name in sheets)
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
