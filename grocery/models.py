"""`python -m grocery models list|show|approve|reject`: the model registry of a deployment.

Every model that passes the training gates is a version of the SageMaker Model Package
Group `<prefix>-classifier`, with its metrics, approval status, training job, dataset
manifest and labels. `list` also says which version the endpoint and batch classification
serve; `approve` and `reject` change a version's approval status (also possible in
SageMaker Studio) and follow the release workflow that change starts; `rollback` releases
an approved version. All three wait for the release and print its result.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import boto3
from botocore.exceptions import ClientError

from grocery.arguments import add_prefix_option
from grocery.aws import describe, error_code, is_setup_error
from grocery.aws import session as aws_session
from grocery.errors import CommandError
from grocery.promote import endpoint_state
from grocery.release import follow, release
from stacks.names import (
    APPROVED,
    METADATA_DATASET_MANIFEST,
    METADATA_LABELS_URI,
    METADATA_TEST_ACCURACY,
    METADATA_TEST_REPORT,
    METADATA_TRAINING_JOB,
    METADATA_VALIDATION_ACCURACY,
    REJECTED,
    model_package_group,
    release_parameter,
)
from stacks.serving.names import endpoint_name


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="the model registry: list, show, approve or reject model versions",
        description=__doc__.split("\n\n")[1],
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    add_prefix_option(common)
    listing = actions.add_parser(
        "list", parents=[common], help="every version, newest first, and what is served"
    )
    listing.set_defaults(run=run_list)
    show = actions.add_parser("show", parents=[common], help="everything about one version")
    show.add_argument("version", type=_version, help="the version number (see models list)")
    show.set_defaults(run=run_show)
    for name, status in (("approve", APPROVED), ("reject", REJECTED)):
        action = actions.add_parser(name, parents=[common], help=f"mark a version {status}")
        action.add_argument("version", type=_version, help="the version number (see models list)")
        action.add_argument(
            "--reason", default="", help="why (stored as the version's ApprovalDescription)"
        )
        action.add_argument(
            "--no-wait",
            action="store_true",
            help="return after the change instead of waiting for the release it starts",
        )
        action.set_defaults(run=run_update, status=status)
    rollback = actions.add_parser(
        "rollback",
        parents=[common],
        help="serve an approved older version again (runs the release workflow, waits)",
    )
    rollback.add_argument("version", type=_version, help="an Approved version (see models list)")
    rollback.set_defaults(run=run_rollback)


def _version(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"version must be a whole number >= 1, not {value!r}")
    return int(value)


@dataclass(frozen=True)
class Version:
    """One model package version, as the CLI shows it."""

    number: int
    arn: str
    status: str
    created: datetime
    metadata: dict[str, str]
    description: dict[str, Any]

    @property
    def model_name(self) -> str:
        """The SageMaker Model the serving stack declares when this version is released."""
        group = self.arn.rsplit("/", 2)[-2] if self.arn.count("/") >= 2 else ""
        return f"{group}-v{self.number}" if group else ""

    def age(self, now: datetime) -> str:
        seconds = max(0, int((now - self.created).total_seconds()))
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds >= size:
                return f"{seconds // size}{unit}"
        return f"{seconds}s"


def _refuse(error: ClientError, what: str) -> CommandError:
    if is_setup_error(error):
        raise error
    return CommandError(f"cannot {what}: {describe(error)}")


def _summaries(sagemaker, group: str) -> Iterator[dict[str, Any]]:
    token = None
    while True:
        request = {
            "ModelPackageGroupName": group,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
        }
        if token:
            request["NextToken"] = token
        try:
            page = sagemaker.list_model_packages(**request)
        except ClientError as error:
            raise _refuse(error, f"list the versions of model package group {group}") from None
        yield from page["ModelPackageSummaryList"]
        token = page.get("NextToken")
        if not token:
            return


def _describe(sagemaker, arn: str) -> Version:
    try:
        package = sagemaker.describe_model_package(ModelPackageName=arn)
    except ClientError as error:
        raise _refuse(error, f"describe model package {arn}") from None
    return Version(
        number=int(package["ModelPackageVersion"]),
        arn=package["ModelPackageArn"],
        status=package.get("ModelApprovalStatus", "?"),
        created=package["CreationTime"],
        metadata=dict(package.get("CustomerMetadataProperties", {})),
        description=package,
    )


def versions(sagemaker, prefix: str) -> list[Version]:
    """Every version of the deployment's group, newest first."""
    group = model_package_group(prefix)
    return [_describe(sagemaker, s["ModelPackageArn"]) for s in _summaries(sagemaker, group)]


def find(sagemaker, prefix: str, number: int) -> Version:
    group = model_package_group(prefix)
    for summary in _summaries(sagemaker, group):
        if int(summary.get("ModelPackageVersion", 0)) == number:
            return _describe(sagemaker, summary["ModelPackageArn"])
    raise CommandError(
        f"model package group {group} has no version {number}: see `python -m grocery models list`"
    )


