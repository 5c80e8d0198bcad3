"""The bundles: the returned-customers view, and writing a bundle out of Python."""

from __future__ import annotations

import polars as pl
import pytest

import capframe


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
