"""pandera models of every table capframe returns, one per table, named after it.

capframe validates its output with these before returning it; use them on your own frames too::

    import capframe
    from capframe import schemas

    customers = capframe.fetch_customers([565338404], "INSTORE", client=capframe.Client.sandbox())
    schemas.Customers.validate(customers)

Dtypes are exact and nothing is coerced, so a change in what the API sends shows up as a failure
here rather than as a quietly different column. Unknown columns are refused (``strict``).

Every column has a description: what it is, where in the API's JSON it comes from, its unit or time
zone, and when it is null. :func:`data_dictionary` lists them all (``docs/tables.md`` is made from it).
JSON paths are relative to a customer: ``data[].entity`` of Get Customers Bulk, ``entity.customers[]``
of the hierarchy API. "JSON text" is compact JSON, keys sorted, members whose value is null left out.
"""

from __future__ import annotations

from typing import Any

import pandera.polars as pa
import polars as pl

from capframe import _contract

__all__ = [
    "IDENTIFIER_TYPES",
    "Cards",
    "Children",
    "CommChannels",
    "Customers",
    "Errors",
    "Fields",
    "Identifiers",
    "Parents",
    "Profiles",
    "Segments",
    "data_dictionary",
]

UTC = pl.Datetime(time_unit="us", time_zone="UTC")


def _column(description: str, **checks: Any) -> Any:
    return pa.Field(description=description, **checks)


def _nullable(description: str, **checks: Any) -> Any:
    return pa.Field(nullable=True, description=description, **checks)


# The identifier types of the API (``identifiers[].type``, and the TYPE of a parent in fetch_children)
# and the columns that hold them: the one place that says that ``externalId`` is ``external_id``.
IDENTIFIER_TYPES: dict[str, str] = {
    "mobile": "customers.mobile, children.mobile (the first profile's first), identifiers.value",
    "email": "customers.email, children.email (the first profile's first), identifiers.value",
    "externalId": "customers.external_id, children.external_id (the first profile's first), identifiers.value",
    "cardnumber": "identifiers.value (sent as cardNumber or cardnumber: both are type cardnumber), cards.card_number",
    "cardExternalId": "identifiers.value, cards.card_external_id",
    "wechat, martjackId, fbId, cuid, unionId, line": "identifiers.value",
}


