"""Grocery-Training: the rendered state machine definition, its SageMaker calls, and IAM."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from stacks.config import Config
from stacks.names import NO_APPROVED_MODEL, approved_model_parameter, release_parameter
from stacks.training.names import CHANNELS, job_name_prefix
from tests.infrastructure.conftest import build_app
from tests.support.state_machines import (
    asl_validation_errors,
    iter_states,
    sagemaker_parameter_errors,
    state_machine_definitions,
)

SYNC_TRAINING = "arn:aws:states:::sagemaker:createTrainingJob.sync"
CREATE_MODEL = "arn:aws:states:::sagemaker:createModel"


def _definition(template: Template) -> dict[str, Any]:
    (definition,) = state_machine_definitions(template.to_json()).values()
    return definition


def _state(definition: dict[str, Any], resource: str) -> dict[str, Any]:
    (state,) = [s for _, s in iter_states(definition) if s.get("Resource") == resource]
    return state


@pytest.fixture(scope="module")
def template(template_of) -> Template:
    return template_of("training")


@pytest.fixture(scope="module")
def definition(template) -> dict[str, Any]:
    return _definition(template)


def _policy_statements(template: Template, role_prefix: str) -> list[dict[str, Any]]:
    statements = []
    for logical_id, resource in template.find_resources("AWS::IAM::Policy").items():
        if logical_id.startswith(role_prefix):
            statements.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    assert statements, f"no policy for {role_prefix}"
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else actions


def _by_action(statements: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for statement in statements:
        for action in _actions(statement):
            found.setdefault(action, []).append(statement)
    return found


# --- the definition ---------------------------------------------------------------------


def test_both_images_are_the_regions_algorithm_container(template):
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    image = {"Fn::FindInMap": ["ImageClassificationAlgorithmImage", {"Ref": "AWS::Region"}, "uri"]}
    # CreateTrainingJob, the two CreateHyperParameterTuningJob, CreateModelPackage (no gate)
    assert parts.count(image) == 4
    mapping = template.to_json()["Mappings"]["ImageClassificationAlgorithmImage"]
    assert mapping["us-east-1"]["uri"] == (
        "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1"
    )


def test_definition_is_valid_asl(definition, tmp_path):
    assert asl_validation_errors(definition, tmp_path) == ""


def _resource_configs(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    states = dict(iter_states(definition))
    choice = states["Choose volume encryption"]
    names = [rule["Next"] for rule in choice["Choices"]] + [choice["Default"]]
    return {name: states[name]["Parameters"] for name in names}


MODES = ("Full training", "Incremental training")


def _channels(definition: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    """The InputDataConfig a training mode's Pass state sets (`$.mode.channels`)."""
    return dict(iter_states(definition))[mode]["Parameters"]["channels"]


def _complete(parameters: dict[str, Any], definition: dict[str, Any], mode: str, resources: str):
    """CreateTrainingJob Parameters with what earlier states set filled in."""
    complete = {
        k: v for k, v in parameters.items() if k not in ("ResourceConfig.$", "InputDataConfig.$")
    }
    complete["ResourceConfig"] = _resource_configs(definition)[resources]
    complete["InputDataConfig"] = _channels(definition, mode)
    return complete


def test_sagemaker_parameters_match_the_api(definition):
    training = _state(definition, SYNC_TRAINING)["Parameters"]
    assert training["ResourceConfig.$"] == "$.resource_config"
    assert training["InputDataConfig.$"] == "$.input_data_config"
    for mode in MODES:
        for name in _resource_configs(definition):
            complete = _complete(training, definition, mode, name)
            assert sagemaker_parameter_errors("CreateTrainingJob", complete) == "", (mode, name)


def test_parameter_validation_catches_a_misspelt_key(definition):
    training = dict(_state(definition, SYNC_TRAINING)["Parameters"])
    training["EnableNetworkIsolaton"] = True
    assert "EnableNetworkIsolaton" in sagemaker_parameter_errors("CreateTrainingJob", training)


