"""The Xero simulator answers like Xero's identity service and Accounting API: tenants from
/connections, the tenant header, scope and expiry errors, refresh-token rotation and replay,
JWT-shaped access tokens and rate-limit headers."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from sandbox.simulators.xero import DEFAULT_ACTIONS, XeroSimulator, account

CLIENT_ID, CLIENT_SECRET = "pleo-client", "pleo-secret"
ACME = "11111111-aaaa-4aaa-8aaa-111111111111"
OTHER = "22222222-bbbb-4bbb-8bbb-222222222222"
NOT_GRANTED = "33333333-cccc-4ccc-8ccc-333333333333"
SCOPES = "openid profile email offline_access accounting.settings.read accounting.contacts.read"


@pytest.fixture
def xero():
    with XeroSimulator() as sim:
        sim.add_app(CLIENT_ID, CLIENT_SECRET)
        sim.add_organisation(tenant_id=ACME, name="Acme Ltd")
        sim.add_organisation(tenant_id=OTHER, name="Acme Holdings Ltd", is_demo=True)
        sim.add_organisation(tenant_id=NOT_GRANTED, name="Someone Else Ltd")
        yield sim


@pytest.fixture
def grant(xero):
    return xero.grant(client_id=CLIENT_ID, tenant_ids=[ACME, OTHER], scopes=SCOPES)


@pytest.fixture
def http(xero):
    with httpx.Client(base_url=xero.base_url, timeout=2) as client:
        yield client


def api(http: httpx.Client, path: str, token: str, tenant: str | None = ACME) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if tenant is not None:
        headers["xero-tenant-id"] = tenant
    return http.get(f"/api.xro/2.0/{path}", headers=headers)


def refresh(http: httpx.Client, refresh_token: str, secret: str = CLIENT_SECRET) -> httpx.Response:
    return http.post(
        "/connect/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(CLIENT_ID, secret),
    )


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_connections_list_only_granted_tenants(xero, grant, http):
    response = http.get("/connections", headers={"Authorization": f"Bearer {grant.access_token}"})

    assert response.status_code == 200
    items = response.json()
    assert {c["tenantId"] for c in items} == {ACME, OTHER}
    first = next(c for c in items if c["tenantId"] == ACME)
    assert first["tenantName"] == "Acme Ltd"
    assert first["tenantType"] == "ORGANISATION"
    assert first["authEventId"] == grant.auth_event_id
    assert set(first) == {
        "id",
        "authEventId",
        "tenantId",
        "tenantType",
        "tenantName",
        "createdDateUtc",
        "updatedDateUtc",
    }
    filtered = http.get(
        "/Connections",
        params={"authEventId": "00000000-0000-0000-0000-000000000000"},
        headers={"Authorization": f"Bearer {grant.access_token}"},
    )
    assert filtered.json() == []


def test_organisation_with_right_wrong_and_missing_tenant(grant, http):
    ok = api(http, "Organisation", grant.access_token, ACME)
    assert ok.status_code == 200
    body = ok.json()
    assert body["Status"] == "OK" and body["ProviderName"] == "Pleo Export Preflight"
    assert body["DateTimeUTC"].startswith("/Date(")
    [organisation] = body["Organisations"]
    assert organisation["OrganisationID"] == ACME
    assert (organisation["Name"], organisation["CountryCode"], organisation["BaseCurrency"]) == (
        "Acme Ltd",
        "GB",
        "GBP",
    )
    assert organisation["IsDemoCompany"] is False
    assert api(http, "Organisation", grant.access_token, OTHER).json()["Organisations"][0]["IsDemoCompany"] is True

    for tenant in (NOT_GRANTED, None):
        denied = api(http, "Organisation", grant.access_token, tenant)
        assert denied.status_code == 403
        assert denied.json()["Title"] == "Forbidden"
        assert denied.json()["Detail"] == "AuthenticationUnsuccessful"


def test_missing_scope_is_401_authorization_unsuccessful(xero, http):
    grant = xero.grant(client_id=CLIENT_ID, tenant_ids=[ACME], scopes="offline_access accounting.manualjournals")
    for path in ("Organisation", "Organisation/Actions", "Accounts", "TaxRates"):
        response = api(http, path, grant.access_token)

        assert response.status_code == 401
        assert response.json()["Detail"] == "AuthorizationUnsuccessful"
        assert set(response.json()) == {"Type", "Title", "Status", "Detail", "Instance", "Extensions"}


def test_settings_or_settings_read_scope_opens_the_settings_endpoints(xero, http):
    for scope in ("accounting.settings", "accounting.settings.read"):
        token = xero.grant(client_id=CLIENT_ID, tenant_ids=[ACME], scopes=[scope]).access_token
        for path in ("Organisation", "Organisation/Actions", "Accounts", "TaxRates"):
            assert api(http, path, token).status_code == 200


def test_expired_token_is_401_token_expired(xero, grant, http):
    xero.advance(1801)

    response = api(http, "Organisation", grant.access_token)

    assert response.status_code == 401
    assert response.json()["Detail"].startswith("TokenExpired: token expired at ")
    assert http.get("/connections", headers={"Authorization": f"Bearer {grant.access_token}"}).status_code == 401


def test_refresh_rotates_both_tokens(xero, grant, http):
    old_access, old_refresh = grant.access_token, grant.refresh_token
    xero.expire_access_token(grant)

    response = refresh(http, old_refresh)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1800
    assert body["access_token"] != old_access and body["refresh_token"] != old_refresh
    assert body["scope"] == SCOPES and body["id_token"].count(".") == 2
    assert (grant.access_token, grant.refresh_token) == (body["access_token"], body["refresh_token"])
    assert api(http, "Organisation", body["access_token"]).status_code == 200
    assert xero.token_calls == 1


def test_replayed_refresh_token_is_invalid_grant_and_revokes_the_grant(grant, http):
    used = grant.refresh_token
    rotated = refresh(http, used).json()

    replay = refresh(http, used)

    assert replay.status_code == 400
    assert replay.json() == {"error": "invalid_grant"}
    assert grant.revoked
    assert api(http, "Organisation", rotated["access_token"]).status_code == 401
    assert refresh(http, rotated["refresh_token"]).json() == {"error": "invalid_grant"}


def test_grace_period_lets_the_previous_refresh_token_through():
    with XeroSimulator(refresh_grace_seconds=1800) as sim:
        sim.add_app(CLIENT_ID, CLIENT_SECRET)
        sim.add_organisation(tenant_id=ACME, name="Acme Ltd")
        grant = sim.grant(client_id=CLIENT_ID, tenant_ids=[ACME], scopes="offline_access accounting.settings")
        with httpx.Client(base_url=sim.base_url, timeout=2) as client:
            used = grant.refresh_token
            first = refresh(client, used).json()
            again = refresh(client, used)
            assert again.status_code == 200 and again.json() == first
            sim.advance(1801)
            assert refresh(client, used).json() == {"error": "invalid_grant"}
            assert grant.revoked


def test_bad_client_secret_is_invalid_client(grant, http):
    response = refresh(http, grant.refresh_token, secret="wrong")

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}
    assert not grant.revoked


def test_client_secret_post_is_accepted(grant, http):
    response = http.post(
        "/connect/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": grant.refresh_token,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )

    assert response.status_code == 200


def test_no_refresh_token_without_offline_access(xero):
    grant = xero.grant(client_id=CLIENT_ID, tenant_ids=[ACME], scopes=["accounting.settings"])

    assert grant.refresh_token is None and grant.id_token is None


def test_accounts_without_filter_and_account_shape(grant, http):
    accounts = api(http, "Accounts", grant.access_token).json()["Accounts"]

    assert len(accounts) == 10
    general = next(a for a in accounts if a["Code"] == "429")
    assert general["Type"] == "EXPENSE" and general["Class"] == "EXPENSE" and general["TaxType"] == "INPUT2"
    assert "SystemAccount" not in general


def test_tax_rates_and_actions(xero, grant, http):
    rates = {r["TaxType"]: r for r in api(http, "TaxRates", grant.access_token).json()["TaxRates"]}
    assert rates["INPUT2"]["Status"] == "ACTIVE" and rates["INPUT2"]["EffectiveRate"] == 20.0
    assert rates["TAX001"]["Status"] == "DELETED"
    # Preflight refuses rates that cannot be applied to expenses: the expense rates say they can.
    assert rates["INPUT2"]["CanApplyToExpenses"] is True and rates["OUTPUT2"]["CanApplyToExpenses"] is False
    assert all("CanApplyToExpenses" in rate for rate in rates.values())

    xero.organisation(ACME).actions["CreateApprovedBill"] = "NOT-ALLOWED"
    actions = api(http, "Organisation/Actions", grant.access_token).json()["Actions"]
    assert [a["Name"] for a in actions] == list(DEFAULT_ACTIONS)
    assert {a["Name"]: a["Status"] for a in actions}["CreateApprovedBill"] == "NOT-ALLOWED"


def test_access_token_is_jwt_shaped_with_scopes(xero, grant):
    payload = claims(grant.access_token)

    assert payload["scope"] == SCOPES.split()
    assert payload["authentication_event_id"] == grant.auth_event_id
    assert payload["xero_userid"] == grant.user_id
    assert payload["exp"] == int(grant.expires_at)
    xero.scope_claim = "string"
    assert claims(xero.grant(client_id=CLIENT_ID, tenant_ids=[ACME], scopes=SCOPES).access_token)["scope"] == SCOPES


def test_rate_limit_headers_and_injected_429(xero, grant, http):
    first = api(http, "Organisation", grant.access_token)
    second = api(http, "Organisation", grant.access_token)
    assert int(second.headers["X-MinLimit-Remaining"]) == int(first.headers["X-MinLimit-Remaining"]) - 1
    assert second.headers["X-DayLimit-Remaining"] == "4998"
    assert "X-AppMinLimit-Remaining" in second.headers

    xero.inject_rate_limit("day", retry_after=3600, tenant_id=ACME)
    assert api(http, "Organisation", grant.access_token, OTHER).status_code == 200
    limited = api(http, "Organisation", grant.access_token, ACME)
    assert limited.status_code == 429
    assert (limited.headers["Retry-After"], limited.headers["X-Rate-Limit-Problem"]) == ("3600", "day")


def test_enforced_minute_limit(grant, http, xero):
    xero.enforce_rate_limits = True
    xero.minute_limit = 2
    assert [api(http, "Organisation", grant.access_token).status_code for _ in range(3)] == [200, 200, 429]
    xero.advance(60)
    assert api(http, "Organisation", grant.access_token).status_code == 200


def test_disconnect_and_revoke_grant(xero, grant, http):
    headers = {"Authorization": f"Bearer {grant.access_token}"}
    xero.disconnect(grant, OTHER)
    assert [c["tenantId"] for c in http.get("/connections", headers=headers).json()] == [ACME]
    assert api(http, "Organisation", grant.access_token, OTHER).status_code == 403

    xero.revoke_grant(grant)
    assert api(http, "Organisation", grant.access_token).json()["Detail"] == "AuthenticationUnsuccessful"
    assert refresh(http, grant.refresh_token).json() == {"error": "invalid_grant"}


def test_unserved_routes_are_404(grant, http):
    headers = {"Authorization": f"Bearer {grant.access_token}", "xero-tenant-id": ACME}
    for path in ("/api.xro/2.0/Contacts", "/api.xro/2.0/ManualJournals"):
        assert http.get(path, headers=headers).status_code == 404
    assert http.post("/connect/revocation", data={"token": grant.refresh_token}).status_code == 404


def test_custom_seed_and_reset(xero, http):
    tiny = xero.add_organisation(name="Tiny", accounts=[account("1", "Only", "EXPENSE")])
    grant = xero.grant(client_id=CLIENT_ID, tenant_ids=[tiny.tenant_id], scopes=["accounting.settings"])
    tenant = tiny.tenant_id.upper()  # tenant ids match case-insensitively
    assert [a["Code"] for a in api(http, "Accounts", grant.access_token, tenant).json()["Accounts"]] == ["1"]

    xero.reset()
    assert api(http, "Accounts", grant.access_token, tenant).status_code == 401
    assert len(xero.requests) == 1


def test_a_custom_tax_rate_reports_as_one_of_xeros_report_tax_types():
    """Xero's ReportTaxType is an enum (xero_accounting.yaml); a custom rate's own TaxType
    (TAX002) is not among its values, so it must not be the default report type."""
    from sandbox.simulators.xero import default_tax_rates, tax_rate

    assert tax_rate("TAX002", "Custom 5%", 5.0)["ReportTaxType"] == "INPUT"
    assert tax_rate("TAX003", "Custom sales 5%", 5.0, expenses=False, revenue=True)["ReportTaxType"] == "OUTPUT"
    assert tax_rate("TAX004", "Exempt", 0.0, report_tax_type="EXEMPTINPUT")["ReportTaxType"] == "EXEMPTINPUT"
    reported = {rate["TaxType"]: rate["ReportTaxType"] for rate in default_tax_rates()}
    assert reported == {
        "INPUT2": "INPUT",
        "OUTPUT2": "OUTPUT",
        "INPUT": "INPUT",
        "ZERORATEDINPUT": "ZERORATEDINPUT",
        "EXEMPTINPUT": "EXEMPTINPUT",
        "NONE": "NONE",
        "TAX001": "INPUT",
    }
