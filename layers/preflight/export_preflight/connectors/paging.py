"""Paging strategies for reading a whole collection from an accounting system.

A connector states *how* its system pages (the parameters, where the answer says whether
more follows, how many pages are too many) and how one page is fetched; the loop lives
here, once. Every strategy stops after ``max_pages``: a collection that keeps announcing
more is not the data we expect (``truncate``: keep what was read instead).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import BodyReader, JsonObject


@dataclass(frozen=True)
class PageRequest:
    """One page to fetch: its query parameters, or the absolute ``url`` the previous page
    linked to (next-link paging; the parameters are then in the link)."""

    params: Mapping[str, Any] = field(default_factory=dict)
    url: str | None = None


FetchPage = Callable[[PageRequest], JsonObject]
"""Fetches one page and returns its body, every refusal already raised."""
PageItems = Callable[[JsonObject], list[JsonObject]]
"""The items of one page's body."""


@dataclass(frozen=True, kw_only=True)
class Paging:
    """The loop every strategy shares: fetch a page, keep its items, ask the strategy for
    the next page."""

    max_pages: int
    truncate: bool = False
    """After ``max_pages``, return what was read instead of calling the collection malformed."""

    def collect(self, fetch: FetchPage, items: PageItems, read: BodyReader) -> list[JsonObject]:
        """Every item of the collection, page by page (``read`` reports a malformed answer)."""
        collected: list[JsonObject] = []
        request: PageRequest | None = self._first()
        for number in range(self.max_pages):
            assert request is not None
            body = fetch(request)
            batch = items(body)
            collected.extend(batch)
            request = self._next(number, body, batch, read)
            if request is None:
                return collected
        if self.truncate:
            return collected
        raise read.malformed()

    def _first(self) -> PageRequest:
        raise NotImplementedError

    def _next(self, number: int, body: JsonObject, batch: list[JsonObject], read: BodyReader) -> PageRequest | None:
        """The page after page ``number`` (0-based), or None when it was the last."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class SkipPages(Paging):
    """``?skippages=n&pagesize=size`` (e-conomic): more follows while the body names a next
    page at ``more_at`` (a path of object members ending in a text)."""

    size: int
    more_at: tuple[str, ...] = ("pagination", "nextPage")
    size_param: str = "pagesize"
    skip_param: str = "skippages"

    def _first(self) -> PageRequest:
        return self._page(0)

    def _next(self, number: int, body: JsonObject, batch: list[JsonObject], read: BodyReader) -> PageRequest | None:
        return self._page(number + 1) if self.more(read, body) else None

    def more(self, read: BodyReader, body: JsonObject) -> bool:
        """Whether ``body`` names a next page."""
        *parents, key = self.more_at
        for parent in parents:
            body = read.member(body, parent)
        return bool(read.text(body, key))

    def _page(self, skip: int) -> PageRequest:
        return PageRequest({self.size_param: self.size, self.skip_param: skip})


@dataclass(frozen=True, kw_only=True)
class PageNumbers(Paging):
    """``?page=n&limit=size`` from page 1 (Fortnox): the body says how many pages there are at
    ``total_at`` (absent: this was the only page; not an integer: malformed)."""

    size: int
    total_at: tuple[str, ...] = ("MetaInformation", "@TotalPages")
    size_param: str = "limit"
    page_param: str = "page"

    def _first(self) -> PageRequest:
        return self._page(1)

    def _next(self, number: int, body: JsonObject, batch: list[JsonObject], read: BodyReader) -> PageRequest | None:
        *parents, key = self.total_at
        for parent in parents:
            body = read.member(body, parent)
        total = body.get(key)
        if total is None:
            return None
        if not isinstance(total, int) or isinstance(total, bool):
            raise read.malformed()
        return self._page(number + 2) if number + 1 < total else None

    def _page(self, page: int) -> PageRequest:
        return PageRequest({self.size_param: self.size, self.page_param: page})


@dataclass(frozen=True, kw_only=True)
class StartPosition(Paging):
    """``startposition``/``maxresults`` from position 1 (QuickBooks queries): more may follow
    while a page comes back full."""

    size: int
    start_param: str = "startposition"
    size_param: str = "maxresults"

    def _first(self) -> PageRequest:
        return self._page(1)

    def _next(self, number: int, body: JsonObject, batch: list[JsonObject], read: BodyReader) -> PageRequest | None:
        return self._page((number + 1) * self.size + 1) if len(batch) >= self.size else None

    def _page(self, start: int) -> PageRequest:
        return PageRequest({self.start_param: start, self.size_param: self.size})


@dataclass(frozen=True, kw_only=True)
class NextLink(Paging):
    """OData (Business Central, Microsoft Graph): the body links the next page at
    ``@odata.nextLink``; the link is followed only within ``within`` (the API's base URL: a
    link elsewhere would carry our credentials to whatever host it names)."""

    within: str
    link_key: str = "@odata.nextLink"
    params: Mapping[str, Any] = field(default_factory=dict)
    """The first page's query parameters (``$filter``, ``$top``...)."""

    def _first(self) -> PageRequest:
        return PageRequest(self.params)

    def _next(self, number: int, body: JsonObject, batch: list[JsonObject], read: BodyReader) -> PageRequest | None:
        link = read.text(body, self.link_key)
        if not link:
            return None
        base = self.within.rstrip("/") + "/"
        if not link.startswith(base):
            raise read.malformed()
        return PageRequest(url=link)