def test_training_job_runs_the_algorithm_on_the_four_image_channels(definition, default_config):
    params = _state(definition, SYNC_TRAINING)["Parameters"]
    assert params["AlgorithmSpecification"]["TrainingImage"] == "placeholder-FindInMap"
    assert params["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    channels = {c["ChannelName"]: c for c in _channels(definition, "Full training")}
    assert tuple(channels) == CHANNELS
    for name, channel in channels.items():
        assert channel["ContentType"] == "application/x-image"
        assert channel["InputMode"] == "File"
        uri = channel["DataSource"]["S3DataSource"]["S3Uri.$"]
        assert uri.startswith("States.Format('s3://")
        assert uri.endswith(f"{{}}{name}/', $.dataset)")
    assert params["HyperParameters.$"] == "$.hyperparameters"
    for resource_config in _resource_configs(definition).values():
        assert resource_config["InstanceType.$"] == "$.instance_type"
        assert resource_config["InstanceCount"] == 1
    assert params["StoppingCondition"]["MaxRuntimeInSeconds"] == (
        default_config.training_max_runtime_seconds
    )


def test_training_job_is_encrypted_isolated_and_spot(definition, default_config):
    state = _state(definition, SYNC_TRAINING)
    params = state["Parameters"]
    key = params["OutputDataConfig"]["KmsKeyId"]
    assert key == "placeholder-ImportValue"  # the storage stack's key (tests/e2e: its ARN)
    ebs = _resource_configs(definition)["Encrypt EBS volume with data key"]
    assert ebs["VolumeKmsKeyId"] == key
    assert params["EnableNetworkIsolation"] is True
    assert params["EnableManagedSpotTraining"] is True
    assert (
        params["StoppingCondition"]["MaxWaitTimeInSeconds"] == default_config.spot_max_wait_seconds
    )
    assert "/checkpoints/" in params["CheckpointConfig"]["S3Uri.$"]
    assert params["OutputDataConfig"]["S3OutputPath"].endswith("/training-jobs/")
    assert state["TimeoutSeconds"] == default_config.spot_max_wait_seconds + 3600


def test_job_name_is_unique_per_execution_and_attempt_and_fits(definition):
    name = _state(definition, SYNC_TRAINING)["Parameters"]["TrainingJobName.$"]
    assert name.startswith("States.Format('grocery-train-{}', States.Hash(")
    assert "$$.Execution.Id" in name
    assert "$$.State.RetryCount" in name
    assert "'MD5'" in name
    # Longest allowed prefix + 32 hex digits + the model's "-<attempt>" suffix (<= 4 retries).
    longest = Config(prefix="p" * 20).prefix
    assert len(job_name_prefix(longest)) + 32 + len("-4") <= 63


def test_the_model_name_derives_from_the_job_name_and_attempt(gated):
    state = _state(_definition(Template.from_stack(gated)), CREATE_MODEL)
    params = state["Parameters"]
    assert params["ModelName.$"] == "States.Format('{}-{}', $.training_job, $$.State.RetryCount)"
    assert params["PrimaryContainer"]["ModelDataUrl.$"] == "$.artifact"
    assert params["PrimaryContainer"]["Image"] == "placeholder-FindInMap"
    assert params["EnableNetworkIsolation"] is True


def test_volume_key_only_for_instance_types_without_local_storage(definition):
    choice = dict(iter_states(definition))["Choose volume encryption"]
    (ebs_rule,) = choice["Choices"]
    assert ebs_rule["Next"] == "Encrypt EBS volume with data key"
    assert ebs_rule["Or"] == [
        {"Variable": "$.instance_type", "StringMatches": "ml.p2.*"},
        {"Variable": "$.instance_type", "StringMatches": "ml.p3.*"},
    ]
    local = _resource_configs(definition)[choice["Default"]]
    assert "VolumeKmsKeyId" not in local  # SageMaker refuses it on NVMe instance storage


def test_hyperparameters_merge_config_then_input_then_manifest(definition, default_config):
    states = dict(iter_states(definition))
    collect = states["Collect hyperparameters"]["Parameters"]
    assert collect["configured"] == dict(default_config.hyperparameters)
    assert collect["requested.$"] == "$.hyperparameters"
    assert collect["from_manifest"] == {
        "num_classes.$": "States.Format('{}', $.manifest.content.num_classes)",
        "num_training_samples.$": "States.Format('{}', $.manifest.content.num_training_samples)",
    }
    assert collect["mode.$"] == "$.mode.hyperparameters"
    merge = states["Merge hyperparameters"]["Parameters"]["hyperparameters.$"]
    assert merge == (
        "States.JsonMerge(States.JsonMerge(States.JsonMerge($.configured, $.mode, false), "
        "$.requested, false), $.from_manifest, false)"
    )
    clamp = states["Clamp mini-batch size"]
    assert clamp["InputPath"] == "$.hyperparameters.num_training_samples"
    assert clamp["ResultPath"] == "$.hyperparameters.mini_batch_size"


def test_gate_uses_the_configured_threshold():
    definition = _definition(Template.from_stack(build_app({"accuracy_threshold": "0.9"}).training))
    gate = dict(iter_states(definition))["Check accuracy"]
    (passing, _) = gate["Choices"]
    assert {"Variable": "$.metrics.validation_accuracy[0]", "NumericGreaterThanEquals": 0.9} in (
        passing["And"]
    )
    assert passing["Next"] == "Describe model"
    too_low = dict(iter_states(definition))["Accuracy below threshold"]
    assert "below the threshold 0.9" in too_low["Parameters"]["Cause.$"]


def test_without_spot_there_is_no_checkpoint_or_wait():
    stacks = build_app({"use_spot_training": "false", "training_max_runtime_seconds": "7200"})
    state = _state(_definition(Template.from_stack(stacks.training)), SYNC_TRAINING)
    params = state["Parameters"]
    assert "EnableManagedSpotTraining" not in params
    assert "CheckpointConfig" not in params
    assert params["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    assert state["TimeoutSeconds"] == 7200 + 3600


def test_configured_instance_type_and_hyperparameters_reach_the_definition():
    stacks = build_app(
        {"training_instance_type": "ml.g4dn.xlarge", "hyperparameters": '{"epochs": "5"}'}
    )
    states = dict(iter_states(_definition(Template.from_stack(stacks.training))))
    assert states["Read input"]["Parameters"]["defaults"]["instance_type"] == "ml.g4dn.xlarge"
    assert states["Collect hyperparameters"]["Parameters"]["configured"]["epochs"] == "5"


def test_every_task_retries_throttling_and_reports_failures(definition):
    tasks = {name: state for name, state in iter_states(definition) if state["Type"] == "Task"}
    assert len(tasks) >= 8
    for name, state in tasks.items():
        (retry, *_) = state["Retry"]
        assert "ThrottlingException" in retry["ErrorEquals"], name
        assert retry["BackoffRate"] > 1, name
        catch_all = [c for c in state["Catch"] if c["ErrorEquals"] == ["States.ALL"]]
        assert catch_all, name
        if name not in ("Notify failure", "Notify success"):
            assert catch_all[0]["Next"] == "Notify failure", name


def test_the_training_task_does_not_retry_a_failed_job(definition):
    retried = {e for r in _state(definition, SYNC_TRAINING)["Retry"] for e in r["ErrorEquals"]}
    assert not retried & {"States.ALL", "States.TaskFailed", "States.Timeout"}


def test_every_failure_ends_in_one_fail_state_with_its_cause(definition):
    fails = [s for _, s in iter_states(definition) if s["Type"] == "Fail"]
    assert fails == [
        {
            "Type": "Fail",
            "Error": "TrainingPipelineFailed",
            "CausePath": "States.Format('{}: {}', $.failure.Error, $.failure.Cause)",
        }
    ]


def test_training_never_moves_the_approved_model_pointer(definition):
    # Only an approval releases a version (stacks/release): batch must not pick up a model
    # that merely passed the gate while its version waits for approval.
    writes = [
        name
        for name, state in iter_states(definition)
        if state.get("Resource") == "arn:aws:states:::aws-sdk:ssm:putParameter"
    ]
    assert writes == []


# --- resources ----------------------------------------------------------------------------


def _pointer_calls(template: Template) -> dict[str, dict[str, Any]]:
    """Parameter name -> the pointer custom resource's properties, calls parsed."""
    calls = {}
    for resource in template.find_resources("Custom::ApprovedModelPointer").values():
        props = {
            key: json.loads(value) if key in ("Create", "Update", "Delete") else value
            for key, value in resource["Properties"].items()
        }
        calls[props["Create"]["parameters"]["Name"]] = props
    return calls


def _parameter_arn(name: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":ssm:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":parameter{name}",
            ],
        ]
    }


