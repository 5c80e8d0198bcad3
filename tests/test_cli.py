"""The command line: the same features as the library."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest

from capframe.cli import main


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_demo_fetches_summarises_and_writes_parquet(tmp_path: Path) -> None:
    target = tmp_path / "customers.parquet"
    code, text = run("demo", "--ids", "500", "-o", str(target))
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
    assert run("customers", "--ids", str(ids), "--sandbox", "-o", "x.xlsx")[0] == 2
    assert ".parquet, .csv or .ndjson" in capsys.readouterr().err


def test_sandbox_prints_ids_for_pipelines() -> None:
    code, text = run("sandbox", "--print-ids", "3")
    assert code == 0
    assert len(text.split()) == 3
    assert all(t.isdigit() for t in text.split())


def test_help_says_how_to_configure(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "CAPILLARY_HOST" in capsys.readouterr().out
