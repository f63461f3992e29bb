"""Credentials in Secrets Manager (read through Powertools' cache), and the token store
(``oauth.TokenStore``): rotated token sets written back under the credential lease."""

from __future__ import annotations

import json
import threading
import uuid
from typing import TypeVar

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, TypeAdapter, ValidationError

from ..errors import CredentialsMissing, CredentialsUnreadable, PreflightError, TokenStoreRefused
from ..models import PleoCredentials, TokenSet
from ..observability import logger
from ..settings import Settings
from .clients import CLIENTS, token_client
from .errors import REFUSED_CODES, WRITE_REFUSED_CODES, cause_of, error_code, is_not_found, unavailable

ModelT = TypeVar("ModelT", bound=BaseModel)
_PLEO_CREDENTIALS: TypeAdapter[PleoCredentials] = TypeAdapter(PleoCredentials)


class Credentials:
    """Credentials from Secrets Manager, cached for ``secrets_cache_seconds``.

    Values never appear in errors: models hide their input, and only the secret id
    (not a secret) is ever mentioned.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

        self._lock = threading.Lock()
        self._secrets: SecretsProvider | None = None

    @property
    def _provider(self) -> SecretsProvider:
        """Built on first use (its client is the process's shared one), once across threads."""
        if self._secrets is None:
            with self._lock:
                if self._secrets is None:
                    self._secrets = SecretsProvider(boto3_client=CLIENTS.client("secretsmanager"))
        return self._secrets

    def pleo(self, secret_id: str, *, refresh: bool = False) -> PleoCredentials:
        raw = self._raw(secret_id, refresh=refresh)
        try:
            return _PLEO_CREDENTIALS.validate_json(raw)
        except ValidationError:
            raise CredentialsUnreadable(secret_id) from None

    def load(self, secret_id: str, model: type[ModelT], *, refresh: bool = False) -> ModelT:
        raw = self._raw(secret_id, refresh=refresh)
        try:
            return model.model_validate_json(raw)
        except ValidationError:
            raise CredentialsUnreadable(secret_id) from None

    # TokenStore (see oauth.py) ---------------------------------------------

    def read(self, secret_id: str, *, fresh: bool) -> TokenSet:
        return self.load(secret_id, TokenSet, refresh=fresh)

    def write(self, secret_id: str, tokens: TokenSet) -> None:
        """Persist a rotated token pair (PutSecretValue, one short attempt: it runs under the
        credential lease) and cache it as the current value. A refusal that retrying cannot
        change (access denied, e.g. the secret lacks the token-set tag; a secret scheduled for
        deletion) is ``TokenStoreRefused``; anything else ``AwsUnavailable``."""
        value = tokens.to_secret()
        try:
            token_client("secretsmanager").put_secret_value(
                SecretId=secret_id, SecretString=value, ClientRequestToken=str(uuid.uuid4())
            )
        except ClientError as error:
            if error_code(error) in WRITE_REFUSED_CODES:
                logger.error(
                    "Secrets Manager refused to store a rotated token set",
                    extra={"secret_id": secret_id, "code": error_code(error)},
                )
                raise TokenStoreRefused(f"Secrets Manager refused PutSecretValue ({error_code(error)})") from None
            raise unavailable("Secrets Manager PutSecretValue", error) from None
        except BotoCoreError as error:
            raise unavailable("Secrets Manager PutSecretValue", error) from None
        self._provider.add_to_cache(
            self._provider._build_cache_key(name=secret_id), value, self._settings.secrets_cache_seconds
        )

    def known_values(self, secret_ids: list[str]) -> list[str]:
        """The string values held by these secrets, as cached (for redaction; never logged)."""
        values: list[str] = []
        for secret_id in secret_ids:
            try:
                document = json.loads(self._raw(secret_id, refresh=False))
            except (PreflightError, ValueError, RecursionError):
                continue
            if isinstance(document, dict):
                values += [v for v in document.values() if isinstance(v, str) and len(v) >= 8]
        return values

    def _raw(self, secret_id: str, *, refresh: bool) -> str:
        try:
            value = self._provider.get(secret_id, max_age=self._settings.secrets_cache_seconds, force_fetch=refresh)
        except GetParameterError as error:
            cause = cause_of(error)
            if is_not_found(cause):
                raise CredentialsMissing(secret_id) from None
            if error_code(cause) in REFUSED_CODES:
                logger.error(
                    "Secrets Manager refused to read a secret",
                    extra={"secret_id": secret_id, "code": error_code(cause)},
                )
                raise CredentialsUnreadable(secret_id) from None
            raise unavailable("Secrets Manager GetSecretValue", cause) from None
        if not isinstance(value, str):
            raise CredentialsUnreadable(secret_id)
        return value