POINTER = [approved_model_parameter("grocery", f) for f in ("model-name", "labels-uri")]
RELEASE = [release_parameter("grocery", f) for f in ("model-package-arn", "labels-uri")]


def test_no_cloudformation_parameter_resource_manages_the_pointer(template):
    # An AWS::SSM::Parameter would put "none" back on any update of it.
    template.resource_count_is("AWS::SSM::Parameter", 0)


def test_pointer_is_created_once_with_none_never_overwritten_never_deleted(template):
    calls = _pointer_calls(template)
    assert sorted(calls) == sorted(POINTER + RELEASE)
    for name, props in calls.items():
        description = (
            "Released model version (written by the release workflow)"
            if name in RELEASE
            else "Approved model (written by the training state machine)"
        )
        assert props["Create"] == {
            "service": "SSM",
            "action": "putParameter",
            "parameters": {
                "Name": name,
                "Type": "String",
                "Value": NO_APPROVED_MODEL,
                "Overwrite": False,
                "Description": description,
            },
            "ignoreErrorCodesMatching": "ParameterAlreadyExists",
            "physicalResourceId": {"id": name},
        }
        assert "Update" not in props
        # A replaced resource (new logical id) or a destroy must not wipe a pointer that the
        # training pipeline wrote, or that existed before this resource.
        assert "Delete" not in props


