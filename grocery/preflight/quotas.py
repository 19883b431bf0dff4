"""SageMaker instance quotas for the configured instance types (Service Quotas).

SageMaker has one quota per instance type and use, named "<type> for training job usage",
"<type> for spot training job usage", "<type> for endpoint usage" and "<type> for
transform job usage" (https://docs.aws.amazon.com/general/latest/gr/sagemaker.html). A
fresh account often has 0 for GPU types such as ml.p3.2xlarge.

ListServiceQuotas returns applied values, and leaves out quotas that only have a default;
ListAWSDefaultServiceQuotas fills those in
(https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_ListServiceQuotas.html).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from grocery.aws import describe, is_setup_error
from grocery.preflight.checks import Check, Status
from grocery.preflight.plan import Plan

SERVICE_CODE = "sagemaker"


@dataclass(frozen=True)
class Need:
    """`count` instances of a quota are needed; below `blocker` it fails outright."""

    label: str
    quota_name: str
    count: int
    blocker: int
    why: str


def needs(plan: Plan) -> list[Need]:
    training_use = "spot training job" if plan.use_spot_training else "training job"
    # Blue/green: SageMaker starts the new fleet beside the old one and keeps both through
    # the baking period (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green.html).
    peak = 2 * plan.endpoint_max_instances
    return [
        Need(
            f"quota: training ({'spot' if plan.use_spot_training else 'on-demand'})",
            f"{plan.training_instance_type} for {training_use} usage",
            1,
            1,
            f"one training job (use_spot_training={str(plan.use_spot_training).lower()})",
        ),
        Need(
            "quota: endpoint",
            f"{plan.endpoint_instance_type} for endpoint usage",
            peak,
            plan.endpoint_min_instances,
            f"endpoint_min_instances={plan.endpoint_min_instances} to start; a promotion runs "
            f"two fleets, up to 2 x endpoint_max_instances = {peak}",
        ),
        Need(
            "quota: transform",
            f"{plan.transform_instance_type} for transform job usage",
            plan.transform_instance_count,
            plan.transform_instance_count,
            f"one batch transform job on transform_instance_count={plan.transform_instance_count}"
            " instances",
        ),
    ]


def _find(paginator, names: set[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for page in paginator.paginate(ServiceCode=SERVICE_CODE, PaginationConfig={"PageSize": 100}):
        for quota in page.get("Quotas", []):
            if quota.get("QuotaName") in names:
                found.setdefault(quota["QuotaName"], quota)
        if names <= found.keys():
            break  # the list has thousands of entries: stop once every one is found
    return found


def lookup(client, names: Iterable[str]) -> dict[str, dict]:
    """{quota name: quota} from the applied values, then the defaults for the rest."""
    wanted = set(names)
    found = _find(client.get_paginator("list_service_quotas"), wanted)
    missing = wanted - found.keys()
    if missing:
        found.update(_find(client.get_paginator("list_aws_default_service_quotas"), missing))
    return found


def request_command(quota: dict, count: int, region: str) -> str:
    return (
        f"aws service-quotas request-service-quota-increase --service-code {SERVICE_CODE} "
        f"--quota-code {quota['QuotaCode']} --desired-value {count} --region {region}"
    )


def judge(need: Need, quota: dict | None, region: str) -> Check:
    if quota is None:
        return Check(
            need.label,
            Status.BLOCKER,
            f"no quota '{need.quota_name}' in {region}: the instance type is not offered for "
            "this use there; choose another type or region",
        )
    value = int(quota.get("Value", 0))
    shown = f"'{need.quota_name}' is {value}, {need.why}"
    if value >= need.count:
        return Check(need.label, Status.OK, shown)
    status = Status.BLOCKER if value < need.blocker else Status.WARNING
    return Check(
        need.label,
        status,
        f"{shown}: request {need.count} in Service Quotas",
        request_command(quota, need.count, region),
    )


def quota_checks(client, plan: Plan, region: str) -> list[Check]:
    wanted = needs(plan)
    try:
        found = lookup(client, {need.quota_name for need in wanted})
    except ClientError as error:
        if is_setup_error(error) and "AccessDenied" not in describe(error):
            raise
        return [
            Check(
                need.label,
                Status.WARNING,
                f"cannot read Service Quotas ({describe(error)}); check '{need.quota_name}' "
                "yourself",
            )
            for need in wanted
        ]
    return [judge(need, found.get(need.quota_name), region) for need in wanted]
