"""Validate the requests we send to Pleo against ../shared/pleo/export-api-v3.openapi.yaml."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_CANDIDATES = (
    Path(__file__).resolve().parents[2] / "docs" / "pleo-export-api-v3.openapi.yaml",
    Path(__file__).resolve().parents[3] / "shared" / "pleo" / "export-api-v3.openapi.yaml",
)
PLEO_SERVER = "https://external.pleo.io"


@cache
def pleo_openapi() -> OpenAPI:
    for path in SPEC_CANDIDATES:
        if path.exists():
            return OpenAPI.from_file_path(str(path))
    raise FileNotFoundError("the Pleo OpenAPI description was not found")


class HttpxRequest:
    """An ``httpx.Request`` seen through openapi-core's Request protocol.

    The host is presented as Pleo's production server: what we validate is the
    path, method, query, headers (auth) and body, wherever the request was sent.
    """

    def __init__(self, request: httpx.Request) -> None:
        self._request = request
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )

    @property
    def host_url(self) -> str:
        return PLEO_SERVER

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


def validate_pleo_request(request: httpx.Request) -> None:
    """Raise if the request does not match the Pleo Export API v3 description."""
    pleo_openapi().validate_request(HttpxRequest(request))


def validate_simulated_pleo_request(request: Any) -> None:
    """Validate a request the Pleo simulator recorded (a ``SimRequest``)."""
    validate_pleo_request(
        httpx.Request(
            request.method,
            f"{PLEO_SERVER}{request.path}",
            params=[(k, v) for k, values in request.query.items() for v in values],
            headers=list(request.headers.raw_items()),
            content=request.body or None,
        )
    )
