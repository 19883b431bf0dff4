"""The boto3 session every operator command uses, and what to say when AWS is not set up.

boto3 reads the region from AWS_DEFAULT_REGION and the profile only; the AWS CLI v2, the
other SDKs and the CDK CLI also read AWS_REGION, which takes precedence over
AWS_DEFAULT_REGION (https://docs.aws.amazon.com/sdkref/latest/guide/feature-region.html).
`session()` passes AWS_REGION explicitly, so the commands talk to the region `cdk deploy`
deploys to.
"""

from __future__ import annotations

import os

import boto3
import botocore.session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from grocery.errors import CommandError

SETUP_HINT = (
    "set AWS_REGION (or AWS_DEFAULT_REGION) and AWS credentials (aws configure, or "
    "AWS_PROFILE) for the account the stacks are deployed in"
)

# Errors that say nothing about one request but about the caller's credentials: the same
# answer comes back for every later request, so a command stops at the first one.
_CREDENTIAL_ERROR_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
_SETUP_ERRORS = (NoCredentialsError, NoRegionError, PartialCredentialsError, ProfileNotFound)


def region_from_environment() -> str | None:
    """AWS_REGION if set (it wins over AWS_DEFAULT_REGION, as in the AWS CLI v2)."""
    return os.environ.get("AWS_REGION", "").strip() or None


def session(*, region: str | None = None) -> boto3.Session:
    """A boto3 session for `region`, else AWS_REGION, else boto3's own resolution."""
    try:
        return boto3.Session(region_name=region or region_from_environment())
    except ProfileNotFound as error:
        raise CommandError(profile_not_found(error)) from None


def profile_not_found(error: ProfileNotFound) -> str:
    profile = error.kwargs.get("profile", "")
    known = botocore.session.Session().available_profiles  # reads the files, not the profile
    names = ", ".join(sorted(known)) or "none configured"
    return (
        f"AWS profile '{profile}' not found (from AWS_PROFILE or --profile); use one of: "
        f"{names} (aws configure list-profiles), or unset AWS_PROFILE"
    )


def is_setup_error(error: Exception) -> bool:
    """True when the error is about credentials, region or profile, not about one request."""
    if isinstance(error, _SETUP_ERRORS):
        return True
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code", "") in _CREDENTIAL_ERROR_CODES
    return False


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def describe(error: BotoCoreError | ClientError) -> str:
    """`Code: message` of a ClientError, else the botocore message."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'Error')}: {details.get('Message', '') or error}"
    return str(error)
