"""`python -m grocery preflight`: every check against the AWS answers it reads (Stubber)."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json

import boto3
import pytest
from botocore.exceptions import NoCredentialsError
from botocore.stub import Stubber

import grocery.__main__ as cli
from grocery.errors import CommandError
from grocery.preflight import checks, run
from grocery.preflight.checks import Status
from grocery.preflight.plan import Plan, load_plan

ACCOUNT = "123456789012"
REGION = "eu-west-1"
LAYER = "/aws/service/powertools/python/arm64/python3.14/3.37.0"
LAYER_ARN = f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3:1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/apigw-logs"
CALLER = {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/me", "UserId": "AIDEXAMPLE"}

PLAN = Plan(
    prefix="grocery",
    region="",
    account="",
    training_instance_type="ml.p3.2xlarge",
    use_spot_training=True,
    endpoint_instance_type="ml.m4.xlarge",
    endpoint_min_instances=1,
    endpoint_max_instances=2,
    transform_instance_type="ml.m4.xlarge",
    bootstrap_qualifier="hnb659fds",
    powertools_parameter=LAYER,
    algorithm_regions=frozenset({"us-east-1", REGION}),
)
SPOT = "ml.p3.2xlarge for spot training job usage"
ON_DEMAND = "ml.p3.2xlarge for training job usage"
ENDPOINT = "ml.m4.xlarge for endpoint usage"
TRANSFORM = "ml.m4.xlarge for transform job usage"


def quota(name: str, value: float, code: str = "L-00000000") -> dict:
    return {"ServiceCode": "sagemaker", "QuotaName": name, "QuotaCode": code, "Value": value}


class Account:
    """A boto3 session whose clients answer from Stubbers, queued per test."""

    def __init__(self, region: str = REGION) -> None:
        self.region_name = region
        self.clients = {
            name: boto3.client(name, region_name=region)
            for name in ("sts", "ssm", "cloudformation", "apigateway", "service-quotas")
        }
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}

    def client(self, name: str):
        return self.clients[name]

    def answer(self, service: str, operation: str, response: dict, params=None) -> None:
        self.stubs[service].add_response(operation, response, params)

    def refuse(self, service: str, operation: str, code: str, message: str = "no") -> None:
        self.stubs[service].add_client_error(operation, code, message)

    def healthy(
        self,
        *,
        bootstrap: str | None = "21",
        layer: bool = True,
        role: str = "",
        quotas: dict[str, float] | None = None,
        defaults: dict[str, float] | None = None,
    ) -> Account:
        """Queues the answers of one preflight run, in the order it asks."""
        self.answer(
            "sts",
            "get_caller_identity",
            CALLER,
        )
        version = "/cdk-bootstrap/hnb659fds/version"
        if bootstrap is None:
            self.refuse("ssm", "get_parameter", "ParameterNotFound")
            self.refuse("cloudformation", "describe_stacks", "ValidationError", "does not exist")
        else:
            self.answer("ssm", "get_parameter", parameter(version, bootstrap), {"Name": version})
        if layer:
            self.answer("ssm", "get_parameter", parameter(LAYER, LAYER_ARN), {"Name": LAYER})
        else:
            self.refuse("ssm", "get_parameter", "ParameterNotFound")
        self.answer("apigateway", "get_account", {"cloudwatchRoleArn": role} if role else {})
        applied = {SPOT: 1, ENDPOINT: 4, TRANSFORM: 1} if quotas is None else quotas
        self.answer(
            "service-quotas",
            "list_service_quotas",
            {"Quotas": [quota(name, value) for name, value in applied.items()]},
            {"ServiceCode": "sagemaker", "MaxResults": 100},
        )
        if defaults is not None:
            self.answer(
                "service-quotas",
                "list_aws_default_service_quotas",
                {"Quotas": [quota(name, value, "L-DEFAULT1") for name, value in defaults.items()]},
                {"ServiceCode": "sagemaker", "MaxResults": 100},
            )
        return self

    def __enter__(self) -> Account:
        for stub in self.stubs.values():
            stub.activate()
        return self

    def __exit__(self, *exc) -> None:
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()
            stub.deactivate()


def parameter(name: str, value: str) -> dict:
    return {"Parameter": {"Name": name, "Type": "String", "Value": value}}


def preflight(account: Account, plan: Plan = PLAN) -> tuple[int, str]:
    out = io.StringIO()
    with account:
        code = run(argparse.Namespace(context=[]), session=account, plan=plan, out=out)
    return code, out.getvalue()


def row(text: str, check: str) -> str:
    (line,) = [line for line in text.splitlines() if line.startswith(check)]
    return line


@pytest.fixture(autouse=True)
def _credentials(aws_credentials):
    """Stubbed clients still sign their requests: fake credentials, never a real account."""


def test_a_ready_account_passes_with_one_table(capsys):
    code, text = preflight(Account().healthy())
    assert code == 0
    assert text.splitlines()[0] == f"preflight: account {ACCOUNT}, region {REGION}, prefix grocery"
    assert text.splitlines()[1].split() == ["CHECK", "STATUS", "DETAIL"]
    assert row(text, "AWS account").split()[2] == "ok"
    assert "version 21 (/cdk-bootstrap/hnb659fds/version)" in row(text, "CDK bootstrap")
    assert LAYER_ARN in row(text, "Powertools layer")
    assert row(text, "API Gateway").split()[4] == "ok"
    assert "Grocery-Storage sets it" in row(text, "API Gateway")
    assert f"'{SPOT}' is 1" in row(text, "quota: training (spot)")
    assert f"'{ENDPOINT}' is 4" in row(text, "quota: endpoint")
    assert f"'{TRANSFORM}' is 1" in row(text, "quota: transform")
    assert text.splitlines()[-1] == "ready: no blockers, no warnings"
    assert "To fix:" not in text


def test_fresh_account_zero_gpu_quota_is_a_blocker_with_the_request_command():
    code, text = preflight(Account().healthy(quotas={SPOT: 0, ENDPOINT: 4, TRANSFORM: 1}))
    assert code == 1
    line = row(text, "quota: training (spot)")
    assert "BLOCKER" in line
    assert f"'{SPOT}' is 0" in line
    assert "request 1 in Service Quotas" in line
    assert (
        "aws service-quotas request-service-quota-increase --service-code sagemaker "
        f"--quota-code L-00000000 --desired-value 1 --region {REGION}"
    ) in text
    assert text.splitlines()[-1].startswith("1 blocker(s), 0 warning(s): fix the blockers")


def test_on_demand_training_checks_the_on_demand_quota():
    plan = dataclasses.replace(PLAN, use_spot_training=False)
    account = Account().healthy(quotas={ON_DEMAND: 2, ENDPOINT: 4, TRANSFORM: 1})
    code, text = preflight(account, plan)
    assert code == 0
    assert f"'{ON_DEMAND}' is 2" in row(text, "quota: training (on-demand)")


def test_endpoint_quota_below_a_promotion_at_full_scale_is_a_warning():
    code, text = preflight(Account().healthy(quotas={SPOT: 1, ENDPOINT: 2, TRANSFORM: 1}))
    assert code == 0
    line = row(text, "quota: endpoint")
    assert "warning" in line
    assert "up to 2 x endpoint_max_instances = 4" in line
    assert "--desired-value 4" in text
    assert text.splitlines()[-1] == "no blockers, 1 warning(s): read them before `make deploy`"


def test_transform_on_several_instances_needs_that_many():
    plan = dataclasses.replace(PLAN, transform_instance_count=3)
    code, text = preflight(Account().healthy(quotas={SPOT: 1, ENDPOINT: 4, TRANSFORM: 2}), plan)
    assert code == 1
    line = row(text, "quota: transform")
    assert "BLOCKER" in line
    assert "transform_instance_count=3" in line
    assert "--desired-value 3" in text


def test_endpoint_quota_below_the_minimum_is_a_blocker():
    code, text = preflight(Account().healthy(quotas={SPOT: 1, ENDPOINT: 0, TRANSFORM: 1}))
    assert code == 1
    assert "BLOCKER" in row(text, "quota: endpoint")


def test_quotas_without_an_applied_value_come_from_the_defaults():
    account = Account().healthy(quotas={SPOT: 1}, defaults={ENDPOINT: 8, TRANSFORM: 0})
    code, text = preflight(account)
    assert code == 1
    assert f"'{ENDPOINT}' is 8" in row(text, "quota: endpoint")
    assert "--quota-code L-DEFAULT1 --desired-value 1" in text


def test_an_instance_type_without_a_quota_in_the_region_is_a_blocker():
    account = Account().healthy(quotas={SPOT: 1, ENDPOINT: 4}, defaults={})
    code, text = preflight(account)
    assert code == 1
    assert f"no quota '{TRANSFORM}' in {REGION}" in row(text, "quota: transform")


def test_not_bootstrapped_is_a_blocker_with_the_bootstrap_command():
    code, text = preflight(Account().healthy(bootstrap=None))
    assert code == 1
    line = row(text, "CDK bootstrap")
    assert "BLOCKER" in line
    assert "not bootstrapped (no CDKToolkit stack, no /cdk-bootstrap/hnb659fds/version)" in line
    assert f"npx cdk bootstrap aws://{ACCOUNT}/{REGION}" in text


def test_an_old_bootstrap_is_a_blocker():
    code, text = preflight(Account().healthy(bootstrap="5"))
    assert code == 1
    assert "is 5, the app needs version 6 or later" in row(text, "CDK bootstrap")


def test_toolkit_stack_without_the_default_qualifier_parameter():
    account = Account()
    account.refuse("ssm", "get_parameter", "ParameterNotFound")
    account.answer(
        "cloudformation",
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "CDKToolkit",
                    "CreationTime": "2026-01-01T00:00:00Z",
                    "StackStatus": "CREATE_COMPLETE",
                }
            ]
        },
    )
    with account:
        check = checks.bootstrap(
            account.client("ssm"), account.client("cloudformation"), PLAN, ACCOUNT, REGION
        )
    assert check.status is Status.BLOCKER
    assert "CDKToolkit is CREATE_COMPLETE but /cdk-bootstrap/hnb659fds/version" in check.detail


def test_missing_powertools_layer_is_a_blocker():
    code, text = preflight(Account().healthy(layer=False))
    assert code == 1
    assert f"{LAYER} is not published in {REGION}" in row(text, "Powertools layer")


def test_api_gateway_role_not_set_is_set_by_the_storage_stack():
    code, text = preflight(Account().healthy(role=""))
    assert code == 0
    line = row(text, "API Gateway logging role")
    assert "ok" in line
    assert "Grocery-Storage sets it" in line


def test_another_api_gateway_role_would_be_replaced_is_a_warning():
    code, text = preflight(Account().healthy(role=ROLE))
    assert code == 0
    line = row(text, "API Gateway logging role")
    assert "warning" in line
    assert f"this account and region use {ROLE}" in line
    assert "-c api_gateway_logging_role=existing" in line


def test_our_own_api_gateway_role_is_fine():
    ours = f"arn:aws:iam::{ACCOUNT}:role/Grocery-Storage-ApiGatewayLoggingRole1A2B3C-XYZ"
    code, text = preflight(Account().healthy(role=ours))
    assert code == 0
    assert "ok" in row(text, "API Gateway logging role")


def test_existing_mode_without_a_role_is_a_blocker():
    plan = dataclasses.replace(PLAN, api_gateway_logging_role="existing")
    code, text = preflight(Account().healthy(role=""), plan)
    assert code == 1
    line = row(text, "API Gateway logging role")
    assert "BLOCKER" in line
    assert "-c api_gateway_logging_role=create" in line


def test_region_without_the_algorithm_is_a_blocker():
    plan = dataclasses.replace(PLAN, algorithm_regions=frozenset({"us-east-1"}))
    code, text = preflight(Account().healthy(), plan)
    assert code == 1
    assert f"not available in {REGION}: set AWS_REGION" in row(text, "region has the algorithm")


def test_credentials_for_another_account_than_configured_are_a_blocker():
    plan = dataclasses.replace(PLAN, account="999999999999")
    code, text = preflight(Account().healthy(), plan)
    assert code == 1
    assert f"your credentials are for {ACCOUNT}, the configuration deploys to 999999999999" in (
        row(text, "AWS account")
    )


def test_access_denied_is_a_warning_not_a_pass():
    account = Account()
    account.answer("sts", "get_caller_identity", CALLER)
    account.refuse("ssm", "get_parameter", "AccessDeniedException", "not authorized")
    account.answer("ssm", "get_parameter", parameter(LAYER, LAYER_ARN))
    account.answer("apigateway", "get_account", {})
    account.refuse("service-quotas", "list_service_quotas", "AccessDeniedException", "nope")
    code, text = preflight(account)
    assert code == 0
    assert "warning" in row(text, "CDK bootstrap")
    assert "cannot check (AccessDeniedException: not authorized)" in row(text, "CDK bootstrap")
    assert f"cannot read Service Quotas (AccessDeniedException: nope); check '{SPOT}'" in row(
        text, "quota: training (spot)"
    )
    assert text.splitlines()[-1] == "no blockers, 4 warning(s): read them before `make deploy`"


def test_expired_credentials_stop_preflight_with_one_line(monkeypatch, capsys):
    account = Account()
    account.answer("sts", "get_caller_identity", CALLER)
    account.refuse("ssm", "get_parameter", "ExpiredTokenException", "The security token expired")
    monkeypatch.setattr("grocery.preflight.load_plan", lambda _pairs: PLAN)
    monkeypatch.setattr("grocery.preflight.aws_session", lambda region=None: account)
    account.stubs["ssm"].activate()
    account.stubs["sts"].activate()
    assert cli.main(["preflight"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: AWS refused the request: ")
    assert "ExpiredTokenException" in err
    assert err.count("\n") == 1


def test_without_credentials_it_is_one_line_exit_2(monkeypatch, capsys):
    monkeypatch.setattr("grocery.preflight.load_plan", lambda _pairs: PLAN)

    class NoCredentials(Account):
        def client(self, name):
            raise NoCredentialsError()

    monkeypatch.setattr("grocery.preflight.aws_session", lambda region=None: NoCredentials())
    assert cli.main(["preflight"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: Unable to locate credentials: set AWS_REGION (or AWS_DEFAULT_REGION) and AWS "
        "credentials (aws configure, or AWS_PROFILE) for the account the stacks are deployed in.\n"
    )


def test_the_configured_region_is_the_one_checked(monkeypatch):
    asked = {}
    plan = dataclasses.replace(PLAN, region="us-east-1")
    monkeypatch.setattr("grocery.preflight.load_plan", lambda _pairs: plan)

    def session(region=None):
        asked["region"] = region
        raise CommandError("stop here")

    monkeypatch.setattr("grocery.preflight.aws_session", session)
    assert cli.main(["preflight"]) == 2
    assert asked["region"] == "us-east-1"


class TestConfiguration:
    """The plan is the app's own Config: cdk.json context, then -c, validated before AWS."""

    def test_defaults_from_cdk_json_and_overrides_from_c(self):
        plan = load_plan(
            [
                "use_spot_training=false",
                "transform_instance_type=ml.c5.xlarge",
                "transform_instance_count=2",
            ]
        )
        assert plan.transform_instance_count == 2
        assert plan.use_spot_training is False
        assert plan.transform_instance_type == "ml.c5.xlarge"
        assert plan.training_instance_type == "ml.p3.2xlarge"  # cdk.json
        assert (plan.endpoint_min_instances, plan.endpoint_max_instances) == (1, 2)
        assert plan.bootstrap_qualifier == "hnb659fds"
        assert plan.powertools_parameter.startswith("/aws/service/powertools/python/arm64/")
        assert "us-east-1" in plan.algorithm_regions

    def test_a_bad_value_names_the_key_before_aws_is_asked(self, monkeypatch, capsys):
        def no_aws(region=None):
            raise AssertionError("AWS reached")

        monkeypatch.setattr("grocery.preflight.aws_session", no_aws)
        assert cli.main(["preflight", "-c", "endpoint_min_instances=0"]) == 2
        err = capsys.readouterr().err
        assert "config key 'endpoint_min_instances' has invalid value 0" in err
        assert err.count("\n") == 1

    def test_a_pair_without_equals_is_refused(self):
        with pytest.raises(CommandError, match=r"-c 'spot': use -c KEY=VALUE"):
            load_plan(["spot"])

    def test_a_broken_cdk_json_names_the_file(self, tmp_path):
        broken = tmp_path / "cdk.json"
        broken.write_text("{")
        with pytest.raises(CommandError, match=r"cdk\.json is not valid JSON"):
            load_plan([], cdk_json=broken)

    def test_a_custom_bootstrap_qualifier_is_read_from_the_context(self, tmp_path):
        cdk_json = tmp_path / "cdk.json"
        cdk_json.write_text(json.dumps({"context": {"@aws-cdk/core:bootstrapQualifier": "abc"}}))
        assert load_plan([], cdk_json=cdk_json).bootstrap_qualifier == "abc"
