"""The connector kit's paging strategies: the loop, the requests each sends, where each stops.

``NextLink`` (OData, for Business Central) runs against a respx-served fake of a
Business Central accounts collection.
"""

from __future__ import annotations

import httpx
import pytest
import respx

from export_preflight.connectors.base import BodyReader, JsonObject, request_or_raise
from export_preflight.connectors.paging import NextLink, PageNumbers, PageRequest, SkipPages, StartPosition
from export_preflight.errors import AccountingSystemUnavailable
from export_preflight.http import new_client

READ = BodyReader("Acme", "reading a collection")


def pages_of(bodies: list[JsonObject]) -> tuple[list[PageRequest], object]:
    """A fetch that answers ``bodies`` in turn, and the requests it was asked for."""
    asked: list[PageRequest] = []

    def fetch(request: PageRequest) -> JsonObject:
        asked.append(request)
        return bodies[len(asked) - 1]

    return asked, fetch


def items(body: JsonObject) -> list[JsonObject]:
    return READ.objects(body, "items")


def test_skip_pages_follows_the_next_page_marker() -> None:
    asked, fetch = pages_of(
        [{"items": [{"n": 1}], "pagination": {"nextPage": "x"}}, {"items": [{"n": 2}], "pagination": {}}]
    )
    found = SkipPages(size=2, max_pages=5).collect(fetch, items, READ)  # type: ignore[arg-type]
    assert found == [{"n": 1}, {"n": 2}]
    assert [dict(r.params) for r in asked] == [{"pagesize": 2, "skippages": 0}, {"pagesize": 2, "skippages": 1}]


def test_page_numbers_read_the_total_and_refuse_a_total_that_is_not_a_number() -> None:
    body = {"items": [{"n": 1}], "MetaInformation": {"@TotalPages": 2}}
    asked, fetch = pages_of([body, body])
    assert len(PageNumbers(size=500, max_pages=5).collect(fetch, items, READ)) == 2  # type: ignore[arg-type]
    assert [dict(r.params) for r in asked] == [{"limit": 500, "page": 1}, {"limit": 500, "page": 2}]
    _, fetch = pages_of([{"items": [], "MetaInformation": {"@TotalPages": "2"}}])
    with pytest.raises(AccountingSystemUnavailable):
        PageNumbers(size=500, max_pages=5).collect(fetch, items, READ)  # type: ignore[arg-type]


def test_start_position_stops_at_a_short_page_and_truncates_when_asked() -> None:
    full, short = {"items": [{"n": 1}, {"n": 2}]}, {"items": [{"n": 3}]}
    asked, fetch = pages_of([full, short])
    assert len(StartPosition(size=2, max_pages=5).collect(fetch, items, READ)) == 3  # type: ignore[arg-type]
    assert [dict(r.params) for r in asked] == [
        {"startposition": 1, "maxresults": 2},
        {"startposition": 3, "maxresults": 2},
    ]
    _, fetch = pages_of([full, full])
    assert len(StartPosition(size=2, max_pages=2, truncate=True).collect(fetch, items, READ)) == 4  # type: ignore[arg-type]
    _, fetch = pages_of([full, full])
    with pytest.raises(AccountingSystemUnavailable):
        StartPosition(size=2, max_pages=2).collect(fetch, items, READ)  # type: ignore[arg-type]


# ------------------------------------------------------------------ OData next links (Business Central)

BASE = "https://api.businesscentral.dynamics.com/v2.0/tenant/production/api/v2.0"
ACCOUNTS = "/companies(11111111-2222-3333-4444-555555555555)/accounts"


@pytest.fixture
def api():  # type: ignore[no-untyped-def]
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


def read_accounts(http: httpx.Client, paging: NextLink) -> list[JsonObject]:
    """What a Business Central connector would do: GET the first page, then each link."""

    def fetch(page: PageRequest) -> JsonObject:
        url = page.url or ACCOUNTS
        response = request_or_raise(http, "GET", url, system="Acme", what=READ.what, params=page.params or None)
        return READ.parse_object(response)

    return paging.collect(fetch, lambda body: READ.objects(body, "value"), READ)


def test_next_link_follows_the_links_within_the_api(api) -> None:  # type: ignore[no-untyped-def]
    second = f"{BASE}{ACCOUNTS}?$top=2&$skiptoken=abc"
    last = api.get(ACCOUNTS, params={"$skiptoken": "abc"}).respond(200, json={"value": [{"number": "3000"}]})
    first = api.get(ACCOUNTS, params={"$top": "2"}).respond(
        200, json={"value": [{"number": "1000"}, {"number": "2000"}], "@odata.nextLink": second}
    )
    with new_client(BASE, timeout_seconds=2) as http:
        found = read_accounts(http, NextLink(within=BASE, max_pages=5, params={"$top": 2}))
    assert [item["number"] for item in found] == ["1000", "2000", "3000"]
    assert first.call_count == 1 and last.call_count == 1
    assert str(last.calls.last.request.url) == second


def test_next_link_to_another_host_is_not_followed(api) -> None:  # type: ignore[no-untyped-def]
    api.get(ACCOUNTS).respond(
        200, json={"value": [{"number": "1000"}], "@odata.nextLink": "https://elsewhere.example/steal?page=2"}
    )
    with new_client(BASE, timeout_seconds=2) as http, pytest.raises(AccountingSystemUnavailable):
        read_accounts(http, NextLink(within=BASE, max_pages=5))
    assert len(api.calls) == 1


def test_next_link_that_never_ends_is_malformed(api) -> None:  # type: ignore[no-untyped-def]
    route = api.get(ACCOUNTS).respond(
        200, json={"value": [{"number": "1000"}], "@odata.nextLink": f"{BASE}{ACCOUNTS}?$skiptoken=again"}
    )
    with new_client(BASE, timeout_seconds=2) as http, pytest.raises(AccountingSystemUnavailable):
        read_accounts(http, NextLink(within=BASE, max_pages=3))
    assert route.call_count == 3