@dataclass(frozen=True)
class Served:
    """What the endpoint serves (model names) and batch uses (the released version's ARN)."""

    endpoint: tuple[str, ...]
    batch: str  # the release record: the version batch classification creates its Model from

    def of(self, version: Version) -> str:
        where = []
        if version.model_name and version.model_name in self.endpoint:
            where.append("endpoint")
        if version.arn == self.batch:
            where.append("batch")
        return "+".join(where)


def served(session: boto3.Session, prefix: str) -> Served:
    state = endpoint_state(session.client("sagemaker"), endpoint_name(prefix))
    name = release_parameter(prefix, "model-package-arn")
    try:
        batch = session.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as error:
        if error_code(error) != "ParameterNotFound":
            raise _refuse(error, f"read SSM parameter {name}") from None
        batch = ""
    return Served(endpoint=state.models if state else (), batch=batch)


def _accuracy(version: Version, key: str) -> str:
    value = version.metadata.get(key, "")
    try:
        return f"{float(value):.3f}"
    except ValueError:
        return "-"


def format_table(rows: list[Version], now_serving: Served, now: datetime) -> str:
    header = ("VERSION", "STATUS", "VALIDATION", "TEST", "AGE", "TRAINING JOB", "SERVED BY")
    lines = [header]
    for v in rows:
        lines.append(
            (
                str(v.number),
                v.status,
                _accuracy(v, METADATA_VALIDATION_ACCURACY),
                _accuracy(v, METADATA_TEST_ACCURACY),
                v.age(now),
                v.metadata.get(METADATA_TRAINING_JOB, "-"),
                now_serving.of(v) or "-",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def run_list(
    args: argparse.Namespace, *, session: boto3.Session | None = None, out: TextIO = sys.stdout
) -> int:
    session = session or aws_session()
    rows = versions(session.client("sagemaker"), args.prefix)
    group = model_package_group(args.prefix)
    if not rows:
        print(f"model package group {group} has no versions yet: run training", file=out)
        return 0
    print(format_table(rows, served(session, args.prefix), datetime.now(UTC)), file=out)
    return 0


def run_show(
    args: argparse.Namespace, *, session: boto3.Session | None = None, out: TextIO = sys.stdout
) -> int:
    session = session or aws_session()
    v = find(session.client("sagemaker"), args.prefix, args.version)
    spec = v.description.get("InferenceSpecification", {})
    container = (spec.get("Containers") or [{}])[0]
    statistics = v.description.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics")
    where = served(session, args.prefix).of(v)
    fields = [
        ("version", str(v.number)),
        ("arn", v.arn),
        ("status", v.status),
        ("approval note", v.description.get("ApprovalDescription", "") or "-"),
        ("created", v.created.isoformat()),
        ("served by", where or "-"),
        ("validation accuracy", _accuracy(v, METADATA_VALIDATION_ACCURACY)),
        ("test accuracy", _accuracy(v, METADATA_TEST_ACCURACY)),
        ("test report", v.metadata.get(METADATA_TEST_REPORT, "-")),
        ("metrics", statistics["S3Uri"] if statistics else "-"),
        ("training job", v.metadata.get(METADATA_TRAINING_JOB, "-")),
        ("model when served", v.model_name or "-"),
        ("artifact", container.get("ModelDataUrl", "-")),
        ("image", container.get("Image", "-")),
        ("labels", v.metadata.get(METADATA_LABELS_URI, "-")),
        ("dataset manifest", v.metadata.get(METADATA_DATASET_MANIFEST, "-")),
        ("content types", ", ".join(spec.get("SupportedContentTypes", [])) or "-"),
    ]
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        print(f"{name.ljust(width)}  {value}", file=out)
    return 0


def run_update(
    args: argparse.Namespace,
    *,
    session: boto3.Session | None = None,
    out: TextIO = sys.stdout,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    session = session or aws_session()
    sagemaker = session.client("sagemaker")
    v = find(sagemaker, args.prefix, args.version)
    if v.status == args.status:
        print(f"version {v.number} is {v.status} already: nothing to change", file=out)
        return 0
    request: dict[str, Any] = {"ModelPackageArn": v.arn, "ModelApprovalStatus": args.status}
    if args.reason:
        request["ApprovalDescription"] = args.reason
    changed_at = now()
    try:
        sagemaker.update_model_package(**request)
    except ClientError as error:
        raise _refuse(error, f"mark version {v.number} {args.status}") from None
    print(f"version {v.number}: {v.status} -> {args.status}", file=out)
    if getattr(args, "no_wait", False):
        print(
            "the release workflow runs on this change (Grocery-Release; notified on SNS); "
            "`python -m grocery models list` shows what is served",
            file=out,
        )
        return 0
    return follow(
        session, args.prefix, v.arn, args.status, changed_at, out=out, now=now, sleep=sleep
    )


def run_rollback(
    args: argparse.Namespace, *, session: boto3.Session | None = None, out: TextIO = sys.stdout
) -> int:
    session = session or aws_session()
    v = find(session.client("sagemaker"), args.prefix, args.version)
    if v.status != APPROVED:
        raise CommandError(
            f"version {v.number} is {v.status}: only Approved versions are released "
            f"(python -m grocery models approve {v.number})"
        )
    return release(session, args.prefix, v.arn, out=out)