def test_pointer_provider_may_touch_exactly_the_four_parameters(template):
    ssm_statements = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(action.startswith("ssm:") for action in _actions(statement))
        and not policy["Properties"]["PolicyName"].startswith("PipelineRole")
    ]
    assert sorted(json.dumps(s["Resource"]) for s in ssm_statements) == sorted(
        json.dumps(_parameter_arn(name)) for name in POINTER + RELEASE
    )
    for statement in ssm_statements:
        assert _actions(statement) == ["ssm:PutParameter"]


def test_state_machine_may_write_no_parameter(template):
    assert "ssm:PutParameter" not in _by_action(_policy_statements(template, "PipelineRole"))


def test_state_machine_is_standard_logged_and_traced(template):
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "StateMachineName": "grocery-training",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": {"Level": "ALL", "IncludeExecutionData": True},
        },
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"KmsKeyId": Match.any_value(), "RetentionInDays": 90}
    )


def test_outputs_name_what_the_cli_and_other_stacks_need(template):
    outputs = template.to_json()["Outputs"]
    assert {"StateMachineArn", "ModelRoleArn", "ModelNameParameter", "LabelsUriParameter"} <= set(
        outputs
    )


# --- IAM ----------------------------------------------------------------------------------


def test_no_wildcard_actions_and_no_managed_policies(template):
    for logical_id, policy in template.find_resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in _actions(statement):
                assert "*" not in action, (logical_id, action)
    for logical_id, role in template.find_resources("AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], logical_id


def test_state_machine_role_has_what_sync_needs(template):
    actions = _by_action(_policy_statements(template, "PipelineRole"))
    for action in (
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "sagemaker:AddTags",
        "iam:PassRole",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
    ):
        assert action in actions, action
    (pass_role,) = actions["iam:PassRole"]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    passed = json.dumps(pass_role["Resource"])
    assert "TrainingJobRole" in passed
    assert "ModelRole" not in passed  # no Model without the test gate
    assert "sagemaker:CreateModel" not in actions
    rules = json.dumps([s["Resource"] for s in actions["events:PutRule"]])
    assert "rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule" in rules
    for action in ("sagemaker:CreateTrainingJob", "sagemaker:AddTags"):
        for statement in actions[action]:
            resource = json.dumps(statement["Resource"])
            # Training jobs, and (AddTags) the tuning jobs of tuning runs.
            assert (
                "training-job/grocery-train-*" in resource
                or "hyper-parameter-tuning-job/grocery-t-*" in resource
            ), action


def test_training_role_reads_training_data_and_writes_artifacts_only(template):
    actions = _by_action(_policy_statements(template, "TrainingJobRole"))
    (put,) = actions["s3:PutObject"]
    written = json.dumps(put["Resource"])
    assert "Artifacts" in written
    assert "TrainingData" not in written
    assert "/training-jobs/*" in written
    assert "/checkpoints/*" in written
    read = json.dumps([s["Resource"] for s in actions["s3:GetObject"]])
    assert "TrainingData" in read
    assert "Inference" not in read
    assert not {"s3:DeleteObject", "s3:PutBucketPolicy"} & set(actions)
    (metrics,) = actions["cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
    }


def test_roles_trust_only_sagemaker_of_this_account(template):
    for logical_id in ("TrainingJobRole", "ModelRole"):
        (role,) = [
            r
            for key, r in template.find_resources("AWS::IAM::Role").items()
            if key.startswith(logical_id)
        ]
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
        assert trust["Condition"] == {
            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        }


# --- the optional test-set gate (issue 7) ---------------------------------------------------


@pytest.fixture(scope="module")
def gated():
    return build_app({"test_accuracy_threshold": "0.75"}).training


def test_test_gate_is_off_by_default(template, definition):
    names = {name for name, _ in iter_states(definition)}
    assert not names & {"Evaluate on test channel", "Score test predictions", "No test channel"}
    # The one function left is CDK's provider of the approved-model pointer.
    template.resource_count_is("AWS::Lambda::Function", 1)
    template.resource_properties_count_is(
        "AWS::Lambda::Function", {"Handler": "training_evaluate.handler.handler"}, 0
    )


def test_test_gate_definition_is_valid_and_calls_the_api_correctly(gated, tmp_path):
    definition = _definition(Template.from_stack(gated))
    assert asl_validation_errors(definition, tmp_path) == ""
    transform = _state(definition, "arn:aws:states:::sagemaker:createTransformJob.sync")
    params = transform["Parameters"]
    assert sagemaker_parameter_errors("CreateTransformJob", params) == ""
    assert params["ModelName.$"] == "$.model.name"
    assert params["TransformInput"]["ContentType"] == "application/x-image"
    assert params["TransformInput"]["SplitType"] == "None"
    assert (params["BatchStrategy"], params["MaxPayloadInMB"]) == ("SingleRecord", 6)
    assert params["TransformResources"]["InstanceType"] == "ml.m4.xlarge"
    assert params["TransformResources"]["VolumeKmsKeyId"] == params["TransformOutput"]["KmsKeyId"]
    states = dict(iter_states(definition))
    # The gate sits between CreateModel and the registry: a failing model is never registered.
    assert states["Create model"]["Next"] == "Evaluate on test channel"
    gate = states["Check test accuracy"]
    assert gate["Choices"][0]["Next"] == "Collect model metrics"
    assert gate["Default"] == "Test accuracy below threshold"
    assert states["Score test predictions"]["Parameters"]["Payload"]["threshold"] == 0.75
    assert sagemaker_parameter_errors("CreateModel", states["Create model"]["Parameters"]) == ""


DELETE_MODEL = "arn:aws:states:::aws-sdk:sagemaker:deleteModel"


def test_the_gate_model_is_deleted_on_every_path_after_the_transform(gated):
    # Issue 11: `cdk destroy` cannot remove Models a state machine created.
    states = dict(iter_states(_definition(Template.from_stack(gated))))
    deletes = {name: s for name, s in states.items() if s.get("Resource") == DELETE_MODEL}
    assert set(deletes) == {"Delete test model", "Delete test model after failure"}
    for name, state in deletes.items():
        assert state["Parameters"] == {"ModelName.$": "$.model.name"}, name
        assert sagemaker_parameter_errors("DeleteModel", state["Parameters"]) == "", name
        assert "SageMaker.ThrottlingException" in state["Retry"][0]["ErrorEquals"], name
        assert state["ResultPath"] is None, name  # keeps $.test and $.failure
    assert states["Score test predictions"]["Next"] == "Delete test model"
    assert states["Delete test model"]["Next"] == "Check test accuracy"
    after_failure = "Delete test model after failure"
    for name in ("Evaluate on test channel", "Score test predictions"):
        (catch,) = states[name]["Catch"]
        assert (catch["Next"], catch["ResultPath"]) == (after_failure, "$.failure"), name
    assert states[after_failure]["Next"] == "Notify failure"
    assert states[after_failure]["Catch"][0]["ResultPath"] == "$.delete_error"
    # A Model that failed to be created has nothing to delete.
    assert states["Create model"]["Catch"][0]["Next"] == "Notify failure"


def test_the_state_machine_may_delete_only_the_gates_models(gated):
    actions = _by_action(_policy_statements(Template.from_stack(gated), "PipelineRole"))
    (delete,) = actions["sagemaker:DeleteModel"]
    assert _actions(delete) == ["sagemaker:DeleteModel"]
    # The gate's Models only: of a training job, or of a tuning run's best job.
    deletable = [json.dumps(resource) for resource in delete["Resource"]]
    assert sorted(r.rsplit(":", 1)[-1] for r in deletable) == [
        'model/grocery-t-*"]]}',
        'model/grocery-train-*"]]}',
    ]
    (create,) = actions["sagemaker:CreateModel"]
    creatable = json.dumps(create["Resource"])
    assert "model/grocery-train-*" in creatable
    assert "model/grocery-t-*" in creatable
    transforms = json.dumps([s["Resource"] for s in actions["sagemaker:CreateTransformJob"]])
    assert "transform-job/grocery-t-*" in transforms
    # A tuning run's best job's Model name fits CreateModel (<= 63): <name>-<attempt>.
    best = "p" * 20 + "-t-123456789-100-0a1b2c3d"
    assert len(f"{best}-4-4") <= 63  # and its transform job: <model>-<attempt>
    passed = json.dumps([s["Resource"] for s in actions["iam:PassRole"]])
    assert "ModelRole" in passed


def test_test_gate_permissions_and_nag(gated):
    template = Template.from_stack(gated)
    actions = _by_action(_policy_statements(template, "PipelineRole"))
    for action in ("sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob"):
        assert "transform-job/grocery-train-*" in json.dumps(actions[action][0]["Resource"])
    (events,) = [
        s for s in actions["events:PutRule"] if "TransformJobsRule" in json.dumps(s["Resource"])
    ]
    assert events["Effect"] == "Allow"
    model = _by_action(_policy_statements(template, "ModelRole"))
    assert "/test/*" in json.dumps([s["Resource"] for s in model["s3:GetObject"]])
    report = AwsSolutionsChecks().validate_scope(gated)
    assert [v.rule_name for v in report.violations] == []


# --- the concurrency guard ---------------------------------------------------------------


def test_the_first_call_lists_this_state_machines_running_executions(definition, template):
    states = dict(iter_states(definition))
    assert states["Apply defaults"]["Next"] == "List running trainings"
    listing = states["List running trainings"]
    assert listing["Resource"] == "arn:aws:states:::aws-sdk:sfn:listExecutions"
    assert listing["Parameters"] == {
        "StateMachineArn.$": "$$.StateMachine.Id",
        "StatusFilter": "RUNNING",
        "MaxResults": 1000,
    }
    assert "Sfn.ThrottlingException" in listing["Retry"][0]["ErrorEquals"]
    choice = states["Another training running?"]
    assert choice["Choices"][0]["Next"] == "Check input"
    assert choice["Default"] == "Training already running"
    # Granted on the machine's own ARN, built from its fixed name (no self-reference cycle).
    (grant,) = _by_action(_policy_statements(template, "PipelineRole"))["states:ListExecutions"]
    assert json.dumps(grant["Resource"]).endswith(':stateMachine:grocery-training"]]}')


# --- incremental training (issue 12) ---------------------------------------------------------


def test_incremental_training_adds_the_model_channel_and_fewer_epochs(definition):
    states = dict(iter_states(definition))
    full, incremental = (states[mode]["Parameters"] for mode in MODES)
    assert [c["ChannelName"] for c in full["channels"]] == list(CHANNELS)
    *images, model = incremental["channels"]
    assert images == full["channels"]
    # https://docs.aws.amazon.com/sagemaker/latest/dg/image-classification.html
    assert model == {
        "ChannelName": "model",
        "ContentType": "application/x-sagemaker-model",
        "CompressionType": "None",
        "InputMode": "File",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3DataDistributionType": "FullyReplicated",
                "S3Uri.$": "$.initial_model.model_data",
            }
        },
    }
    assert full["hyperparameters"] == {}
    assert incremental["hyperparameters"] == {"epochs": "10"}  # config incremental_epochs
    assert full["provenance"] == {"trained_from_version": "none", "tuning_summary": "none"}
    assert incremental["provenance"] == {
        "trained_from_version.$": "$.initial_model.version",
        "tuning_summary": "none",
    }
    choice = states["Full or incremental?"]
    assert choice["Choices"][0] == {
        "Variable": "$.initial_model",
        "IsBoolean": True,
        "Next": "Full training",
    }
    assert choice["Default"] == "Incremental training"
    # Without initial_model the defaults say false: a full training.
    assert states["Read input"]["Parameters"]["defaults"]["initial_model"] is False


