"""The docs: generated parts match the code (cog), every column is described, and what the README
writes works as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import capframe
from capframe import schemas

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_every_column_of_every_table_is_described() -> None:
    dictionary = schemas.data_dictionary()
    assert dictionary.columns == ["table", "column", "dtype", "nullable", "description"]
    undescribed = dictionary.filter(pl.col("description").str.len_chars() < 20)
    assert undescribed.is_empty(), f"columns without a description: {undescribed.select('table', 'column').rows()}"
    assert dictionary["table"].unique(maintain_order=True).to_list() == [
        "customers", "children", "parents", "lookups", "profiles", "identifiers", "comm_channels", "fields", "segments", "cards",
        "errors",
    ]  # fmt: skip
    # Every model's every column, nothing more.
    for table, model in schemas._TABLES.items():
        assert dictionary.filter(table=table)["column"].to_list() == list(model.to_schema().columns), table
    fields_scope = dictionary.filter(table="fields", column="scope")["description"].item()
    for scope in ("`custom`", "`all`", "`extended`", "`unrecognised`", "repeats `custom`"):
        assert scope in fields_scope


def test_generated_docs_match_the_code() -> None:
    """docs/*.md parts made from the models, Client's docstring and the CLI's --help (cog)."""
    pytest.importorskip("cogapp")
    pages = sorted(str(path) for path in DOCS.glob("*.md"))
    result = subprocess.run(
        [sys.executable, "-m", "cogapp", "--check", "-I", str(DOCS), *pages],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, (
        f"a generated part of docs/ is stale: run `python -m cogapp -r -I docs docs/*.md`\\n{result.stdout}{result.stderr}"
    )


def test_capframe_testing_works_after_a_plain_import() -> None:
    """The README writes `capframe.testing.vcr_config()` after `import capframe`, as with `capframe.schemas`."""
    code = "import capframe, sys; assert 'capframe.testing' not in sys.modules; print(sorted(capframe.testing.vcr_config()))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "filter_headers" in result.stdout


def test_client_options_are_rendered_from_the_docstring_section(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agreed format: `Options:`, entries `    name: text`, continuation lines indented 8."""
    monkeypatch.syspath_prepend(str(DOCS))
    import _generate  # type: ignore[import-not-found]

    doc = """Which cluster to call.

    Options:
        batch_size: ids per request
            (1 to 1000)
        timeout: seconds | per request

    Other text.
    """
    monkeypatch.setattr(capframe.Client, "__doc__", doc)
    table = _generate.client_options().splitlines()
    assert table[2:] == [
        "| `batch_size` | `100` | ids per request (1 to 1000) |",
        "| `timeout` | `30.0` | seconds \\| per request |",
    ]


def test_the_dictionary_lists_every_column_of_a_real_pull_with_its_dtype() -> None:
    """Not only the models: the frames a sandbox pull returns, column by column, dtype by dtype."""
    client = capframe.Client.sandbox(customers=2_000, seed=0)
    org = client.sandbox_org
    assert org is not None
    ids = [*org.customer_ids(500), *org.unknown_ids(2), *org.pii_deleted_ids()[:2]]
    customers = capframe.fetch_customer_tables(ids, "ALL", client=client, progress=False)
    children = capframe.fetch_children_tables(org.parents()[:5], client=client, progress=False)
    mobiles = [value for _, _, kind, value in org.identifiers(20) if kind == "mobile"]
    looked_up = capframe.fetch_customer_tables(mobiles, "INSTORE", identifier="mobile", client=client, progress=False)
    dictionary = {
        (table, column): dtype
        for table, column, dtype in schemas.data_dictionary().select("table", "column", "dtype").rows()
    }
    actual = {
        (table, column): str(dtype)
        for bundle in (customers, children, looked_up)
        for table, frame in bundle.tables().items()
        for column, dtype in frame.schema.items()
    }
    assert actual == dictionary
