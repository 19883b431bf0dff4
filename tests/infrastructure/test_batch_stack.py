"""Batch stack: the upload rule, the queues, the trigger's batching, the state machine and its IAM."""

from __future__ import annotations

import json
import re

import botocore.session
import pytest
from aws_cdk.assertions import Match, Template

from grocery import batch as batch_cli
from grocery_common import batch_layout
from stacks import names
from stacks.batch import BATCHES_PREFIX
from stacks.batch.transform import batch_model_name, transform_parameters
from stacks.config import Config
from stacks.instance_storage import has_instance_storage
from tests.infrastructure.conftest import build_app
from tests.support.state_machines import (
    asl_validation_errors,
    iter_states,
    sagemaker_parameter_errors,
    state_machine_definitions,
)


@pytest.fixture(scope="module")
def template(template_of) -> Template:
    return template_of("batch")


def _only(template: Template, kind: str) -> dict:
    (resource,) = template.find_resources(kind).values()
    return resource["Properties"]


def _definition(template: Template) -> dict:
    (definition,) = state_machine_definitions(template.to_json()).values()
    return definition


def _transform(definition: dict) -> dict:
    (state,) = [
        s for _, s in iter_states(definition) if "createTransformJob" in s.get("Resource", "")
    ]
    return state


def _statements(template: Template, role_prefix: str) -> list[dict]:
    policies = template.find_resources("AWS::IAM::Policy")
    found = []
    for policy in policies.values():
        roles = json.dumps(policy["Properties"].get("Roles", []))
        if role_prefix in roles:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def _actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def _grants(statements: list[dict]) -> dict[str, set[str]]:
    """{action: the resources' ARN tails after the account}, over Allow statements."""
    grants: dict[str, set[str]] = {}
    for statement in statements:
        resources = statement["Resource"]
        for resource in resources if isinstance(resources, list) else [resources]:
            tail = (
                resource["Fn::Join"][1][-1]
                if isinstance(resource, dict) and "Fn::Join" in resource
                else json.dumps(resource)
            )
            for action in _actions(statement):
                grants.setdefault(action, set()).add(tail)
    return grants


def test_layout_of_the_lambdas_matches_the_stacks():
    assert (
        batch_layout.INCOMING_PREFIX,
        batch_layout.PREDICTIONS_PREFIX,
        batch_layout.RESULTS_PREFIX,
        batch_layout.BATCHES_PREFIX,
    ) == (names.INCOMING_PREFIX, names.PREDICTIONS_PREFIX, names.RESULTS_PREFIX, BATCHES_PREFIX)


