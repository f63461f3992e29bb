"""The hand-off's document (``ReadyJob``): the keys of the published contract, in its order,
and the JSON the service has always sent."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from export_preflight.models import ReadyJob

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = re.compile(r'\{"jobId",[^{}]*"checks": \{<check>: <facts>\}\}')


def contract_keys() -> list[str]:
    """The keys of the hand-off as the documentation writes them (README or docs/)."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        found = CONTRACT.search(re.sub(r"`?\n\s*`?", " ", page.read_text(encoding="utf-8")))
        if found:
            return re.findall(r'"(\w+)"', found.group(0))
    raise AssertionError("the hand-off contract is documented nowhere")


def test_the_hand_off_has_the_contracts_keys_and_the_same_json():
    job, company = uuid.uuid4(), uuid.uuid4()
    checks = {"company_context": {"verified": True, "companyRef": "100001"}, "bookkeeping_mode": {"mode": "vendor"}}
    ready = ReadyJob(
        job_id=job,
        company_id=company,
        accounting_system="economic",
        accounting_company_ref="100001",
        vendor_based_bookkeeping=True,
        checks=checks,
    )

    assert list(ready.message()) == contract_keys()
    assert json.dumps(ready.message()) == json.dumps(
        {
            "jobId": str(job),
            "companyId": str(company),
            "accountingSystem": "economic",
            "accountingCompanyRef": "100001",
            "vendorBasedBookkeeping": True,
            "checks": checks,
        }
    )
