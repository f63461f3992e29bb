"""Message validation, reason sanitising and configuration parsing."""

from __future__ import annotations

import json

import pytest

from export_preflight.errors import UnprocessableMessage
from export_preflight.messages import parse_message
from export_preflight.models import CompanyConfiguration
from export_preflight.sanitize import MAX_REASON_LENGTH, sanitize_reason

JOB = "9a3c2f1e-5b7d-4c8a-9e6f-0123456789ab"
COMPANY = "11111111-1111-4111-8111-111111111111"


def test_a_claimed_job_message_parses_and_ignores_extra_fields():
    message = parse_message(json.dumps({"jobId": JOB, "companyId": COMPANY, "claimedAt": "x"}), max_bytes=1000)
    assert str(message.job_id) == JOB and str(message.company_id) == COMPANY


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("", "empty"),
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"companyId": COMPANY}), "jobId: Field required"),
        (json.dumps({"jobId": "42", "companyId": COMPANY}), "jobId: Input should be a valid UUID"),
        (json.dumps({"jobId": JOB, "companyId": 7}), "companyId: UUID input should be a string"),
        (json.dumps({"jobId": JOB, "companyId": COMPANY, "pad": "x" * 20_000}), "more than 20000"),
        ('{"jobId": ' + "9" * 5000 + "}", "value JSON parsing refuses"),
        (json.dumps({"jobId": JOB, "companyId": COMPANY, "rerun": "a b"}), "rerun"),
    ],
)
def test_malformed_messages_say_why(body, why):
    with pytest.raises(UnprocessableMessage) as raised:
        parse_message(body, max_bytes=20_000)
    assert raised.value.kind == "malformed_message"
    assert why in raised.value.reason


def test_reasons_are_one_bounded_line_without_urls_queries_or_tokens():
    text = (
        "Failed calling https://api.example.com/x?token=abc123&b=2 with Bearer eyJhbGciOiJIUzI1NiJ9.payload\n"
        "Traceback (most recent call last):\n  File 'x.py'"
    )
    clean = sanitize_reason(text, secrets=["abc123"])
    assert "token=" not in clean and "?" not in clean and "eyJ" not in clean and "Traceback" not in clean
    assert "https://api.example.com/x" in clean and "\n" not in clean
    assert len(sanitize_reason("x" * 5000)) == MAX_REASON_LENGTH


def test_known_secret_values_are_redacted():
    assert sanitize_reason("token s3cr3t-value leaked", secrets=["s3cr3t-value"]) == "token [redacted] leaked"


def test_configuration_accepts_a_json_string_or_a_map_with_numbers():
    as_map = CompanyConfiguration.model_validate(
        {"companyId": COMPANY, "mappings": {"journal": 1, "expenseAccount": 5820, "vatCodes": ["I25", 25]}}
    )
    as_json = CompanyConfiguration.model_validate(json.dumps({"companyId": COMPANY, "mappings": {"journal": "1"}}))
    assert as_map.mappings.journal == "1" and as_map.mappings.expense_account == "5820"
    assert as_map.mappings.vat_codes == ("I25", "25")
    assert as_json.mappings.journal == "1"


def test_json_nested_deeper_than_the_parser_goes_is_a_malformed_message():
    with pytest.raises(UnprocessableMessage) as raised:
        parse_message("[" * 200_000 + "]" * 200_000, max_bytes=1_000_000)
    assert raised.value.kind == "malformed_message" and "nested too deeply" in raised.value.reason


@pytest.mark.parametrize("retry_after", [0, -30, 0.2])
def test_a_retry_after_of_zero_or_in_the_past_never_collapses_the_backoff(retry_after):
    from export_preflight.settings import Settings

    settings = Settings(retry_backoff_base_seconds=15, retry_backoff_max_seconds=240)
    assert [settings.retry_delay(n, retry_after) for n in (1, 2, 3, 4, 5, 6)] == [15, 30, 60, 120, 240, 240]


def test_a_longer_retry_after_is_honoured_up_to_the_cap():
    from export_preflight.settings import Settings

    settings = Settings(retry_backoff_base_seconds=15, retry_backoff_max_seconds=240)
    assert settings.retry_delay(1, 90) == 90 and settings.retry_delay(1, 3600) == 240


def test_the_remote_retry_after_date_in_the_past_reads_as_zero():
    import httpx

    from export_preflight.http import retry_after_seconds

    past = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after_seconds(past) == 0.0


@pytest.mark.parametrize(
    ("updated", "started", "created", "left"),
    [
        ("2026-11-30T09:00:00Z", "2026-11-30T08:00:00Z", "2026-11-30T07:00:00Z", 3000),  # from the last action
        (None, "2026-11-30T08:30:00Z", "2026-11-30T07:00:00Z", 1200),  # else from the start (conservative)
        (None, None, "2026-11-30T08:10:00Z", 0),  # else from creation
    ],
)
def test_time_left_counts_from_the_last_action(updated, started, created, left):
    from datetime import UTC, datetime

    from export_preflight.models import ExportJob

    job = ExportJob.model_validate(
        {
            "id": JOB,
            "companyId": COMPANY,
            "status": "in_progress",
            "expiresIn": 3600,
            "lastUpdatedAt": updated,
            "startedAt": started,
            "createdAt": created,
        }
    )
    assert job.seconds_left(datetime(2026, 11, 30, 9, 10, tzinfo=UTC)) == left