class TestIntake:
    def test_rule_listens_to_object_created_under_incoming_of_the_inference_bucket_only(
        self, template
    ):
        pattern = _only(template, "AWS::Events::Rule")["EventPattern"]
        assert pattern["source"] == ["aws.s3"]
        assert pattern["detail-type"] == ["Object Created"]
        assert pattern["detail"]["object"] == {"key": [{"prefix": "incoming/"}]}
        (bucket,) = pattern["detail"]["bucket"]["name"]
        assert "Inference" in bucket["Fn::ImportValue"]

    def test_rule_delivers_to_the_queue_with_the_dlq_for_failed_deliveries(self, template):
        (target,) = _only(template, "AWS::Events::Rule")["Targets"]
        assert target["Arn"]["Fn::GetAtt"][0].startswith("IntakeQueue")
        assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0].startswith("IntakeDeadLetter")

    def test_queues_are_kms_encrypted_and_the_queue_redrives_to_the_dlq(self, template):
        queues = template.find_resources("AWS::SQS::Queue")
        assert len(queues) == 2
        for queue in queues.values():
            assert "DataKey" in queue["Properties"]["KmsMasterKeyId"]["Fn::ImportValue"]
        (main,) = [q for lid, q in queues.items() if lid.startswith("IntakeQueue")]
        assert main["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 5
        # 6 x the trigger's 120 s timeout + the 300 s batching window.
        assert main["Properties"]["VisibilityTimeout"] == 1020

    def test_queue_policies_deny_plain_http_and_admit_only_this_rule(self, template):
        policies = template.find_resources("AWS::SQS::QueuePolicy")
        assert len(policies) == 2
        for policy in policies.values():
            statements = policy["Properties"]["PolicyDocument"]["Statement"]
            assert any(
                s["Effect"] == "Deny"
                and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                for s in statements
            )
            (allow,) = [s for s in statements if s["Effect"] == "Allow"]
            assert allow["Principal"] == {"Service": "events.amazonaws.com"}
            assert allow["Action"] == "sqs:SendMessage"
            assert allow["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0].startswith(
                "IntakeUploadsRule"
            )

    def test_event_source_batches_by_window_and_size_and_reports_item_failures(self, template):
        template.has_resource_properties(
            "AWS::Lambda::EventSourceMapping",
            {
                "BatchSize": 500,
                "MaximumBatchingWindowInSeconds": 300,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "ScalingConfig": {"MaximumConcurrency": 2},
            },
        )

    def test_window_and_size_come_from_configuration(self):
        stacks = build_app({"batch_window_seconds": "60", "batch_max_images": "100"})
        Template.from_stack(stacks.batch).has_resource_properties(
            "AWS::Lambda::EventSourceMapping",
            {"BatchSize": 100, "MaximumBatchingWindowInSeconds": 60},
        )

    def test_dead_letter_alarm_notifies_the_topic(self, template):
        alarms = template.find_resources("AWS::CloudWatch::Alarm")
        (dlq_alarm,) = [a for lid, a in alarms.items() if lid.startswith("IntakeDeadLetterAlarm")]
        props = dlq_alarm["Properties"]
        assert (props["MetricName"], props["Threshold"]) == (
            "ApproximateNumberOfMessagesVisible",
            1,
        )
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert props["Dimensions"][0]["Value"]["Fn::GetAtt"][0].startswith("IntakeDeadLetterQueue")
        for alarm in alarms.values():
            (action,) = alarm["Properties"]["AlarmActions"]
            assert "Notifications" in action["Fn::ImportValue"]

    def test_trigger_reads_uploads_writes_batch_records_and_starts_the_state_machine(
        self, template
    ):
        statements = _statements(template, "IntakeTriggerRole")
        actions = {
            a
            for s in statements
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        }
        assert {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "states:StartExecution"} <= actions
        put = next(s for s in statements if s["Action"] == "s3:PutObject")
        assert put["Resource"]["Fn::Join"][1][-1] == "/batches/*"
        assert not any(a.endswith(":*") for a in actions)


class TestStateMachine:
    def test_logs_everything_to_an_encrypted_group_and_traces(self, template):
        props = _only(template, "AWS::StepFunctions::StateMachine")
        assert props["TracingConfiguration"] == {"Enabled": True}
        assert props["LoggingConfiguration"]["Level"] == "ALL"
        assert props["LoggingConfiguration"]["IncludeExecutionData"] is True
        template.has_resource_properties(
            "AWS::Logs::LogGroup",
            {"KmsKeyId": {"Fn::ImportValue": Match.string_like_regexp("DataKey")}},
        )

    def test_definition_passes_asl_validator(self, template, tmp_path):
        assert asl_validation_errors(_definition(template), tmp_path) == ""

    def test_transform_parameters_match_the_sagemaker_api(self, template):
        transform = _transform(_definition(template))
        assert sagemaker_parameter_errors("CreateTransformJob", transform["Parameters"]) == ""

    def test_transform_settings_of_the_algorithm(self, template):
        transform = _transform(_definition(template))
        assert transform["Resource"] == "arn:aws:states:::sagemaker:createTransformJob.sync"
        p = transform["Parameters"]
        assert (p["BatchStrategy"], p["MaxPayloadInMB"]) == ("SingleRecord", 6)
        assert p["TransformInput"]["ContentType"] == "application/x-image"
        assert p["TransformInput"]["SplitType"] == "None"
        assert p["TransformInput"]["DataSource"]["S3DataSource"] == {
            "S3DataType": "ManifestFile",
            "S3Uri.$": "$.manifest_uri",
        }
        # The run's own Model (the CreateModel state's), named after the execution.
        assert p["ModelName.$"] == "States.Format('grocery-b-{}', $$.Execution.Name)"
        assert p["TransformResources"]["InstanceType"] == "ml.m4.xlarge"
        assert p["TransformResources"]["VolumeKmsKeyId"] == p["TransformOutput"]["KmsKeyId"]
        assert "ImportValue" in p["TransformOutput"]["KmsKeyId"]
        # Unique per execution and per attempt; output per batch and run.
        assert "$$.Execution.Name" in p["TransformJobName.$"]
        assert "$$.State.RetryCount" in p["TransformJobName.$"]
        assert p["TransformOutput"]["S3OutputPath.$"] == (
            "States.Format('s3://{}/{}{}/', $.bucket, $.predictions_prefix, $$.Execution.Name)"
        )

    def test_scale_comes_from_configuration_and_fits_the_api(self):
        default = transform_parameters(Config(), "arn:aws:kms:us-east-1:123456789012:key/k")
        assert default["TransformResources"]["InstanceCount"] == 1
        assert "MaxConcurrentTransforms" not in default  # the algorithm's own default
        scaled = transform_parameters(
            Config(transform_instance_count=3, transform_max_concurrent=16),
            "arn:aws:kms:us-east-1:123456789012:key/k",
        )
        assert scaled["TransformResources"]["InstanceCount"] == 3
        # 16 x 6 MB in flight per instance: SageMaker's 100 MB limit.
        assert scaled["MaxConcurrentTransforms"] * scaled["MaxPayloadInMB"] <= 100
        assert sagemaker_parameter_errors("CreateTransformJob", scaled) == ""

    @pytest.mark.parametrize(
        ("instance", "volume_key"), [("ml.c5.2xlarge", True), ("ml.m5d.xlarge", False)]
    )
    def test_instance_type_comes_from_configuration(self, instance, volume_key):
        template = Template.from_stack(build_app({"transform_instance_type": instance}).batch)
        resources = _transform(_definition(template))["Parameters"]["TransformResources"]
        assert resources["InstanceType"] == instance
        assert ("VolumeKmsKeyId" in resources) is volume_key

    @pytest.mark.parametrize(
        ("instance", "local"),
        [
            ("ml.m4.xlarge", False),
            ("ml.c5.xlarge", False),
            ("ml.p3.2xlarge", False),
            ("ml.m5d.large", True),
            ("ml.c5d.xlarge", True),
            ("ml.g4dn.xlarge", True),
            ("ml.g5.xlarge", True),
            ("ml.p3dn.24xlarge", True),
            ("ml.p4d.24xlarge", True),
            ("ml.g6.xlarge", True),
        ],
    )
    def test_local_storage_families(self, instance, local):
        assert has_instance_storage(instance) is local

    def test_the_release_record_is_read_from_ssm_at_run_time(self, template):
        definition = _definition(template)
        reads = {
            s["Parameters"]["Name"]: s
            for _, s in iter_states(definition)
            if s.get("Resource") == "arn:aws:states:::aws-sdk:ssm:getParameter"
        }
        # Not the approved-model pointer, which names the serving stack's Model.
        assert set(reads) == {
            names.release_parameter("grocery", "model-package-arn"),
            names.release_parameter("grocery", "labels-uri"),
        }
        choice = definition["States"]["Released?"]
        (not_released,) = choice["Choices"]
        assert {c["Variable"] for c in not_released["Or"]} == {
            "$.model.package_arn",
            "$.labels.uri",
        }
        assert {c["StringEquals"] for c in not_released["Or"]} == {names.NO_APPROVED_MODEL}
        assert definition["States"]["NotReleased?"]["Default"] == "NoReleasedModel"
        cause = definition["States"]["NoReleasedModel"]["Result"]["Cause"]
        assert cause.startswith(
            "no released model yet: approve a version (python -m grocery models approve N)"
        )

    def test_version_name_comes_from_the_package_arn(self, template):
        name = _definition(template)["States"]["NameVersion"]["Parameters"]["name.$"]
        parts = "States.StringSplit($.model.package_arn, '/')"
        assert name == (
            f"States.Format('{{}}-v{{}}', States.ArrayGetItem({parts}, 1), "
            f"States.ArrayGetItem({parts}, 2))"
        )

    def test_every_failure_is_recorded_notified_and_fails_with_its_cause(self, template):
        states = _definition(template)["States"]
        assert states["Failed"] == {
            "Type": "Fail",
            "ErrorPath": "$.error.Error",
            "CausePath": "$.error.Cause",
        }
        for name in ("ReadPackageArn", "ReadLabelsUri", "CreateModel", "Decode"):
            assert states[name]["Catch"][-1]["Next"] == "SummariseFailure"
        # The Model goes first, then decode keeps what was classified.
        assert states["Transform"]["Catch"][0]["Next"] == "DeleteModel"
        assert states["RecordFailure"]["Next"] == "NotifyFailure"
        assert states["NotifyFailure"]["Next"] == "Failed"
        assert "python -m grocery batch rerun" in states["NotifyFailure"]["Parameters"]["Message.$"]

    def test_role_holds_exactly_what_transform_sync_and_the_run_model_need(self, template):
        statements = _statements(template, "WorkflowStateMachineRole")
        grants = _grants(statements)
        sagemaker = {a: r for a, r in grants.items() if a.startswith("sagemaker:")}
        jobs, models = {":transform-job/grocery-b-*"}, {":model/grocery-b-*"}
        assert sagemaker == {
            "sagemaker:CreateTransformJob": jobs,
            "sagemaker:DescribeTransformJob": jobs,
            "sagemaker:StopTransformJob": jobs,
            "sagemaker:ListTags": jobs,
            "sagemaker:AddTags": jobs | models,
            "sagemaker:CreateModel": models,
            "sagemaker:DeleteModel": models,
            # CreateModel reads the released version: this deployment's group only.
            "sagemaker:DescribeModelPackage": {":model-package/grocery-classifier/*"},
        }
        # The release record only: not the approved-model pointer.
        assert grants["ssm:GetParameter"] == {
            ":parameter/grocery/release/model-package-arn",
            ":parameter/grocery/release/labels-uri",
        }
        (rule,) = [s for s in statements if "events:PutRule" in s["Action"]]
        assert rule["Resource"]["Fn::Join"][1][-1] == (
            ":rule/StepFunctionsGetEventsForSageMakerTransformJobsRule"
        )
        actions = json.dumps([s["Action"] for s in statements])
        assert '"*"' not in actions
        assert ':*"' not in actions

    def test_role_passes_only_the_model_role_and_only_to_sagemaker(self, template):
        (passing,) = [
            s
            for s in _statements(template, "WorkflowStateMachineRole")
            if "iam:PassRole" in _actions(s)
        ]
        assert _actions(passing) == ["iam:PassRole"]
        assert "ModelRole" in passing["Resource"]["Fn::ImportValue"]
        assert passing["Condition"] == {
            "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
        }

    def test_model_role_may_read_the_manifests(self, template):
        (policy,) = [
            p
            for lid, p in template.find_resources("AWS::IAM::Policy").items()
            if lid.startswith("ModelReadsManifests")
        ]
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Action"] == "s3:GetObject"
        assert statement["Resource"]["Fn::Join"][1][-1] == "/batches/*/manifest.json"


def test_outputs_for_the_batch_command(template, template_of):
    outputs = template.to_json()["Outputs"]
    assert {"StateMachineArn", "QueueUrl", "DeadLetterQueueUrl"} <= set(outputs)
    # The bucket comes from the storage stack (re-exporting an import is cfn-lint W6001).
    assert "InferenceBucketName" in template_of("storage").to_json()["Outputs"]


def test_dashboard_handles(stacks):
    batch = stacks.batch
    for name in (
        "state_machine",
        "queue",
        "dead_letter_queue",
        "trigger_function",
        "decode_function",
    ):
        assert getattr(batch, name) is not None
    assert batch.trigger_function.function_arn != batch.decode_function.function_arn


class TestRunModel:
    """Each run's own Model: from the released package, deleted on every path after the job."""

    @staticmethod
    def _states(template: Template) -> dict:
        return _definition(template)["States"]

    def test_created_from_the_released_package_with_network_isolation(self, template):
        state = self._states(template)["CreateModel"]
        assert state["Resource"] == "arn:aws:states:::sagemaker:createModel"
        p = state["Parameters"]
        assert p["ModelName.$"] == "States.Format('grocery-b-{}', $$.Execution.Name)"
        assert p["PrimaryContainer"] == {"ModelPackageName.$": "$.model.package_arn"}
        # The serving Model's role (training stack's ModelRole), imported.
        parts = _only(template, "AWS::StepFunctions::StateMachine")["DefinitionString"]["Fn::Join"][
            1
        ]
        (after,) = [
            parts[i + 1]
            for i, part in enumerate(parts)
            if str(part).endswith('"ExecutionRoleArn":"')
        ]
        assert "ModelRole" in after["Fn::ImportValue"]
        assert p["EnableNetworkIsolation"] is True
        assert {"Key": "batch-id", "Value.$": "$.batch_id"} in p["Tags"]
        assert state["Next"] == "Transform"
        assert sagemaker_parameter_errors("CreateModel", p) == ""

    def test_deleted_by_the_name_it_was_created_with(self, template):
        states = self._states(template)
        delete = states["DeleteModel"]
        assert delete["Resource"] == "arn:aws:states:::aws-sdk:sagemaker:deleteModel"
        name = states["CreateModel"]["Parameters"]["ModelName.$"]
        assert delete["Parameters"] == {"ModelName.$": name}
        assert _transform(_definition(template))["Parameters"]["ModelName.$"] == name
        assert sagemaker_parameter_errors("DeleteModel", delete["Parameters"]) == ""

    def test_names_fit_sagemaker_for_the_longest_prefix_and_rerun(self):
        shape = (
            botocore.session.get_session()
            .get_service_model("sagemaker")
            .operation_model("CreateModel")
            .input_shape.members["ModelName"]
        )
        execution = batch_cli.rerun_execution_name("20261125-132557-0123456789ab", now=2**32)
        expression = batch_model_name(Config(prefix="p" * 20))
        name = expression.split("'")[1].replace("{}", execution)
        assert len(name) <= shape.metadata["max"] == 63
        assert re.fullmatch(shape.metadata["pattern"].strip("^$"), name)

    def test_every_path_from_the_created_model_to_an_end_deletes_it(self, template):
        states = self._states(template)
        create, transform = states["CreateModel"], states["Transform"]
        # A failed CreateModel created nothing; once it succeeded, the transform is next,
        # and every way out of the transform (done, failed, timed out) is DeleteModel.
        assert create["Next"] == "Transform"
        assert [c["Next"] for c in create["Catch"]] == ["SummariseFailure"]
        assert transform["Next"] == "DeleteModel"
        assert [(c["ErrorEquals"], c["Next"]) for c in transform["Catch"]] == [
            (["States.ALL"], "DeleteModel")
        ]
        delete = states["DeleteModel"]
        assert delete["Next"] == "Decode"
        # A failed delete still decodes (the results stay), its error kept apart.
        assert [(c["ErrorEquals"], c["Next"], c["ResultPath"]) for c in delete["Catch"]] == [
            (["States.ALL"], "Decode", "$.model_cleanup_error")
        ]

    def test_create_and_delete_retry_throttling(self, template):
        states = self._states(template)
        for name in ("CreateModel", "DeleteModel"):
            (retry,) = states[name]["Retry"]
            assert "SageMaker.ThrottlingException" in retry["ErrorEquals"]
            assert retry["MaxAttempts"] == 5

    def test_no_model_is_created_for_a_batch_with_nothing_to_classify(self, template):
        states = self._states(template)
        for choice in ("AnyImages?", "NotReleased?"):
            (empty,) = states[choice]["Choices"]
            assert (empty["Variable"], empty["NumericEquals"], empty["Next"]) == (
                "$.image_count",
                0,
                "Decode",
            )
        assert states["AnyImages?"]["Default"] == "CreateModel"
