"""export-preflight: pre-export validation of Pleo export jobs.

Data flows one way: queue message -> export job (re-read from Pleo) -> company
configuration and credentials -> preflight checks -> one decision -> one action
(fail the job in Pleo, or hand it on to item processing).
"""

import sys

if "pydantic" not in sys.modules:
    # Powertools' batch utility (records.py) builds its parser's hundred-odd pydantic event
    # models at import when pydantic is imported already (batch/types.py, ``has_pydantic``),
    # only for type hints we do not use: about a fifth of a bare ``import boto3, httpx`` on a
    # cold start. Imported here, before any module of this package imports pydantic, it leaves
    # them out (tests/unit/test_cold_imports.py holds the handler to that).
    import aws_lambda_powertools.utilities.batch  # noqa: F401
