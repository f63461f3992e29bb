"""The shared HTTP clients never carry one company's cookies into another's requests."""

from __future__ import annotations

import httpx
import respx

from export_preflight.http import new_client


@respx.mock
def test_a_cookie_set_by_an_answer_is_never_sent_again():
    route = respx.get("https://api.example.test/self").mock(
        return_value=httpx.Response(200, json={}, headers={"Set-Cookie": "session=company-a; Path=/"})
    )
    client = new_client("https://api.example.test", timeout_seconds=2)

    client.get("/self", headers={"X-Company": "a"})
    client.get("/self", headers={"X-Company": "b"})

    assert route.call_count == 2
    assert "cookie" not in route.calls[1].request.headers
    assert len(client.cookies.jar) == 0