class _Table(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = False


_FAILED_TOO = (
    " The API sends it with some ids it reports failed too (8065 not in this source; 8109 PII-deleted:"
    " loyalty type only): `returned()` leaves those out."
)
_UTC = "in UTC (the API sends an ISO-8601 time with an offset such as +05:30); null when not sent, or sent without an offset (then a warning row of `errors` gives the value)"


class _CustomerKeyed(_Table):
    customer_id: pl.Int64 = _column("The customer the row belongs to: `customers.customer_id`.", gt=0)


class Customers(_CustomerKeyed):
    """``fetch_customers``: one row per requested id, in request order."""

    customer_id: pl.Int64 = _column(
        "The id asked (`data[].entity.id`); one row per unique id, in the order asked, answered or not.",
        gt=0,
        unique=True,
    )
    success: pl.Boolean = _column(
        "Whether the API returned the customer (`data[].success`; when absent, whether the item has no errors)."
        " False for an id the API did not return, or never answered (then an `errors` row of origin capframe says why)."
    )
    error_code: pl.Int64 = _nullable(
        "The item's first error code (`data[].errors[0].code`): 8109 deleted after a PII delete request, 8015 no"
        " such customer, 8065 not in this source. Null when returned, and for an id capframe failed itself."
    )
    error_message: pl.String = _nullable(
        "The item's first error message (`data[].errors[0].message`); null when returned."
    )
    first_name: pl.String = _nullable("`profiles[0].firstName`: the first profile's first name; null when not sent.")
    last_name: pl.String = _nullable("`profiles[0].lastName`: the first profile's last name; null when not sent.")
    source: pl.String = _nullable("`profiles[0].source`: the source of the first profile (INSTORE, ECOMMERCE, ...).")
    account_id: pl.String = _nullable(
        "`profiles[0].accountId`: the first profile's account within its source (empty text for sources without accounts)."
    )
    mobile: pl.String = _nullable(
        "The first profile's first identifier of type `mobile` (`profiles[0].identifiers[]`), as text: country code"
        " and number. Null when it has none."
    )
    email: pl.String = _nullable("The first profile's first identifier of type `email`; null when it has none.")
    external_id: pl.String = _nullable(
        "The first profile's first identifier of type `externalId` (the brand's own customer number), as text so"
        " that leading zeros stay; null when it has none."
    )
    loyalty_type: pl.String = _nullable(
        "`loyaltyInfo.loyaltyType`: `loyalty` (enrolled in the loyalty programme) or `non_loyalty`." + _FAILED_TOO
    )
    lifetime_purchases: pl.Float64 = _nullable(
        "`loyaltyInfo.lifetimePurchases`: the customer's purchases to date, in the organisation's currency (the API"
        " states none). A float: the API sends 230 and 2400.0 alike." + _FAILED_TOO
    )
    score: pl.Int64 = _nullable(
        "`loyaltyInfo.score`: the customer's loyalty score, an integer. Null when not sent, or sent with a fraction"
        " (then a warning row of `errors` gives the value)." + _FAILED_TOO
    )
    associated_with: pl.String = _nullable(
        "`associatedWith`: the till (store) code the customer is registered with, as sent; null when not sent."
        + _FAILED_TOO
    )
    auto_update_time: UTC = _nullable(  # type: ignore[valid-type]
        "`profiles[0].autoUpdateTime`: when the first profile last changed, " + _UTC + "."
    )
    profile_count: pl.Int64 = _column(
        "How many profiles the customer has (`profiles[]`, one per source); 0 for an id not returned.", ge=0
    )
    loyalty_attribution: pl.String = _nullable(
        "`loyaltyInfo.attributionV2` as JSON text: who changed the loyalty data, and when; null when not sent."
    )


class Children(_CustomerKeyed):
    """``fetch_children``: one row per child customer of each parent asked."""

    customer_id: pl.Int64 = _column("The child's customer id (`entity.customers[].profiles[0].userId`).", gt=0)
    parent_type: pl.String = _column(
        "The identifier type the parent was addressed by (`mobile`, `email`, `externalId`, ...: the request's"
        " `identifierName`); a parent given as a customer id is addressed by its mobile, email or externalId."
    )
    parent_value: pl.String = _column("The parent's identifier value, as asked (the request's `identifierValue`).")
    parent_customer_id: pl.Int64 = _nullable(
        "The customer id the parent was given as (its children were looked up by its identifier); null for a"
        " parent given as an identifier.",
        gt=0,
    )
    first_name: pl.String = _nullable("`profiles[0].firstName`: the child's first name; null when not sent.")
    last_name: pl.String = _nullable("`profiles[0].lastName`: the child's last name; null when not sent.")
    source: pl.String = _nullable("`profiles[0].source`: the source of the child's first profile.")
    account_id: pl.String = _nullable("`profiles[0].accountId`: the first profile's account within its source.")
    mobile: pl.String = _nullable("The child's first identifier of type `mobile`; null when it has none.")
    email: pl.String = _nullable("The child's first identifier of type `email`; null when it has none.")
    external_id: pl.String = _nullable(
        "The child's first identifier of type `externalId`, as text (leading zeros stay); null when it has none."
    )
    role_code: pl.String = _nullable(
        "`roleCode`: the child's role in the hierarchy, as the organisation names it (e.g. Manager); null when not sent."
    )
    created_date: UTC = _nullable(  # type: ignore[valid-type]
        "`createdDate`: when the child customer was created, " + _UTC + "."
    )
    no_of_children: pl.Int64 = _nullable(
        "`noOfChildren`: how many children this child has in turn (its own family below it); null when not sent.",
        ge=0,
    )
    default_child: pl.Boolean = _nullable(
        "`defaultChild`: whether this child is its parent's default child; null when not sent."
    )
    auto_update_time: UTC = _nullable(  # type: ignore[valid-type]
        "`profiles[0].autoUpdateTime`: when the child's first profile last changed, " + _UTC + "."
    )
    parent_customer: pl.String = _nullable(
        "`parentCustomer` as JSON text: the parent as the API describes it; null when not sent."
    )

    @pa.dataframe_check
    def one_row_per_parent_and_child(cls, data: pa.PolarsData) -> pl.LazyFrame:  # type: ignore[misc]
        return _contract.one_row_per_parent_and_child(data.lazyframe)


class Parents(_Table):
    """``fetch_children_tables``: one row per parent asked, in the order asked (a parent asked twice is
    two rows), found or not. Made from what a walk brings, so a rerun from a snapshot gives the same."""

    parent_number: pl.Int64 = _column(
        "The parent's place in the list asked, from 1: messages and the `errors` table call it parent #N.",
        ge=1,
        unique=True,
    )
    given_as: pl.String = _column(
        "How the parent was given: `customer_id`, or the identifier type (`mobile`, `email`, `externalId`, ...)."
    )
    given_value: pl.String = _nullable(
        "The identifier value as given (children of it have it as `children.parent_value`); null for a parent"
        " given as a customer id, whose identifier was looked up (its children have `children.parent_customer_id`)."
    )
    customer_id: pl.Int64 = _nullable(
        "The parent's customer id: as given, else as its children's `parentCustomer.profiles[0].userId` states"
        " it. Null when neither says (a parent with no children, a server that sends no `parentCustomer`).",
        gt=0,
    )
    found: pl.Boolean = _nullable(
        "Whether the API listed the parent's children (none is a list too). False: the hierarchy API does not"
        " know the parent, or Get Customers Bulk does not know the customer id. Null: the fetch failed."
    )
    no_of_children: pl.Int64 = _nullable(
        "How many rows of `children` are the parent's: 0 for a parent with no children; null when not found.", ge=0
    )
    error_code: pl.Int64 = _nullable(
        "The API's code when not found (8015 no customer with the identifier, ...); null when found, and where"
        " capframe failed itself."
    )
    error_message: pl.String = _nullable(
        "Why the parent's children are not listed: the API's message, or what failed; null when found."
    )


class Lookups(_Table):
    """``fetch_customer_tables(values, source, identifier=...)`` and ``lookup_customer_ids``: one row per
    value asked, in the order asked (a value asked twice is two rows, one request), found or not."""

    value_number: pl.Int64 = _column(
        "The value's place in the list asked, from 1: messages call it value #N, never by its value.", ge=1, unique=True
    )
    identifier_type: pl.String = _column(
        "The identifier type looked up by (the request's `identifierName`): `mobile`, `email`, `externalId`,"
        " `cardnumber`, ..."
    )
    identifier_value: pl.String = _column(
        "The value as asked (surrounding whitespace stripped; leading zeros and `+` kept): the request's"
        " `identifierValue`."
    )
    customer_id: pl.Int64 = _nullable(
        "The customer id the API answered (`entity`): a row of `customers`. Null when not found or failed.", gt=0
    )
    found: pl.Boolean = _nullable(
        "Whether the API answered a customer id. False: it answered an error (8015 no customer, 8065 not in"
        " this source, 8013 invalid identifier type, 8045 account id missing, ...). Null: the lookup failed."
    )
    error_code: pl.Int64 = _nullable("The API's code when not found; null when found, and where capframe failed.")
    error_message: pl.String = _nullable(
        "Why there is no customer id: the API's message, or what failed; null when found."
    )


_PROFILE_INDEX = "The profile's position in the customer's `profiles[]` (0 is the one `customers` shows)."


class Profiles(_CustomerKeyed):
    """Every profile of every customer (a customer can have one per source)."""

    profile_index: pl.Int64 = _column(_PROFILE_INDEX, ge=0)
    user_id: pl.Int64 = _nullable("`profiles[].userId`: the customer id as the profile states it; null when not sent.")
    source: pl.String = _nullable("`profiles[].source`: the source of this profile (INSTORE, ECOMMERCE, ...).")
    account_id: pl.String = _nullable("`profiles[].accountId`: the account within the source (empty text for none).")
    first_name: pl.String = _nullable("`profiles[].firstName`; null when not sent.")
    last_name: pl.String = _nullable("`profiles[].lastName`; null when not sent.")
    auto_update_time: UTC = _nullable(  # type: ignore[valid-type]
        "`profiles[].autoUpdateTime`: when the profile last changed, " + _UTC + "."
    )
    conflicting_profiles: pl.String = _nullable(
        "`profiles[].conflictingProfileList` as JSON text: profiles that clash with this one (`[]` for none);"
        " null when not sent."
    )
    attribution: pl.String = _nullable(
        "`profiles[].attribution` as JSON text: who created and last changed the profile, and when; null when not sent."
    )


class Identifiers(_CustomerKeyed):
    """``identifiers`` and ``identifiersAll`` of each profile; ``type`` in one spelling, ``raw_type`` as sent."""

    profile_index: pl.Int64 = _column(_PROFILE_INDEX, ge=0)
    type: pl.String = _nullable(
        "The identifier type in one spelling: `mobile`, `email`, `externalId`, `cardnumber` (sent as `cardNumber` or"
        " `cardnumber`), `cardExternalId`, `wechat`, `martjackId`, `fbId`, `cuid`, `unionId`, `line`; another type"
        " as sent. `IDENTIFIER_TYPES` says which columns hold each."
    )
    value: pl.String = _nullable("`identifiers[].value`: the identifier, as text (leading zeros stay).")
    raw_type: pl.String = _nullable("`identifiers[].type` exactly as sent.")
    series_id: pl.Int64 = _nullable("`identifiers[].seriesId`: the card series of a card number; null for other types.")
    status_label: pl.String = _nullable(
        "`identifiers[].statusLabel`: the card's status label (ACTIVE, ...); null for other types."
    )
    in_identifiers: pl.Boolean = _column(
        "True when the profile's `identifiers` lists it (the identifiers the customer can be looked up by), false"
        " when only `identifiersAll` does (every identifier, including such as `cuid`). A pair in both is one row, true."
    )


class CommChannels(_CustomerKeyed):
    """Each profile's communication channels (``profiles[].commChannels[]``)."""

    profile_index: pl.Int64 = _column(_PROFILE_INDEX, ge=0)
    type: pl.String = _nullable("`commChannels[].type`: `mobile`, `email`, ...")
    value: pl.String = _nullable("`commChannels[].value`: the number or address, as text.")
    primary: pl.Boolean = _nullable("`commChannels[].primary`: the customer's primary channel of its type.")
    verified: pl.Boolean = _nullable("`commChannels[].verified`: whether the customer verified it.")
    residence: pl.Boolean = _nullable("`commChannels[].meta.residence`: a home number or address.")
    office: pl.Boolean = _nullable("`commChannels[].meta.office`: a work number or address.")
    attributes: pl.String = _nullable("`commChannels[].attributes` as JSON text; null when not sent.")


class Fields(_CustomerKeyed):
    """Open-ended fields, long: one row per key of a map. Values are text: strings as sent, anything else as JSON."""

    customer_id: pl.Int64 = _nullable(
        "The customer the key belongs to; null for an `unrecognised` key outside any customer (in the response itself).",
        gt=0,
    )
    profile_index: pl.Int64 = _nullable(
        "The profile, for `custom` and `all`; null for `extended` and `unrecognised` (the customer's own).", ge=0
    )
    scope: pl.String = _column(
        "Which map the key is from. `custom`: the profile's `fields` (the organisation's custom fields). `all`: the"
        " profile's `allFields`, every field, so the custom fields again among them: `all` repeats `custom`, count"
        " one scope, never both. `extended`: the customer's `extendedFields` (fields of the API's own, such as"
        " gender, dob, city). `unrecognised`: a key capframe's wire schema does not know (a SchemaDriftWarning names it).",
        isin=["custom", "all", "extended", "unrecognised"],
    )
    name: pl.String = _column("The key; for `unrecognised`, its JSON path (`data[].entity.newKey`).")
    value: pl.String = _column(
        "The value as text: strings as sent, anything else as JSON text (`5`, `true`, `[1,2]`). Keys sent as null"
        " have no row." + _FAILED_TOO
    )


class Segments(_CustomerKeyed):
    """The customer's ``segments`` map, long: one row per segment."""

    segment: pl.String = _column("A key of the customer's `segments` object: the segment (e.g. `Activity segment`).")
    value: pl.String = _column("The customer's value in the segment (e.g. `Active`), as text." + _FAILED_TOO)


_CARD = "`cardDetails[]."


class Cards(_CustomerKeyed):
    """The customer's cards (``cardDetails[]``), one row per card."""

    card_number: pl.String = _nullable(_CARD + "cardNumber`: the card number, as text." + _FAILED_TOO)
    card_external_id: pl.String = _nullable(_CARD + "cardExternalId`: the brand's own number for the card.")
    card_id: pl.Int64 = _nullable(_CARD + "cardId`: the card's id.")
    series_id: pl.Int64 = _nullable(_CARD + "seriesId`: the card series.")
    series_code: pl.String = _nullable(_CARD + "seriesCode`: the card series' code.")
    series_name: pl.String = _nullable(_CARD + "seriesName`: the card series' name.")
    card_type: pl.String = _nullable(_CARD + "type`: DIGITAL or PHYSICAL.")
    issued_date: pl.String = _nullable(
        _CARD + "issuedDate` as sent: the API sends a date (`2021-12-03`), no time zone, so it stays text."
    )
    created_date: pl.String = _nullable(_CARD + "createdDate` as sent (a date, as text).")
    expiry_days: pl.Int64 = _nullable(_CARD + "expiryDays`: days the card is valid for from issue.")
    transaction_not_allowed: pl.Boolean = _nullable(
        _CARD + "transactionNotAllowed`: whether the card is blocked for transactions."
    )
    status_info: pl.String = _nullable(_CARD + "statusInfo` as JSON text: the card's status, its label and history.")
    custom_fields: pl.String = _nullable(_CARD + "customFields` as JSON text (`{}` for none).")
    extended_fields: pl.String = _nullable(_CARD + "extendedFields` as JSON text (`{}` for none).")
    id: pl.Int64 = _nullable(_CARD + "id`: the id of the card record.")
    card_customer_id: pl.Int64 = _nullable(_CARD + "customerId`: the customer the card states it belongs to.")
    max_active_cards: pl.Int64 = _nullable(
        _CARD + "maxActiveCards`: how many active cards of the series a customer may hold."
    )
    org_id: pl.Int64 = _nullable(_CARD + "orgId`: the organisation's id.")
    entity_id: pl.Int64 = _nullable(
        _CARD + "entityId`: the organisation entity (e.g. the programme) the card belongs to."
    )


class Errors(_CustomerKeyed):
    """Errors and warnings: ``origin`` ``api`` (as the API sent them) or ``capframe`` (an id the API
    never answered for, or a batch that failed). ``customer_id`` is null for request-level ones."""

    customer_id: pl.Int64 = _nullable(
        "The id the row is about; null for a response-level error or warning (`errors`, `warnings` of the body).",
        gt=0,
    )
    level: pl.String = _column(
        "`error` (the id failed: `customers.success` is false) or `warning` (the data came, with a remark).",
        isin=["error", "warning"],
    )
    origin: pl.String = _column(
        "`api`: as the API sent it (`data[].errors[]`, `data[].warnings[]`, or the body's). `capframe`: capframe's"
        " own (an id the API never answered, a batch that failed after every retry, a value a table could not hold).",
        isin=["api", "capframe"],
    )
    code: pl.Int64 = _nullable(
        "`errors[].code`: the API's code (8109, 8015, 8065, ...); null for warnings and capframe's rows."
    )
    message: pl.String = _nullable(
        "`errors[].message` as sent; for an API warning, its JSON text; for capframe's rows, what happened."
    )


_TABLES: dict[str, type[_Table]] = {
    "customers": Customers,
    "children": Children,
    "parents": Parents,
    "lookups": Lookups,
    "profiles": Profiles,
    "identifiers": Identifiers,
    "comm_channels": CommChannels,
    "fields": Fields,
    "segments": Segments,
    "cards": Cards,
    "errors": Errors,
}


def data_dictionary() -> pl.DataFrame:
    """Every column of every table: ``table``, ``column``, ``dtype``, ``nullable``, ``description``.

    Made from the models, so it is what capframe validates against::

        >>> from capframe import schemas
        >>> schemas.data_dictionary().filter(column="external_id", table="customers").row(0)[:4]
        ('customers', 'external_id', 'String', True)
    """
    rows = [
        (table, name, str(column.dtype.type), bool(column.nullable), column.description or "")
        for table, model in _TABLES.items()
        for name, column in model.to_schema().columns.items()
    ]
    return pl.DataFrame(rows, schema=["table", "column", "dtype", "nullable", "description"], orient="row")
