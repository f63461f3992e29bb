"""AWS answers classified, in one place: which error codes retrying will not change, what
"not found" looks like, and the ``AwsUnavailable`` a failed call becomes."""

from __future__ import annotations

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from ..errors import AwsUnavailable

NOT_FOUND_CODES = {"ResourceNotFoundException"}
# Answers that will not change by retrying: the secret id is wrong or not ours to read.
REFUSED_CODES = {"AccessDeniedException", "ValidationException", "InvalidParameterException", "DecryptionFailure"}
# Answers to PutSecretValue of a token set that will not change by retrying (our set-up).
WRITE_REFUSED_CODES = REFUSED_CODES | {
    "ResourceNotFoundException",
    "InvalidRequestException",  # e.g. the secret is scheduled for deletion
    "EncryptionFailure",
}
# KMS answers that will not change by retrying: the key is wrong, disabled or not ours to use,
# or the ciphertext is not an entry of this credential.
KMS_REFUSED_CODES = {
    "AccessDeniedException",
    "NotFoundException",
    "DisabledException",
    "KMSInvalidStateException",
    "InvalidKeyUsageException",
    "InvalidCiphertextException",
    "IncorrectKeyException",
    "ValidationException",
}


def cause_of(error: GetParameterError) -> BaseException | None:
    return error.__cause__ or error.__context__


def is_not_found(error: BaseException | None) -> bool:
    return isinstance(error, KeyError) or (
        isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in NOT_FOUND_CODES
    )


def error_code(error: BaseException | None) -> str:
    return str(error.response.get("Error", {}).get("Code", "")) if isinstance(error, ClientError) else ""


def unavailable(service: str, error: BaseException | None) -> AwsUnavailable:
    code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else type(error).__name__
    return AwsUnavailable(f"{service} failed ({code})")