def test_the_initial_model_must_be_in_the_artifacts_bucket(definition):
    states = dict(iter_states(definition))
    check = states["Check initial model"]
    assert states["Check input"]["Choices"][0]["Next"] == "Check initial model"
    full, network, valid = check["Choices"]
    assert full["Next"] == valid["Next"] == "Check tuning"
    assert network["Next"] == "Reject network change"
    assert check["Default"] == "Reject initial model"
    assert {
        "Variable": "$.initial_model.model_data",
        "StringMatches": "s3://placeholder-ImportValue/training-jobs/*.tar.gz",
    } in valid["And"]
    cause = states["Reject initial model"]["Parameters"]["Cause"]
    assert cause.startswith('initial_model must be {"version"')


def test_the_training_role_reads_the_initial_model(template):
    # The model channel's object is training-jobs/<job>/output/model.tar.gz in the artifacts
    # bucket: what the training role already reads (and writes), with the data key.
    actions = _by_action(_policy_statements(template, "TrainingJobRole"))
    readable = json.dumps([s["Resource"] for s in actions["s3:GetObject"]])
    assert "Artifacts" in readable
    assert "/training-jobs/*" in readable
    assert "kms:Decrypt" in actions


def test_the_version_records_what_it_was_trained_from(definition):
    states = dict(iter_states(definition))
    assert states["Describe model"]["Parameters"]["provenance.$"] == "$.provenance"
    metadata = states["Register model version"]["Parameters"]["CustomerMetadataProperties"]
    assert metadata["trained_from_version.$"] == "$.provenance.trained_from_version"


