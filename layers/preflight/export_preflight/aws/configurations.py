"""Company configuration items in DynamoDB: read through Powertools' parameter cache, listed,
and written with optimistic concurrency (the operator CLI's ``config put``)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from uuid import UUID

from aws_lambda_powertools.utilities.parameters.base import BaseProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from ..configuration import DocumentError, Finding, ItemReport, item_document, validate_item
from ..errors import ConfigurationChanged, IntegrationMisconfigured, UnprocessableMessage
from ..models import CompanyConfiguration
from ..settings import Settings
from .clients import CLIENTS
from .errors import cause_of, error_code, is_not_found, unavailable


class ConfigurationItems(BaseProvider):
    """Powertools' parameter cache (``get(name, max_age=...)``) over the configuration table,
    read with the process's one DynamoDB client. (Powertools' own DynamoDBProvider reads
    through a Table resource: a second DynamoDB client and the resource model to load, on
    every cold start.)"""

    def __init__(self, table: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._table = table

    def _get(self, name: str, **sdk_options: Any) -> Any:
        found = CLIENTS.client("dynamodb").get_item(TableName=self._table, Key={"companyId": {"S": name}})
        item = found.get("Item")
        if item is None or "configuration" not in item:
            raise KeyError(name)  # no configuration item: not found
        return _DESERIALIZE.deserialize(item["configuration"])

    def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:
        raise NotImplementedError("configuration items are read one company at a time")


_DESERIALIZE = TypeDeserializer()


class CompanyConfigurations:
    """Company configuration items from DynamoDB, cached for ``config_cache_seconds``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

        self._provider = ConfigurationItems(settings.company_config_table)

    def get(self, company_id: UUID) -> CompanyConfiguration | None:
        """The company's configuration, or None when there is no item for it."""
        try:
            raw = self._provider.get(str(company_id), max_age=self._settings.config_cache_seconds)
        except GetParameterError as error:
            if isinstance(cause_of(error), KeyError):  # no item for the company
                return None
            if is_not_found(cause_of(error)):  # the table itself: our set-up, not a missing company
                raise IntegrationMisconfigured(
                    f"the company configuration table {self._settings.company_config_table!r} does not exist "
                    "(ResourceNotFoundException)"
                ) from None
            raise unavailable("DynamoDB GetItem on the company configuration table", cause_of(error)) from None
        # The same validation as `config validate` (configuration.validate_item): an item the
        # model refuses is malformed; a value the accounting system would refuse (a reference,
        # a secret id) parses and is reported by the checks as invalid_configuration.
        try:
            document = item_document(str(company_id), raw if isinstance(raw, str | bytes) else _plain(raw))
            report = validate_item(document, secrets_prefix=self._settings.secrets_prefix, measure_size=False)
        except (DocumentError, TypeError) as error:
            fields = str(error) if isinstance(error, DocumentError) else "not a JSON object"
            report = ItemReport(structure=[Finding("configuration", fields)])
        if report.configuration is None:
            fields = "; ".join(str(finding) for finding in report.structure[:10])
            raise UnprocessableMessage(
                f"the configuration item of company {company_id} is malformed ({fields})",
                kind="malformed_company_configuration",
            ) from None
        return report.configuration

    def company_ids(self) -> list[str]:
        """Every configured company (a paginated Scan of the keys only)."""
        try:
            pages = self._dynamodb.get_paginator("scan").paginate(
                TableName=self._settings.company_config_table, ProjectionExpression="companyId"
            )
            return sorted(item["companyId"]["S"] for page in pages for item in page.get("Items", []))
        except (ClientError, BotoCoreError) as error:
            raise unavailable("DynamoDB Scan on the company configuration table", error) from None

    def put(self, configuration: CompanyConfiguration, document: dict[str, Any]) -> int:
        """Store a company's configuration item (``document``, the item as docs/contracts.md,
        "Company configuration item" shows it, validated as ``configuration`` by
        ``configuration.validate_item``): the operator CLI's ``config put``. Optimistic
        concurrency: the document's ``version`` is the version it was based on (``document_of``;
        absent: 0, no item or one never put with a version); the item is written only if it is
        still at that version, as version + 1 (returned). Otherwise ``ConfigurationChanged``,
        nothing written."""
        based_on = int(document.get("version") or 0)
        item = document["configuration"]
        if based_on:
            condition = "#version = :based_on"
            values: dict[str, Any] = {":based_on": {"N": str(based_on)}}
        else:
            condition, values = "attribute_not_exists(#version)", {}
        try:
            self._dynamodb.put_item(
                TableName=self._settings.company_config_table,
                Item={
                    "companyId": {"S": str(configuration.company_id)},
                    # a map, as the console shows it (numbers as Decimal, as DynamoDB wants)
                    "configuration": TypeSerializer().serialize(json.loads(json.dumps(item), parse_float=Decimal)),
                    "version": {"N": str(based_on + 1)},
                },
                ConditionExpression=condition,
                ExpressionAttributeNames={"#version": "version"},
                **({"ExpressionAttributeValues": values} if values else {}),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise unavailable("DynamoDB PutItem on the company configuration table", error) from None
            old = error.response.get("Item") or {}
            current = int(old["version"]["N"]) if "version" in old else self.document_of(configuration.company_id)[1]
            raise ConfigurationChanged(str(configuration.company_id), based_on, current) from None
        except BotoCoreError as error:
            raise unavailable("DynamoDB PutItem on the company configuration table", error) from None
        return based_on + 1

    def document_of(self, company_id: UUID) -> tuple[dict[str, Any] | None, int]:
        """The company's stored configuration item as a document (``companyId`` and its
        ``configuration`` map, as ``config put`` takes it) and its version (0: none yet), read
        consistently (the CLI's ``config get``)."""
        try:
            found = self._dynamodb.get_item(
                TableName=self._settings.company_config_table,
                Key={"companyId": {"S": str(company_id)}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as error:
            raise unavailable("DynamoDB GetItem on the company configuration table", error) from None
        item = found.get("Item")
        if item is None:
            return None, 0
        version = int(item["version"]["N"]) if "version" in item else 0
        raw = _DESERIALIZE.deserialize(item["configuration"]) if "configuration" in item else {}
        try:
            stored = json.loads(raw) if isinstance(raw, str) else _plain(raw)
        except (ValueError, RecursionError):
            stored = raw  # shown as stored: `config put` names what is wrong with it
        return {"companyId": str(company_id), "configuration": stored}, version

    @property
    def _dynamodb(self) -> Any:
        return CLIENTS.client("dynamodb")


def _plain(value: Any) -> Any:
    """DynamoDB maps come back with Decimals; make them JSON-like."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
