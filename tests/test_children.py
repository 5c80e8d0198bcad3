"""fetch_children: the hierarchy as a DataFrame, every page, one or many parents."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

import capframe
from capframe import schemas
from capframe._children import DEFAULT_PAGE_SIZE
from capframe.sandbox import Sandbox

DOCUMENTED_PARENT = ("mobile", "917799889933")


@pytest.fixture(scope="module")
def client() -> capframe.Client:
    return capframe.Client.sandbox(2_000, requests_per_minute=None, retry_backoff=0.001, max_retry_after=0.01)


def org(client: capframe.Client) -> Sandbox:
    assert client.sandbox_org is not None
    return client.sandbox_org


def family(
    client: capframe.Client, size: int | None = None, *, kind: str = "parentCustomer"
) -> tuple[str, str, tuple[int, ...]]:
    for f in org(client).families():
        if f.entity_type == kind and (
            size is None or (len(f.child_ids) > 1000 if size > 1000 else len(f.child_ids) == size)
        ):
            return f.identifier_type, f.identifier_value, f.child_ids
    raise LookupError(size)


def test_the_documented_family(client: capframe.Client) -> None:
    children = capframe.fetch_children(DOCUMENTED_PARENT, client=client)
    assert children.select(
        "parent_type", "parent_value", "customer_id", "first_name", "role_code", "no_of_children"
    ).rows() == [
        ("mobile", "917799889933", 134094602, "Lalit", "Manager", 2),
        ("mobile", "917799889933", 134094571, "tom", "Senior_Manager", 1),
    ]
    assert str(children["created_date"].dtype) == "Datetime(time_unit='us', time_zone='UTC')"
    schemas.Children.validate(children)


def test_every_page_of_a_big_family_once_each(client: capframe.Client) -> None:
    kind, value, child_ids = family(client, 1001)
    before = len(org(client).request_log)
    children = capframe.fetch_children((kind, value), client=client, page_size=150)
    assert sorted(children["customer_id"]) == sorted(child_ids)
    assert children["customer_id"].is_unique().all()
    # 1234 children in pages of 150 is 9 pages; the short last page ends the walk.
    assert len(org(client).request_log) - before == 9


def test_a_server_that_caps_the_page_size_does_not_lose_children(client: capframe.Client) -> None:
    kind, value, child_ids = family(client, 1001)
    before = len(org(client).request_log)
    children = capframe.fetch_children((kind, value), client=client, page_size=500)  # the sandbox sends at most 200
    assert sorted(children["customer_id"]) == sorted(child_ids)
    # 7 pages of 200 and 34: the short page is shorter than those before it, so the walk ends there.
    assert len(org(client).request_log) - before == 7


def test_a_parent_with_no_children_gives_an_empty_frame_with_the_full_schema(client: capframe.Client) -> None:
    kind, value, _ = family(client, 0)
    children = capframe.fetch_children((kind, value), client=client)
    assert children.is_empty()
    assert children.columns[:3] == ["parent_type", "parent_value", "customer_id"]
    schemas.Children.validate(children)


def test_an_unknown_parent_raises_with_the_apis_code(client: capframe.Client) -> None:
    with pytest.raises(capframe.ParentNotFoundError, match="code 8015") as caught:
        capframe.fetch_children(("mobile", "910000000001"), client=client)
    assert caught.value.code == 8015
    assert "910000000001" not in str(caught.value)  # a parent's identifier is personal data


def test_many_parents_in_one_frame_unknown_ones_in_errors(client: capframe.Client) -> None:
    small = [p for p in org(client).parents() if p != DOCUMENTED_PARENT][:4]
    with pytest.warns(capframe.CapframeWarning, match="1 of 6 parents were not found"):
        tables = capframe.fetch_children_tables(
            [DOCUMENTED_PARENT, *small, ("email", "nobody@example.invalid")], client=client
        )
    assert set(tables.children.select("parent_type", "parent_value").unique().rows()) <= {DOCUMENTED_PARENT, *small}
    assert tables.errors.select("code").rows() == [(8015,)]
    assert set(tables.identifiers["customer_id"]) == set(tables.children["customer_id"])


def test_a_customer_id_is_resolved_through_get_customers_bulk(client: capframe.Client) -> None:
    parent = next(f for f in org(client).families() if f.parent_id and f.child_ids)
    by_id = capframe.fetch_children(parent.parent_id, client=client)  # type: ignore[arg-type]
    assert sorted(by_id["customer_id"]) == sorted(parent.child_ids)


def test_companies(client: capframe.Client) -> None:
    kind, value, child_ids = family(client, kind="company")
    children = capframe.fetch_children((kind, value), client=client, association="company")
    assert sorted(children["customer_id"]) == sorted(child_ids)


@pytest.mark.parametrize(
    ("parent", "error", "message"),
    [
        (("phone", "1"), capframe.InvalidArgumentError, "identifier type 'phone'"),
        (("mobile", " "), capframe.InvalidArgumentError, r"parent #1 \(mobile identifier\) is empty"),
        ("917799889933", capframe.ArgumentTypeError, r"\(identifier_type, value\) pair"),
        (-5, capframe.InvalidArgumentError, "positive"),
        ([], capframe.InvalidArgumentError, "empty list"),
    ],
)
def test_bad_parents_fail_before_any_request(parent: object, error: type[Exception], message: str) -> None:
    fresh = capframe.Client.sandbox(50)
    with pytest.raises(error, match=message):
        capframe.fetch_children(parent, client=fresh)  # type: ignore[arg-type]
    assert org(fresh).request_log == []


def test_sort_order_is_passed_to_the_api(client: capframe.Client) -> None:
    kind, value, _ = family(client, 1001)
    descending = capframe.fetch_children((kind, value), client=client, page_size=200)
    ascending = capframe.fetch_children((kind, value), client=client, page_size=200, sort_order="asc")
    assert ascending["customer_id"].to_list() == descending["customer_id"].to_list()[::-1]
    assert descending["created_date"].is_sorted(descending=True)


def test_children_tables_are_keyed_by_customer_id(client: capframe.Client) -> None:
    tables = capframe.fetch_children_tables(DOCUMENTED_PARENT, client=client)
    assert tables.identifiers.filter(pl.col("customer_id") == 134094571)["value"].to_list()[:2] == [
        "tom.sawyer@capillarytech.com",
        "917799889933",
    ]
    tables.validate()


def test_children_state_their_provenance(client: capframe.Client) -> None:
    with pytest.warns(capframe.CapframeWarning):
        tables = capframe.fetch_children_tables([DOCUMENTED_PARENT, ("mobile", "910000000001")], client=client)
    p = tables.provenance
    assert p is not None
    assert (p.host, p.source, p.asked, p.failed, p.capframe_version) == (
        client.base_url,
        "INSTORE",
        2,
        1,
        capframe.__version__,
    )


@pytest.mark.parametrize(
    ("page_warnings", "entity_warnings"),
    [(["check the store code"], [{"code": 1, "message": "m"}]), ([7], ["text"]), ([{"a": 1}], [[1, None]])],
)
def test_warnings_of_the_page_and_of_its_entity_are_kept_whatever_their_json_types(
    page_warnings: list[Any], entity_warnings: list[Any]
) -> None:
    """The hierarchy answers with warnings at two levels; undocumented, so any JSON may come in each."""
    child = {"profiles": [{"firstName": "Lalit", "userId": 134094602}], "roleCode": "Manager"}
    body = {
        "entity": {"customers": [child], "count": 1, "errors": [], "warnings": entity_warnings},
        "warnings": page_warnings,
        "errors": [],
        "success": True,
    }

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body)

    client = capframe.Client("eu", username="till", password="secret", transport=httpx.MockTransport(handle))
    tables = capframe.fetch_children_tables(DOCUMENTED_PARENT, client=client)
    assert tables.children["customer_id"].to_list() == [134094602]
    texts = [w if isinstance(w, str) else json.dumps(w, separators=(",", ":")) for w in page_warnings + entity_warnings]
    warned = tables.errors.filter(pl.col("level") == "warning")
    assert sorted(warned["message"].to_list()) == sorted(texts)


# --- what fetch_children says about parents it could not walk (issue 14) ---


def test_parents_not_found_are_warned_about_at_the_callers_line_and_listed_alike(client: capframe.Client) -> None:
    unknown_id = org(client).unknown_ids(1)[0]
    parents = [DOCUMENTED_PARENT, ("email", "nobody@example.invalid"), unknown_id]
    with pytest.warns(
        capframe.CapframeWarning,
        match=r"2 of 3 parents were not found: fetch_children_tables\(\.\.\.\)\.failed_parents",
    ) as caught:
        frame = capframe.fetch_children(parents, client=client)
    assert {w.filename for w in caught} == {__file__}
    assert frame["parent_value"].unique().to_list() == [DOCUMENTED_PARENT[1]]

    async def cell() -> capframe.ChildrenTables:
        return await capframe.afetch_children_tables(parents, client=client)

    with pytest.warns(capframe.CapframeWarning) as caught_async:
        tables = asyncio.run(cell())
    assert {w.filename for w in caught_async} == {__file__}
    text = repr(tables)
    assert "failed parents: 2 (parent #2 (email identifier), parent #3 (customer id" in text
    assert "nobody@example.invalid" not in text
    assert tables.errors.filter(pl.col("level") == "error")["customer_id"].to_list() == [None, unknown_id]


def test_children_of_a_parent_given_as_a_customer_id_carry_that_id(client: capframe.Client) -> None:
    parent = next(f for f in org(client).families() if f.parent_id and f.child_ids)
    tables = capframe.fetch_children_tables([parent.parent_id, DOCUMENTED_PARENT], client=client)  # type: ignore[list-item]
    by_id = tables.children.filter(pl.col("parent_customer_id") == parent.parent_id)
    assert sorted(by_id["customer_id"]) == sorted(parent.child_ids)
    assert (
        tables.children.filter(pl.col("parent_value") == DOCUMENTED_PARENT[1])["parent_customer_id"].null_count() == 2
    )


# --- bounded walks and values no customer can have (issue 12) ---


def _hierarchy(pages: list[list[dict[str, Any]]], count: int | None = None) -> capframe.Client:
    """A hierarchy that answers page n (by offset) with pages[n], or the last one past the end."""

    def handle(request: httpx.Request) -> httpx.Response:
        limit, offset = int(request.url.params["limit"]), int(request.url.params["offset"])
        page = pages[min(offset // limit, len(pages) - 1)]
        entity = {"customers": page, "count": len(page) if count is None else count, "errors": [], "warnings": []}
        return httpx.Response(200, json={"entity": entity, "warnings": [], "errors": [], "success": True})

    return capframe.Client(
        "eu", username="till", password="secret", max_retries=0, transport=httpx.MockTransport(handle)
    )


def _child(user_id: int, **fields: Any) -> dict[str, Any]:
    return {"profiles": [{"firstName": "x", "userId": user_id}], "roleCode": "r", **fields}


def test_a_walk_stops_past_the_count_the_api_reported_and_says_why() -> None:
    endless = [[_child(1000 * n + i) for i in range(10)] for n in range(1, 200)]
    with pytest.warns(capframe.CapframeWarning, match="the API reported 25, and pages kept coming"):
        children = capframe.fetch_children(DOCUMENTED_PARENT, client=_hierarchy(endless, count=25), page_size=10)
    assert 25 <= children.height <= 50


def test_a_walk_stops_on_a_page_that_brings_nothing_new_and_says_why() -> None:
    same = [[_child(i) for i in range(1, 11)]]
    with pytest.warns(capframe.CapframeWarning, match="brought no child not seen before"):
        children = capframe.fetch_children(DOCUMENTED_PARENT, client=_hierarchy(same), page_size=10)
    assert children["customer_id"].to_list() == list(range(1, 11))


@pytest.mark.parametrize(
    ("child", "named"),
    [(_child(0), "userId 0"), (_child(-7), "userId -7"), (_child(5, noOfChildren=-1), "noOfChildren -1")],
)
def test_values_no_customer_can_have_are_a_fetch_error_not_a_schema_error(child: dict[str, Any], named: str) -> None:
    with pytest.raises(capframe.FetchError, match=named) as caught:
        capframe.fetch_children_tables(
            [DOCUMENTED_PARENT, ("mobile", "911")], client=_hierarchy([[child, _child(9)], []])
        )
    assert caught.value.partial is not None


# --- every parent in a parents table; a family that fits a page in one request (issue 21) ---

PARENTS_COLUMNS = ["parent_number", "given_as", "given_value", "customer_id", "found", "no_of_children", "error_code"]


def _mixed_parents(sandbox: Sandbox) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """Parents by customer id, by mobile, unknown by email, one with no children, an unknown id, one
    asked twice; and the parents rows they must give (without error_message)."""
    families = [f for f in sandbox.families() if f.entity_type == "parentCustomer" and f.parent_id]
    by_id = next(f for f in families if f.child_ids)
    by_mobile = next(f for f in families if f.identifier_type == "mobile" and f.child_ids and f is not by_id)
    childless = next(f for f in families if not f.child_ids)
    unknown_id = sandbox.unknown_ids(1)[0]
    mobile = (by_mobile.identifier_type, by_mobile.identifier_value)
    parents = [
        by_id.parent_id,
        mobile,
        ("email", "nobody@example.invalid"),
        (childless.identifier_type, childless.identifier_value),
        unknown_id,
        mobile,
    ]
    rows = [
        (1, "customer_id", None, by_id.parent_id, True, len(by_id.child_ids), None),
        (2, "mobile", mobile[1], by_mobile.parent_id, True, len(by_mobile.child_ids), None),
        (3, "email", "nobody@example.invalid", None, False, None, 8015),
        (4, childless.identifier_type, childless.identifier_value, None, True, 0, None),
        (5, "customer_id", None, unknown_id, False, None, 8015),
        (6, "mobile", mobile[1], by_mobile.parent_id, True, len(by_mobile.child_ids), None),
    ]
    return parents, rows


def test_the_parents_table_has_every_parent_asked_in_order_with_zeros_and_failures(client: capframe.Client) -> None:
    parents, rows = _mixed_parents(org(client))
    with pytest.warns(capframe.CapframeWarning, match=r"2 of 5 parents were not found: .*\.failed_parents"):
        tables = capframe.fetch_children_tables(parents, client=client)
    assert tables.parents.select(PARENTS_COLUMNS).rows() == rows
    schemas.Parents.validate(tables.parents)
    tables.validate()
    # The API's reason, or Get Customers Bulk's for an id it does not know.
    messages = tables.parents["error_message"].to_list()
    assert messages[2] == "No customer found with the given identifier(s)"
    assert messages[4] is not None
    assert messages[4].startswith("Get Customers Bulk could not find it")
    assert [m is None for m in messages] == [True, True, False, True, False, True]
    assert tables.failed_parents["parent_number"].to_list() == [3, 5]
    assert tables.returned().parents.equals(tables.parents)
    # Each parent's no_of_children is its rows of children: by identifier, or by the customer id it was given as.
    by_id = tables.children.filter(pl.col("parent_customer_id") == parents[0])
    assert by_id.height == rows[0][5]


def test_the_parents_table_of_a_rerun_from_the_snapshot_with_no_client_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    online = capframe.Client.sandbox(2_000, requests_per_minute=None)
    parents, _ = _mixed_parents(org(online))
    with pytest.warns(capframe.CapframeWarning):
        first = capframe.fetch_children_tables(parents, client=online, cache_dir=tmp_path)
    for name in ("CAPILLARY_HOST", "CAPILLARY_USERNAME", "CAPILLARY_PASSWORD", "CAPILLARY_CLIENT_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.warns(capframe.CapframeWarning, match="2 of 5 parents were not found"):
        again = capframe.fetch_children_tables(parents, cache_dir=tmp_path)
    assert again.provenance is not None
    assert again.provenance.fetched == 0
    assert again.parents.equals(first.parents)
    assert again.failed_parents.equals(first.failed_parents)


def test_no_parent_identifier_in_the_messages_repr_or_log_of_a_parents_table(
    client: capframe.Client, caplog: pytest.LogCaptureFixture
) -> None:
    parents, rows = _mixed_parents(org(client))
    values = {str(row[2]) for row in rows if row[2] is not None}
    caplog.set_level(logging.DEBUG, logger="capframe")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = capframe.fetch_children_tables(parents, client=client)
    said = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    said += [
        repr(tables),
        tables._repr_html_(),
        *tables.errors["message"],
        *tables.parents["error_message"].drop_nulls(),
    ]
    assert caplog.records
    assert caught
    assert not [text for text in said for value in values if value in text]


def _requests(client: capframe.Client) -> int:
    return sum(r.path == "/v2/customers/bulk" for r in org(client).request_log)


def test_a_family_that_fits_a_page_costs_one_request_and_a_big_one_a_request_a_page(client: capframe.Client) -> None:
    families = [f for f in org(client).families() if f.entity_type == "parentCustomer" and f.parent_id]
    assert {len(f.child_ids) for f in families} >= {0, 1, 2, 3, 4, 1234}
    for size, page_size, requests in [(0, 100, 1), (2, 100, 1), (4, 4, 2), (1234, 150, 9), (1234, 500, 7)]:
        f = next(f for f in families if len(f.child_ids) == size)
        before = _requests(client)
        children = capframe.fetch_children((f.identifier_type, f.identifier_value), client=client, page_size=page_size)
        assert sorted(children["customer_id"]) == sorted(f.child_ids)
        # A full page is not trusted to end the walk (4 of 4), nor is the sandbox's cap of 200 (of 500 asked).
        assert _requests(client) - before == requests, (size, page_size)


def test_every_sandbox_parent_costs_a_request_a_page_of_its_family() -> None:
    """The issue's case: the sandbox's parents (median family 5) cost one request each, not two."""
    client = capframe.Client.sandbox(requests_per_minute=None)
    sandbox = org(client)
    tables = capframe.fetch_children_tables(sandbox.parents(), client=client, progress=False)
    sizes = {(f.identifier_type, f.identifier_value): len(f.child_ids) for f in sandbox.families()}
    # The documented family's children state no parentCustomer (its example shows none): its walk
    # cannot trust a short page, and costs two.
    expected = sum(max(1, -(-sizes[p] // DEFAULT_PAGE_SIZE)) for p in sandbox.parents()) + 1
    assert (len(sandbox.parents()), _requests(client)) == (107, expected)
    assert expected < 125
    assert tables.parents["no_of_children"].to_list() == [sizes[p] for p in sandbox.parents()]


def _family_server(family: list[dict[str, Any]], caps: list[int] | None = None) -> capframe.Client:
    """A hierarchy that serves ``family`` by offset, each page cut to the next of ``caps`` (a server that
    caps pages silently), else to the limit asked."""
    sizes = iter(caps or [])

    def handle(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        page = family[offset : offset + next(sizes, limit)]
        entity = {"customers": page, "count": len(page), "errors": [], "warnings": []}
        return httpx.Response(200, json={"entity": entity, "warnings": [], "errors": [], "success": True})

    return capframe.Client("eu", username="till", password="secret", transport=httpx.MockTransport(handle))


def test_a_walk_goes_on_while_the_count_says_more_children_than_came() -> None:
    """Pages a server shrinks silently (5, 3, 2 of 10 asked): a short page that is shorter than the
    one before does not end the walk while parentCustomer.noOfChildren says more are to come."""
    parent = {"profiles": [{"userId": 77}], "noOfChildren": 10}
    client = _family_server([_child(i, parentCustomer=parent) for i in range(1, 11)], caps=[5, 3, 2])
    tables = capframe.fetch_children_tables(DOCUMENTED_PARENT, client=client, page_size=10)
    assert tables.children["customer_id"].to_list() == list(range(1, 11))
    assert tables.parents.select("customer_id", "no_of_children").row(0) == (77, 10)


@pytest.mark.parametrize("stated", [1, -1, "many", True, 2.5, None])
def test_a_count_the_children_belie_costs_a_request_never_children(stated: object) -> None:
    parent = {"profiles": [{"userId": 77}], "noOfChildren": stated}
    family = [_child(i, parentCustomer=parent) for i in range(1, 6)]
    children = capframe.fetch_children(DOCUMENTED_PARENT, client=_family_server(family), page_size=10)
    assert children["customer_id"].to_list() == [1, 2, 3, 4, 5]


def _sandbox_page(sandbox: Sandbox, parent: tuple[str, str], **flags: str) -> list[dict[str, Any]]:
    with httpx.Client(transport=sandbox.sync_transport(), base_url=Sandbox.BASE_URL) as http:
        response = http.get(
            "/v2/customers/bulk",
            params={
                "source": "INSTORE",
                "associationEntityType": "parentCustomer",
                "associationEntityIdentifierType": parent[0],
                "associationEntityIdentifierValue": parent[1],
                **flags,
            },
            auth=(Sandbox.USERNAME, hashlib.md5(Sandbox.PASSWORD.encode()).hexdigest()),
        )
    customers: list[dict[str, Any]] = response.json()["entity"]["customers"]
    return customers


def test_the_sandbox_states_a_childs_parent_as_the_flags_ask() -> None:
    sandbox = Sandbox(200)
    f = next(f for f in sandbox.families() if f.parent_id and len(f.child_ids) > 1)
    parent = (f.identifier_type, f.identifier_value)
    both = _sandbox_page(sandbox, parent, includeCustomerAssociateDetail="true", includeNoOfChildren="true")
    assert {json.dumps(c["parentCustomer"]["profiles"][0]["userId"]) for c in both} == {str(f.parent_id)}
    assert {c["parentCustomer"]["noOfChildren"] for c in both} == {len(f.child_ids)}
    # The child's own noOfChildren is the count below it, as in the documented example.
    assert all("noOfChildren" in c for c in both)
    detail_only = _sandbox_page(sandbox, parent, includeCustomerAssociateDetail="true")
    assert all("noOfChildren" not in c["parentCustomer"] for c in detail_only)
    assert all("parentCustomer" not in c for c in _sandbox_page(sandbox, parent, includeNoOfChildren="true"))
    # The documented example shows no parentCustomer: the sandbox sends the example as documented.
    documented = _sandbox_page(sandbox, DOCUMENTED_PARENT, includeCustomerAssociateDetail="true")
    assert all("parentCustomer" not in c for c in documented)


@pytest.mark.parametrize(
    "parent", ["text", [1, 2], {"profiles": "x"}, {"profiles": [{"userId": 0}]}, {"noOfChildren": {}}]
)
def test_a_parent_customer_of_any_shape_costs_no_child_and_states_no_customer_id(parent: object) -> None:
    family = [_child(i, parentCustomer=parent) for i in range(1, 4)]
    tables = capframe.fetch_children_tables(DOCUMENTED_PARENT, client=_family_server(family), page_size=10)
    assert tables.children["customer_id"].to_list() == [1, 2, 3]
    assert tables.parents.select("customer_id", "found", "no_of_children").row(0) == (None, True, 3)