@pytest.fixture(scope="module")
def scaled():
    """One app for the incremental/scale config keys (building an app costs seconds)."""
    return build_app(
        {
            "incremental_epochs": "4",
            "training_instance_count": "2",
            "training_instance_type": "ml.g5.xlarge",
        }
    ).training


def test_configured_incremental_epochs_reach_the_definition(scaled):
    states = dict(iter_states(_definition(Template.from_stack(scaled))))
    assert states["Incremental training"]["Parameters"]["hyperparameters"] == {"epochs": "4"}


# --- scale: several training instances ------------------------------------------------------


def test_several_instances_run_distributed_with_dist_sync(scaled, definition):
    scaled_definition = _definition(Template.from_stack(scaled))
    for resource_config in _resource_configs(scaled_definition).values():
        assert resource_config["InstanceCount"] == 2
    training = _state(scaled_definition, SYNC_TRAINING)["Parameters"]
    complete = _complete(
        training, scaled_definition, "Full training", "Use encrypted instance storage"
    )
    assert sagemaker_parameter_errors("CreateTrainingJob", complete) == ""
    configured = dict(iter_states(scaled_definition))["Collect hyperparameters"]["Parameters"]
    assert configured["configured"]["kv_store"] == "dist_sync"
    # One instance: no kv_store ("not applicable to single machine training").
    single = dict(iter_states(definition))["Collect hyperparameters"]["Parameters"]
    assert "kv_store" not in single["configured"]


def test_a_configured_kv_store_wins():
    from stacks.training.job import configured_hyperparameters

    config = Config(
        training_instance_count=3,
        training_instance_type="ml.p3.2xlarge",
        hyperparameters={**Config().hyperparameters, "kv_store": "dist_async"},
    )
    assert configured_hyperparameters(config)["kv_store"] == "dist_async"
