"""The plumbing every OAuth 2.0 accounting system shares, declared once per system.

A connector states what differs (its id and name, its settings' environment prefix, the
default base URLs, the token service and path, our client credentials' secret id, which
401s a new token would not cure, its token endpoint class) and gets its settings class,
its HTTP clients' base URLs and its factory from here.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

import httpx
from pydantic import Field, HttpUrl

from ..models import CompanyConfiguration
from ..oauth import OAuthBearer, TokenEndpoint
from ..settings import ConnectorSettings, EnvConfigDict, base_url
from .base import AccountingConnector, ConnectorEnvironment, ConnectorSpec, oauth_bearer

ConnectorFactory = Callable[[httpx.Client, OAuthBearer, CompanyConfiguration], AccountingConnector]
"""Builds the connector from its API client, its bearer auth and the company's configuration."""


def _never(response: httpx.Response) -> bool:
    return False


class OAuthSettings(ConnectorSettings):
    """What every OAuth system's settings hold besides its token service's base URL."""

    api_base_url: HttpUrl
    client_credentials_secret_id: str = Field(min_length=1)


@dataclass(frozen=True)
class TokenService:
    """Where the OAuth token endpoint lives: a base URL of its own under ``role`` (the
    setting ``<role>_base_url``, the HTTP client ``<system>-<role>``) and the token path."""

    role: str
    default_base_url: str
    path: str


class TokenServiceSystem:
    """What every system with an API and a token service of its own shares (``OAuthSystem``,
    ``ClientCredentialsSystem``): its settings class, built from its declaration, and its two
    HTTP clients, ``<system_id>`` (the API) and ``<system_id>-<role>`` (the token service)."""

    system_id: str
    display_name: str
    env_prefix: str
    api_base_url: str
    token_service: TokenService

    @property
    def settings(self) -> type[ConnectorSettings]:
        raise NotImplementedError

    def settings_class(
        self,
        base: type[ConnectorSettings],
        extra: dict[str, Any] | None = None,
        extra_types: dict[str, Any] | None = None,
    ) -> type[ConnectorSettings]:
        """A settings class (``base``) with the two base URLs (the API's, the token service's)
        and ``extra`` fields (of ``extra_types``): each read from ``<PREFIX><NAME>``."""
        role = self.token_service.role
        fields: dict[str, Any] = {
            "api_base_url": HttpUrl(self.api_base_url),
            f"{role}_base_url": HttpUrl(self.token_service.default_base_url),
            **(extra or {}),
        }
        annotations = {"api_base_url": HttpUrl, f"{role}_base_url": HttpUrl, **(extra_types or {})}
        variables = ", ".join(f"``{self.env_prefix}{name.upper()}``" for name in fields)
        namespace = {
            "__module__": type(self).__module__,
            "__doc__": f"The settings of the {self.display_name} connector: {variables}.",
            "__annotations__": annotations,
            "model_config": EnvConfigDict(env_prefix=self.env_prefix, frozen=True, extra="ignore"),
            **fields,
        }
        name = re.sub(r"\W", "", self.display_name) + "Settings"
        return types.new_class(name, (base,), {}, lambda ns: ns.update(namespace))

    @property
    def api_client(self) -> str:
        return self.system_id

    @property
    def token_client(self) -> str:
        return f"{self.system_id}-{self.token_service.role}"

    def base_urls(self, settings: ConnectorSettings) -> dict[str, str]:
        """The HTTP clients by name, with their base URLs from ``settings``."""
        assert isinstance(settings, self.settings)
        api_url: HttpUrl = getattr(settings, "api_base_url")  # noqa: B009 - every such system has one
        token_url: HttpUrl = getattr(settings, f"{self.token_service.role}_base_url")
        return {self.api_client: base_url(api_url), self.token_client: base_url(token_url)}

    def connector_spec(
        self, create: Callable[[ConnectorEnvironment, CompanyConfiguration, bool], AccountingConnector], **spec: Any
    ) -> ConnectorSpec:
        """A ``ConnectorSpec`` with what the declaration already says (id, name, settings, base
        URLs) and ``create``; ``spec`` is the rest."""
        return ConnectorSpec(
            system_id=self.system_id,
            display_name=self.display_name,
            settings=self.settings,
            base_urls=self.base_urls,
            create=create,
            **spec,
        )


@dataclass(frozen=True)
class OAuthSystem(TokenServiceSystem):
    """An accounting system reached with OAuth 2.0 (see ``oauth.py``).

    Its settings are ``<PREFIX>API_BASE_URL``, ``<PREFIX><ROLE>_BASE_URL`` (the token
    service) and ``<PREFIX>CLIENT_CREDENTIALS_SECRET_ID`` (our app's client id and secret);
    its HTTP clients are ``<system_id>`` (the API) and ``<system_id>-<role>``.
    """

    system_id: str
    display_name: str
    env_prefix: str
    api_base_url: str
    token_service: TokenService
    client_credentials: str
    """Where our OAuth app's client id and secret are: the default Secrets Manager secret id."""
    refusal: Callable[[httpx.Response], bool] = _never
    """A 401 that a new token would not cure (``OAuthBearer`` then does not refresh)."""
    token_endpoint: type[TokenEndpoint] = TokenEndpoint

    @cached_property
    def settings(self) -> type[OAuthSettings]:
        """The system's ``ConnectorSettings`` class (one per system)."""
        secret_id = {"client_credentials_secret_id": Field(default=self.client_credentials, min_length=1)}
        settings = self.settings_class(OAuthSettings, secret_id, {"client_credentials_secret_id": str})
        return cast(type[OAuthSettings], settings)

    def bearer(self, env: ConnectorEnvironment, config: CompanyConfiguration, refresh: bool) -> OAuthBearer:
        """The company's bearer auth (see ``oauth_bearer``)."""
        settings = env.settings
        assert isinstance(settings, self.settings)
        return oauth_bearer(
            env,
            config,
            refresh,
            auth_client=self.token_client,
            auth_path=self.token_service.path,
            client_secret_id=settings.client_credentials_secret_id,
            system=self.display_name,
            refusal=self.refusal,
            endpoint=self.token_endpoint,
        )

    def spec(self, connector: ConnectorFactory, **spec: Any) -> ConnectorSpec:
        """The system's ``ConnectorSpec``: ``connector`` builds it from the API client, the bearer
        auth and the configuration; ``spec`` is the rest (mappings, company ref rule, ...).
        OAuth connectors re-read their tokens under the lease, never on a rejection."""

        def create(env: ConnectorEnvironment, config: CompanyConfiguration, refresh: bool) -> AccountingConnector:
            auth = self.bearer(env, config, refresh)
            return connector(env.http[self.api_client], auth, config)

        return self.connector_spec(create, reread_on_rejection=False, **spec)
