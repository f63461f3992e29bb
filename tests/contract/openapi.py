"""Validate HTTP exchanges against an OpenAPI description with openapi-core.

Generic part: ``load_openapi(path)``, ``validate_request(openapi, server, request)`` and
``validate_response(openapi, server, request, response)`` take an ``httpx.Request`` or a
simulator's ``SimRequest`` (and an ``httpx.Response`` or a ``SimResponse``) and present
them to openapi-core as if they had been sent to ``server`` (the description's server URL,
e.g. ``https://api.xero.com/api.xro/2.0``): what is validated is the path, method, query,
headers and body, wherever the request was really sent (a simulator on 127.0.0.1).

Pleo part: ``validate_pleo_request`` against ../shared/pleo/export-api-v3.openapi.yaml.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from sandbox.simulators.base import SimRequest, SimResponse

SPEC_CANDIDATES = (
    Path(__file__).resolve().parents[2] / "docs" / "pleo-export-api-v3.openapi.yaml",
    Path(__file__).resolve().parents[3] / "shared" / "pleo" / "export-api-v3.openapi.yaml",
)
PLEO_SERVER = "https://external.pleo.io"


# ------------------------------------------------------------------ generic


@cache
def load_openapi(path: str | Path) -> OpenAPI:
    """The OpenAPI description at ``path`` (parsed and checked once per session)."""
    return OpenAPI.from_file_path(str(path))


class HttpxRequest:
    """An ``httpx.Request`` seen through openapi-core's Request protocol, as sent to ``server``.

    ``server`` is a URL with scheme and host and optionally a base path; the request's own
    path is taken as is (it must include that base path, as a real request to the server would).
    """

    def __init__(self, request: httpx.Request, server: str = PLEO_SERVER) -> None:
        self._request = request
        parts = urlsplit(server)
        self._host_url = f"{parts.scheme}://{parts.netloc}"
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )

    @property
    def host_url(self) -> str:
        return self._host_url

    @property
    def path(self) -> str:
        return self._request.url.path

    @property
    def method(self) -> str:
        return self._request.method.lower()

    @property
    def body(self) -> bytes | None:
        return self._request.content or None

    @property
    def content_type(self) -> str:
        return self._request.headers.get("Content-Type", "").lower()


class AnswerAdapter:
    """A ``SimResponse`` or ``httpx.Response`` seen through openapi-core's Response protocol."""

    def __init__(self, response: SimResponse | httpx.Response) -> None:
        if isinstance(response, httpx.Response):
            self._status, self._headers, self._data = response.status_code, dict(response.headers), response.content
        else:
            self._status, self._headers = response.status, dict(response.headers or {})
            if response.raw is not None:
                self._data = response.raw
            elif response.json is None:
                self._data = b""
            else:
                self._data = json.dumps(response.json).encode()
            if self._data and not any(name.lower() == "content-type" for name in self._headers):
                self._headers["Content-Type"] = "application/json"  # what SimulatorServer sends for json

    @property
    def status_code(self) -> int:
        return self._status

    @property
    def headers(self) -> Headers:
        return Headers(list(self._headers.items()))

    @property
    def content_type(self) -> str:
        return Headers(list(self._headers.items())).get("Content-Type", "").lower()

    @property
    def data(self) -> bytes | None:
        return self._data or None


def as_httpx(request: SimRequest | httpx.Request, server: str) -> httpx.Request:
    """A simulator's recorded ``SimRequest`` as the ``httpx.Request`` it was, sent to ``server``'s host."""
    if isinstance(request, httpx.Request):
        return request
    parts = urlsplit(server)
    return httpx.Request(
        request.method,
        f"{parts.scheme}://{parts.netloc}{request.path}",
        params=[(k, v) for k, values in request.query.items() for v in values],
        headers=list(request.headers.raw_items()),
        content=request.body or None,
    )


def validate_request(openapi: OpenAPI, server: str, request: SimRequest | httpx.Request) -> None:
    """Raise if ``request`` (method, path, query, headers, body) does not match ``openapi``."""
    openapi.validate_request(HttpxRequest(as_httpx(request, server), server))


def validate_response(
    openapi: OpenAPI,
    server: str,
    request: SimRequest | httpx.Request,
    response: SimResponse | httpx.Response,
) -> None:
    """Raise if ``response`` (status, headers, body) is not what ``openapi`` describes for ``request``."""
    openapi.validate_response(HttpxRequest(as_httpx(request, server), server), AnswerAdapter(response))


# ------------------------------------------------------------------ Pleo


@cache
def pleo_openapi() -> OpenAPI:
    for path in SPEC_CANDIDATES:
        if path.exists():
            return load_openapi(path)
    raise FileNotFoundError("the Pleo OpenAPI description was not found")


def validate_pleo_request(request: httpx.Request) -> None:
    """Raise if the request does not match the Pleo Export API v3 description."""
    validate_request(pleo_openapi(), PLEO_SERVER, request)


def validate_simulated_pleo_request(request: Any) -> None:
    """Validate a request the Pleo simulator recorded (a ``SimRequest``)."""
    validate_request(pleo_openapi(), PLEO_SERVER, request)
