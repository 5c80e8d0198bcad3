"""pandera models of every table capframe returns, one per table, named after it.

capframe validates its output with these before returning it; use them on your own frames too::

    import capframe
    from capframe import schemas

    customers = capframe.fetch_customers([565338404], "INSTORE", client=capframe.Client.sandbox())
    schemas.Customers.validate(customers)

Dtypes are exact and nothing is coerced, so a change in what the API sends shows up as a failure
here rather than as a quietly different column. Unknown columns are refused (``strict``).
"""

from __future__ import annotations

from typing import Any

import pandera.polars as pa
import polars as pl

__all__ = [
    "Cards",
    "Children",
    "CommChannels",
    "Customers",
    "Errors",
    "Fields",
    "Identifiers",
    "Profiles",
    "Segments",
]

UTC = pl.Datetime(time_unit="us", time_zone="UTC")


def _nullable(**kwargs: Any) -> Any:
    return pa.Field(nullable=True, **kwargs)


class _Table(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = False


class _CustomerKeyed(_Table):
    customer_id: pl.Int64 = pa.Field(gt=0)


class Customers(_CustomerKeyed):
    """``fetch_customers``: one row per requested id, in request order."""

    customer_id: pl.Int64 = pa.Field(gt=0, unique=True)
    success: pl.Boolean
    error_code: pl.Int64 = _nullable()
    error_message: pl.String = _nullable()
    first_name: pl.String = _nullable()
    last_name: pl.String = _nullable()
    source: pl.String = _nullable()
    account_id: pl.String = _nullable()
    mobile: pl.String = _nullable()
    email: pl.String = _nullable()
    external_id: pl.String = _nullable()
    loyalty_type: pl.String = _nullable()
    lifetime_purchases: pl.Float64 = _nullable()
    score: pl.Int64 = _nullable()
    associated_with: pl.String = _nullable()
    auto_update_time: UTC = _nullable()  # type: ignore[valid-type]
    profile_count: pl.Int64 = pa.Field(ge=0)
    loyalty_attribution: pl.String = _nullable()


class Children(_CustomerKeyed):
    """``fetch_children``: one row per child customer of each parent asked."""

    parent_type: pl.String
    parent_value: pl.String
    parent_customer_id: pl.Int64 = pa.Field(
        nullable=True, gt=0, description="the customer id the parent was given as (null if given by identifier)"
    )
    first_name: pl.String = _nullable()
    last_name: pl.String = _nullable()
    source: pl.String = _nullable()
    account_id: pl.String = _nullable()
    mobile: pl.String = _nullable()
    email: pl.String = _nullable()
    external_id: pl.String = _nullable()
    role_code: pl.String = _nullable()
    created_date: UTC = _nullable()  # type: ignore[valid-type]
    no_of_children: pl.Int64 = _nullable(ge=0)
    default_child: pl.Boolean = _nullable()
    auto_update_time: UTC = _nullable()  # type: ignore[valid-type]
    parent_customer: pl.String = _nullable()

    @pa.dataframe_check
    def one_row_per_parent_and_child(cls, data: pa.PolarsData) -> pl.LazyFrame:  # type: ignore[misc]
        keys = ["parent_type", "parent_value", "customer_id"]
        return data.lazyframe.select(~pl.struct(keys).is_duplicated())


class Profiles(_CustomerKeyed):
    """Every profile of every customer (a customer can have one per source)."""

    profile_index: pl.Int64 = pa.Field(ge=0)
    user_id: pl.Int64 = _nullable()
    source: pl.String = _nullable()
    account_id: pl.String = _nullable()
    first_name: pl.String = _nullable()
    last_name: pl.String = _nullable()
    auto_update_time: UTC = _nullable()  # type: ignore[valid-type]
    conflicting_profiles: pl.String = _nullable()
    attribution: pl.String = _nullable()


class Identifiers(_CustomerKeyed):
    """``identifiers`` and ``identifiersAll`` of each profile; ``type`` in one spelling, ``raw_type`` as sent."""

    profile_index: pl.Int64 = pa.Field(ge=0)
    type: pl.String = _nullable()
    value: pl.String = _nullable()
    raw_type: pl.String = _nullable()
    series_id: pl.Int64 = _nullable()
    status_label: pl.String = _nullable()
    in_identifiers: pl.Boolean


class CommChannels(_CustomerKeyed):
    profile_index: pl.Int64 = pa.Field(ge=0)
    type: pl.String = _nullable()
    value: pl.String = _nullable()
    primary: pl.Boolean = _nullable()
    verified: pl.Boolean = _nullable()
    residence: pl.Boolean = _nullable()
    office: pl.Boolean = _nullable()
    attributes: pl.String = _nullable()


class Fields(_CustomerKeyed):
    """Open-ended fields, long: ``custom`` (profile ``fields``), ``all`` (``allFields``),
    ``extended`` (``extendedFields``), and ``unrecognised`` (keys the wire schema does not know;
    ``name`` is their JSON path). Values are text: strings as sent, anything else as JSON."""

    customer_id: pl.Int64 = pa.Field(gt=0, nullable=True)
    profile_index: pl.Int64 = _nullable(ge=0)
    scope: pl.String = pa.Field(isin=["custom", "all", "extended", "unrecognised"])
    name: pl.String
    value: pl.String


class Segments(_CustomerKeyed):
    segment: pl.String
    value: pl.String


class Cards(_CustomerKeyed):
    card_number: pl.String = _nullable()
    card_external_id: pl.String = _nullable()
    card_id: pl.Int64 = _nullable()
    series_id: pl.Int64 = _nullable()
    series_code: pl.String = _nullable()
    series_name: pl.String = _nullable()
    card_type: pl.String = _nullable()
    issued_date: pl.String = _nullable()
    created_date: pl.String = _nullable()
    expiry_days: pl.Int64 = _nullable()
    transaction_not_allowed: pl.Boolean = _nullable()
    status_info: pl.String = _nullable()
    custom_fields: pl.String = _nullable()
    extended_fields: pl.String = _nullable()
    id: pl.Int64 = _nullable()
    card_customer_id: pl.Int64 = _nullable()
    max_active_cards: pl.Int64 = _nullable()
    org_id: pl.Int64 = _nullable()
    entity_id: pl.Int64 = _nullable()


class Errors(_CustomerKeyed):
    """Errors and warnings: ``origin`` ``api`` (as the API sent them) or ``capframe`` (an id the API
    never answered for, or a batch that failed). ``customer_id`` is null for request-level ones."""

    customer_id: pl.Int64 = pa.Field(gt=0, nullable=True)
    level: pl.String = pa.Field(isin=["error", "warning"])
    origin: pl.String = pa.Field(isin=["api", "capframe"])
    code: pl.Int64 = _nullable()
    message: pl.String = _nullable()
