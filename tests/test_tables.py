"""The bundles: the returned-customers view, and writing a bundle out of Python."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

import capframe
from capframe.errors import CapframeError, MissingDependencyError


@pytest.fixture(scope="module")
def client() -> capframe.Client:
    return capframe.Client.sandbox(customers=10_000, seed=0)


@pytest.fixture(scope="module")
def tables(client: capframe.Client) -> capframe.CustomerTables:
    org = client.sandbox_org
    assert org is not None
    ids = [*org.customer_ids(400), *org.pii_deleted_ids()[:5], *org.unknown_ids(3)]
    return capframe.fetch_customer_tables(ids, "INSTORE", client=client, progress=False)


def test_the_api_sends_data_with_failed_ids_and_every_table_keeps_it(tables: capframe.CustomerTables) -> None:
    """Why returned() exists: ids reported failed (8065 not in this source) come with segments,
    fields and loyalty data, and the bundle keeps them rather than drop anything silently."""
    failed = tables.failed_ids
    assert any(tables.segments["customer_id"].is_in(failed))
    assert any(tables.fields["customer_id"].is_in(failed))
    assert tables.customers.filter(~pl.col("success"))["loyalty_type"].drop_nulls().len() > 0


def test_returned_keeps_in_every_table_only_the_customers_the_api_returned(tables: capframe.CustomerTables) -> None:
    returned = tables.returned()
    returned.validate()
    kept = set(tables.customers.filter("success")["customer_id"])
    assert set(returned.customers["customer_id"]) == kept
    assert returned.customers["success"].all()
    for name, frame in returned.tables().items():
        assert set(frame["customer_id"].drop_nulls()) <= kept, name
        # Nothing of a returned customer is lost.
        original = tables.tables()[name]
        assert frame.height == original.filter(pl.col("customer_id").is_in(kept)).height or name == "errors", name
    assert returned.errors.filter(pl.col("level") == "error").is_empty()
    assert returned.failed_ids == []
    assert returned.provenance == tables.provenance
    # The counts an analyst computes: segments over returned customers only.
    assert returned.segments.height < tables.segments.height


def test_returned_of_children_keeps_the_children_and_drops_the_errors_of_unknown_parents(
    client: capframe.Client,
) -> None:
    org = client.sandbox_org
    assert org is not None
    with pytest.warns(capframe.CapframeWarning):
        family = capframe.fetch_children_tables([*org.parents()[:3], ("mobile", "910000000000")], client=client)
    assert family.errors.filter(pl.col("level") == "error").height == 1
    returned = family.returned()
    returned.validate()
    assert returned.children.equals(family.children)
    assert returned.identifiers.equals(family.identifiers)
    assert returned.errors.filter(pl.col("level") == "error").is_empty()


# --- out of Python ----------------------------------------------------------------------------------


def test_write_excel_one_sheet_per_table_with_identifiers_as_text(
    tables: capframe.CustomerTables, tmp_path: Path
) -> None:
    leading_zeros = tables.customers.filter(pl.col("external_id").str.starts_with("0"))
    assert leading_zeros.height > 0
    path = tables.write_excel(tmp_path / "report.xlsx")
    sheets = pl.read_excel(path, sheet_id=0, infer_schema_length=None)
    assert list(sheets) == [*tables.tables(), "columns", "provenance"]  # the tables, then what describes them
    for name, frame in tables.tables().items():
        assert sheets[name].height == frame.height, name
    customers = sheets["customers"]
    # Leading zeros survive: the ids are text in the workbook, not numbers.
    assert customers.schema["external_id"] == pl.String
    assert customers.schema["mobile"] == pl.String
    kept = customers.filter(pl.col("external_id").str.starts_with("0"))
    assert kept["external_id"].sort().to_list() == leading_zeros["external_id"].sort().to_list()
    # Timestamps: UTC times (Excel has no time zones).
    first = tables.customers["auto_update_time"].drop_nulls()[0]
    assert customers["auto_update_time"].drop_nulls()[0] == first.replace(tzinfo=None)


def test_write_csv_one_file_per_table_with_timestamps_spreadsheets_read(
    tables: capframe.CustomerTables, tmp_path: Path
) -> None:
    written = tables.write_csv(tmp_path / "out")
    assert sorted(written) == sorted(tables.tables())
    text = written["customers"].read_text().splitlines()
    stamp = tables.customers["auto_update_time"].drop_nulls()[0]
    assert f",{stamp:%Y-%m-%d %H:%M:%S}," in "\n".join(text)
    back = pl.read_csv(written["customers"], try_parse_dates=True, schema_overrides={"external_id": pl.String})
    assert back.schema["auto_update_time"] == pl.Datetime("us")
    assert back["external_id"].equals(tables.customers["external_id"])


def test_write_parquet_round_trips_every_table(tables: capframe.CustomerTables, tmp_path: Path) -> None:
    written = tables.write_parquet(tmp_path / "out")
    for name, frame in tables.tables().items():
        assert pl.read_parquet(written[name]).equals(frame), name


def test_to_pandas_keeps_integers_with_nulls_as_integers(tables: capframe.CustomerTables) -> None:
    frames = tables.to_pandas()
    customers = frames["customers"]
    assert customers["error_code"].isna().any()
    assert str(customers["error_code"].dtype) == "Int64"
    assert str(customers["success"].dtype) == "boolean"
    assert customers["external_id"].dropna().str.startswith("0").any()
    assert str(customers["auto_update_time"].dtype) == "datetime64[us, UTC]"
    assert set(frames) == set(tables.tables())
    # polars' own conversion works too, with the extra installed (it needs pyarrow).
    assert len(tables.customers.to_pandas()) == tables.customers.height


@pytest.mark.parametrize(
    ("missing", "call", "extra"),
    [
        ("xlsxwriter", lambda t, d: t.write_excel(d / "r.xlsx"), "capframe[excel]"),
        ("pyarrow", lambda t, d: t.to_pandas(), "capframe[pandas]"),
    ],
)
def test_a_missing_optional_dependency_names_the_extra(
    tables: capframe.CustomerTables,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    missing: str,
    call: Callable[[capframe.CustomerTables, Path], object],
    extra: str,
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # import -> ImportError
    with pytest.raises(MissingDependencyError, match=re.escape(f"pip install '{extra}'")):
        call(tables, tmp_path)
    assert not (tmp_path / "r.xlsx").exists()


@pytest.mark.parametrize(
    "write",
    [
        lambda t, target: t.write_excel(target / "report.xlsx"),
        lambda t, target: t.write_parquet(target / "tables"),
        lambda t, target: t.write_csv(target / "tables"),
    ],
    ids=["excel", "parquet", "csv"],
)
def test_writers_make_a_missing_folder_and_refuse_an_unwritable_target_with_a_capframe_error(
    tables: capframe.CustomerTables, tmp_path: Path, write: Callable[[capframe.CustomerTables, Path], object]
) -> None:
    # A path in folders that do not exist yet: made, as `write_parquet(folder)` makes its folder.
    write(tables, tmp_path / "new" / "sub")
    assert any((tmp_path / "new" / "sub").iterdir())
    # A path under a file cannot be made: a CapframeError that names the path, not an OS or xlsxwriter traceback.
    (tmp_path / "a-file").write_text("")
    with pytest.raises(CapframeError, match=r"cannot write .*a-file.*: choose"):
        write(tables, tmp_path / "a-file")
    # Writing over an earlier export works (the writers replace their files).
    write(tables, tmp_path / "new" / "sub")


def test_write_excel_over_a_folder_of_that_name_is_a_capframe_error(
    tables: capframe.CustomerTables, tmp_path: Path
) -> None:
    (tmp_path / "report.xlsx").mkdir()
    with pytest.raises(CapframeError, match=r"cannot write .*report\.xlsx.*(directory|folder)"):
        tables.write_excel(tmp_path / "report.xlsx")
    (tmp_path / "out" / "customers.parquet").mkdir(parents=True)
    with pytest.raises(CapframeError, match=r"cannot write .*customers\.parquet"):
        tables.write_parquet(tmp_path / "out")


def test_an_empty_bundle_writes_every_table_with_its_columns(tmp_path: Path) -> None:
    empty = capframe.CustomerTables.empty()
    sheets = pl.read_excel(empty.write_excel(tmp_path / "empty.xlsx"), sheet_id=0)
    assert {name: frame.columns for name, frame in sheets.items() if name != "columns"} == {
        name: frame.columns for name, frame in empty.tables().items()
    }
    written = empty.write_csv(tmp_path / "csv")
    assert pl.read_csv(written["cards"]).columns == empty.cards.columns


def test_write_excel_keeps_integers_longer_than_excel_keeps_as_text(client: capframe.Client, tmp_path: Path) -> None:
    # Excel keeps 15 significant digits; customer ids go up to 2**63, and a number would change silently.
    long_id = 2**62 + 1
    tables = capframe.fetch_customer_tables([565338404, long_id], "INSTORE", client=client, progress=False)
    customers = pl.read_excel(tables.write_excel(tmp_path / "r.xlsx"), sheet_name="customers")
    assert customers["customer_id"].cast(pl.String).to_list() == ["565338404", str(long_id)]
    errors = pl.read_excel(tmp_path / "r.xlsx", sheet_name="errors")
    assert errors["customer_id"].cast(pl.String).to_list() == [str(long_id)]
    # Columns of short integers stay numbers, for sums and filters in the spreadsheet.
    assert pl.read_excel(tmp_path / "r.xlsx", sheet_name="profiles").schema["customer_id"] == pl.Int64


def _with_first_name(tables: capframe.CustomerTables, name: str) -> capframe.CustomerTables:
    customers = tables.customers.with_columns(
        first_name=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(name)).otherwise("first_name")
    )
    return capframe.CustomerTables.of({**tables.tables(), "customers": customers})


def test_write_csv_marks_utf8_so_spreadsheets_read_names_in_any_script(
    tables: capframe.CustomerTables, tmp_path: Path
) -> None:
    # Excel reads a CSV without a byte-order mark in the machine's code page: "José" became "JosÃ©".
    written = _with_first_name(tables, "José 陈").write_csv(tmp_path / "out")
    assert written["customers"].read_bytes().startswith(b"\xef\xbb\xbfcustomer_id,")
    # polars and pandas read it back as written, the first column's name included.
    back = pl.read_csv(written["customers"], infer_schema=False)
    assert back.columns == tables.customers.columns
    assert back["first_name"][0] == "José 陈"
    pd = pytest.importorskip("pandas")
    assert pd.read_csv(written["customers"]).columns[0] == "customer_id"


def test_write_excel_warns_of_text_longer_than_a_cell_holds(tables: capframe.CustomerTables, tmp_path: Path) -> None:
    # An Excel cell holds 32,767 characters; xlsxwriter cuts a longer text without a word.
    long = _with_first_name(tables, "x" * 40_000)
    with pytest.warns(
        capframe.errors.CapframeWarning, match=r"customers\.first_name: 1 value.*32,767.*write_parquet"
    ) as caught:
        long.write_excel(tmp_path / "r.xlsx")
    assert caught[0].filename == __file__  # the caller's line, not capframe's
