"""AWS adapters, one per module: company configuration (``configurations``), credentials and
the token store (``credentials``, Secrets Manager), the credential lease (``lease``) and the
token journal (``token_journal``), the job decision log (``decision_log``), the readiness
table (``readiness_log``) and the queues (``queues``: ready jobs, dead letters, claimed jobs,
readiness). They share the process's boto3 clients (``clients``) and one classification of
AWS answers (``errors``). Reads of configuration and secrets go through Powertools
parameters providers, which cache them for a TTL."""

from .clients import (
    BOTO_CONFIG,
    CLIENTS,
    SINGLE_ATTEMPT_CONFIG,
    TOKEN_CLIENT_CONFIG,
    AwsClients,
    aws_clients,
    token_client,
)
from .configurations import CompanyConfigurations, ConfigurationItems
from .credentials import Credentials
from .decision_log import DynamoDBDecisionLog
from .lease import DynamoDBLease
from .queues import Queues
from .readiness_log import DynamoDBReadinessLog
from .token_journal import JOURNAL_TTL_SECONDS, DynamoDBTokenJournal

__all__ = [
    "BOTO_CONFIG",
    "CLIENTS",
    "JOURNAL_TTL_SECONDS",
    "SINGLE_ATTEMPT_CONFIG",
    "TOKEN_CLIENT_CONFIG",
    "AwsClients",
    "CompanyConfigurations",
    "ConfigurationItems",
    "Credentials",
    "DynamoDBDecisionLog",
    "DynamoDBLease",
    "DynamoDBReadinessLog",
    "DynamoDBTokenJournal",
    "Queues",
    "aws_clients",
    "token_client",
]
