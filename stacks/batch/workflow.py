"""The batch state machine: approved model -> transform job (.sync) -> decode -> status + SNS.

    Initialise -> ReadModelName -> ReadLabelsUri -> AnyImages?
      no images ----------------------------------------------> Decode
      no approved model -> NoApprovedModel ---------------------------------> RecordFailure
      otherwise -> Transform (.sync) -> Decode -> Outcome? -> RecordSuccess -> NotifySuccess
                   | job failed: Decode keeps what was classified ^   | error -> RecordFailure
    RecordFailure -> NotifyFailure -> Failed (cause = the error; the batch record stays: re-run it)

The model is read from SSM at run time, so a re-run after training uses the
newly approved model. Each run writes its transform output under
`predictions/<batch id>/<execution name>/` and names its job after the execution
and the attempt, so re-runs and retries never collide.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.batch import BATCHES_PREFIX
from stacks.batch.access import (
    acknowledge_wildcards,
    grant_list,
    grant_objects,
    skip_lambda_checks,
)
from stacks.config import Config
from stacks.constructs.dependencies import depend_on_policy_only
from stacks.constructs.log_group import encrypted_log_group
from stacks.constructs.python_function import PythonFunction
from stacks.names import (
    INCOMING_PREFIX,
    NO_APPROVED_MODEL,
    PREDICTIONS_PREFIX,
    RESULTS_PREFIX,
    approved_model_parameter,
)

# The algorithm's batch settings (see ../shared/docs/REFERENCE.md, section 1).
MAX_PAYLOAD_MB = 6
TRANSFORM_TIMEOUT = Duration.hours(6)
DECODE_TIMEOUT = Duration.minutes(10)
NO_MODEL_CAUSE = (
    "no approved model yet: run training (the SSM parameters {} still hold '{}'); "
    "then re-run this batch"
)
# Instance families with local NVMe storage reject VolumeKmsKeyId (their volume is
# encrypted by the hardware): e.g. ml.m5d, ml.c5d, ml.g4dn, ml.g5, ml.p3dn.
_LOCAL_STORAGE_FAMILY = re.compile(r"^(\w+\d+\w*d\w*|g5|g6|p4d|p5)$")
SYNC_RULE = "StepFunctionsGetEventsForSageMakerTransformJobsRule"


def has_local_storage(instance_type: str) -> bool:
    family = instance_type.split(".")[1]
    return bool(_LOCAL_STORAGE_FAMILY.match(family))


def transform_job_prefix(config: Config) -> str:
    return f"{config.prefix}-b"


def transform_parameters(config: Config, key_arn: str) -> dict:
    """CreateTransformJob's Parameters (JsonPath values end in `.$`)."""
    resources: dict = {"InstanceType": config.transform_instance_type, "InstanceCount": 1}
    if not has_local_storage(config.transform_instance_type):
        resources["VolumeKmsKeyId"] = key_arn
    return {
        # <= 63 characters: prefix (<= 22) + execution name (<= 37, see grocery/batch.py) + attempt.
        "TransformJobName.$": (
            f"States.Format('{transform_job_prefix(config)}-{{}}-{{}}', "
            "$$.Execution.Name, $$.State.RetryCount)"
        ),
        "ModelName.$": "$.model.name",
        "BatchStrategy": "SingleRecord",
        "MaxPayloadInMB": MAX_PAYLOAD_MB,
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {"S3DataType": "ManifestFile", "S3Uri.$": "$.manifest_uri"}
            },
            "ContentType": "application/x-image",
            "SplitType": "None",
            "CompressionType": "None",
        },
        "TransformOutput": {
            "S3OutputPath.$": (
                "States.Format('s3://{}/{}{}/', $.bucket, $.predictions_prefix, $$.Execution.Name)"
            ),
            "Accept": "application/json",
            "AssembleWith": "None",
            "KmsKeyId": key_arn,
        },
        "TransformResources": resources,
        "Tags": [
            {"Key": "project", "Value": config.prefix},
            {"Key": "batch-id", "Value.$": "$.batch_id"},
        ],
    }


class BatchWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        key: kms.IKey,
        bucket: s3.IBucket,
        topic: sns.ITopic,
        label_buckets: Sequence[s3.IBucket],
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._key = key
        self._bucket = bucket
        self._topic = topic
        self.decode_function = self._decode_function(label_buckets)

        fail_chain = self._failure_chain()
        decode = tasks.LambdaInvoke(
            self,
            "Decode",
            lambda_function=self.decode_function,
            payload=sfn.TaskInput.from_object(
                {
                    "batch_id": sfn.JsonPath.string_at("$.batch_id"),
                    "bucket": sfn.JsonPath.string_at("$.bucket"),
                    "record_key": sfn.JsonPath.string_at("$.record_key"),
                    "predictions_prefix": sfn.JsonPath.format(
                        "{}{}/",
                        sfn.JsonPath.string_at("$.predictions_prefix"),
                        sfn.JsonPath.execution_name,
                    ),
                    "results": sfn.JsonPath.object_at("$.results"),
                    "model": sfn.JsonPath.object_at("$.model"),
                    "labels": sfn.JsonPath.object_at("$.labels"),
                    "transform_error": sfn.JsonPath.object_at("$.error"),
                }
            ),
            payload_response_only=True,
            retry_on_service_exceptions=True,
            result_path="$.decode",
        )
        decode.add_catch(fail_chain, result_path="$.error")
        decode.next(
            sfn.Choice(self, "Outcome?")
            .when(sfn.Condition.is_present("$.error.Error"), fail_chain)
            .otherwise(self._success_chain())
        )

        transform = self._transform_task()
        transform.add_catch(decode, result_path="$.error")  # keep what was classified
        transform.next(decode)

        no_model = sfn.Pass(
            self,
            "NoApprovedModel",
            result=sfn.Result.from_object(
                {
                    "Error": "NoApprovedModel",
                    "Cause": NO_MODEL_CAUSE.format(
                        " and ".join(self._model_parameters()), NO_APPROVED_MODEL
                    ),
                }
            ),
            result_path="$.error",
        ).next(fail_chain)

        read_name = self._read_parameter("ReadModelName", "model-name", "$.model", "name")
        read_labels = self._read_parameter("ReadLabelsUri", "labels-uri", "$.labels", "uri")
        for read in (read_name, read_labels):
            read.add_catch(
                no_model, errors=["Ssm.ParameterNotFoundException"], result_path="$.error"
            )
            read.add_catch(fail_chain, result_path="$.error")

        choose = (
            sfn.Choice(self, "AnyImages?")
            .when(sfn.Condition.number_equals("$.image_count", 0), decode)
            .when(
                sfn.Condition.or_(
                    sfn.Condition.string_equals("$.model.name", NO_APPROVED_MODEL),
                    sfn.Condition.string_equals("$.labels.uri", NO_APPROVED_MODEL),
                ),
                no_model,
            )
            .otherwise(transform)
        )
        definition = (
            sfn.Pass(self, "Initialise", result=sfn.Result.from_object({}), result_path="$.error")
            .next(read_name)
            .next(read_labels)
            .next(choose)
        )

        self.log_group = encrypted_log_group(self, "Logs", key=key)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment=f"{config.prefix}: classify one batch of uploaded photos",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
        )
        depend_on_policy_only(self.state_machine, self.state_machine.role)
        self._grant_transform(self.state_machine.role)
        key.grant(self.state_machine.role, "kms:Decrypt", "kms:GenerateDataKey")
        self._acknowledge(self.state_machine.role)

    # --- states ------------------------------------------------------------------------------

    def _model_parameters(self) -> tuple[str, str]:
        prefix = self._config.prefix
        return (
            approved_model_parameter(prefix, "model-name"),
            approved_model_parameter(prefix, "labels-uri"),
        )

    def _read_parameter(self, state_id: str, field: str, path: str, name: str) -> sfn.TaskStateBase:
        parameter = approved_model_parameter(self._config.prefix, field)
        return tasks.CallAwsService(
            self,
            state_id,
            service="ssm",
            action="getParameter",
            parameters={"Name": parameter},
            iam_resources=[
                Stack.of(self).format_arn(
                    service="ssm", resource="parameter", resource_name=parameter.lstrip("/")
                )
            ],
            iam_action="ssm:GetParameter",
            result_selector={f"{name}.$": "$.Parameter.Value"},
            result_path=path,
        )

    def _transform_task(self) -> sfn.CustomState:
        partition = Stack.of(self).partition
        state = sfn.CustomState(
            self,
            "Transform",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{partition}:states:::sagemaker:createTransformJob.sync",
                "Parameters": transform_parameters(self._config, self._key.key_arn),
                "ResultSelector": {
                    "job_name.$": "$.TransformJobName",
                    "status.$": "$.TransformJobStatus",
                },
                "ResultPath": "$.transform",
                "TimeoutSeconds": int(TRANSFORM_TIMEOUT.to_seconds()),
            },
        )
        # Throttled or refused CreateTransformJob calls; the next attempt has a new job name.
        state.add_retry(
            errors=["SageMaker.AmazonSageMakerException"],
            max_attempts=2,
            interval=Duration.seconds(30),
            backoff_rate=2,
        )
        return state

    def _status(self, state_id: str, status: str) -> tuple[sfn.Pass, tasks.CallAwsService]:
        """Pass (the status document) -> S3 PutObject of batches/<batch id>/status.json."""
        document = {
            "batch_id": sfn.JsonPath.string_at("$.batch_id"),
            "status": status,
            "execution": sfn.JsonPath.execution_id,
            "finished_at": sfn.JsonPath.state_entered_time,
            "model": sfn.JsonPath.object_at("$.model"),
            "error": sfn.JsonPath.object_at("$.error"),
        }
        if status == "SUCCEEDED":
            document["results"] = sfn.JsonPath.object_at("$.decode")
        summarise = sfn.Pass(
            self,
            f"Summarise{state_id}",
            parameters=document,
            result_path="$.status_document",
        )
        put = tasks.CallAwsService(
            self,
            f"Record{state_id}",
            service="s3",
            action="putObject",
            parameters={
                "Bucket": sfn.JsonPath.string_at("$.bucket"),
                "Key": sfn.JsonPath.string_at("$.status_key"),
                "Body": sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.status_document")),
                "ContentType": "application/json",
            },
            iam_resources=[self._bucket.arn_for_objects(f"{BATCHES_PREFIX}*/status.json")],
            iam_action="s3:PutObject",
            result_path=sfn.JsonPath.DISCARD,
        )
        summarise.next(put)
        return summarise, put

    def _success_chain(self) -> sfn.IChainable:
        notify = tasks.SnsPublish(
            self,
            "NotifySuccess",
            topic=self._topic,
            subject=sfn.JsonPath.format(
                f"{self._config.prefix}: batch {{}} classified",
                sfn.JsonPath.string_at("$.batch_id"),
            ),
            message=sfn.TaskInput.from_text(
                sfn.JsonPath.format(
                    "Batch {} is done: {} of {} images classified, {} failed, {} objects skipped "
                    "(model {}). Results: {} and {}",
                    sfn.JsonPath.string_at("$.batch_id"),
                    sfn.JsonPath.string_at("$.decode.classified"),
                    sfn.JsonPath.string_at("$.decode.images"),
                    sfn.JsonPath.string_at("$.decode.failed"),
                    sfn.JsonPath.string_at("$.decode.skipped"),
                    sfn.JsonPath.string_at("$.decode.model"),
                    sfn.JsonPath.string_at("$.decode.results_jsonl"),
                    sfn.JsonPath.string_at("$.decode.results_csv"),
                )
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        summarise, put = self._status("Success", "SUCCEEDED")
        put.next(notify).next(sfn.Succeed(self, "Classified"))
        return summarise

    def _failure_chain(self) -> sfn.IChainable:
        notify = tasks.SnsPublish(
            self,
            "NotifyFailure",
            topic=self._topic,
            subject=sfn.JsonPath.format(
                f"{self._config.prefix}: batch {{}} FAILED", sfn.JsonPath.string_at("$.batch_id")
            ),
            message=sfn.TaskInput.from_text(
                sfn.JsonPath.format(
                    "Batch {} failed ({}): {} The batch is recorded under s3://{}/{}; "
                    "re-run it with: python -m grocery batch rerun {}",
                    sfn.JsonPath.string_at("$.batch_id"),
                    sfn.JsonPath.string_at("$.error.Error"),
                    sfn.JsonPath.string_at("$.error.Cause"),
                    sfn.JsonPath.string_at("$.bucket"),
                    sfn.JsonPath.string_at("$.record_key"),
                    sfn.JsonPath.string_at("$.batch_id"),
                )
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        failed = sfn.Fail(self, "Failed", error_path="$.error.Error", cause_path="$.error.Cause")
        summarise, put = self._status("Failure", "FAILED")
        # A batch whose status cannot be written must still be reported.
        put.add_catch(notify, result_path="$.status_error")
        put.next(notify).next(failed)
        return summarise

    # --- functions and permissions ------------------------------------------------------------

    def _decode_function(self, label_buckets: Sequence[s3.IBucket]):
        function = PythonFunction(
            self,
            "DecodeFunction",
            handler="batch_decode.handler.handler",
            description="Maps a batch's transform outputs to grocery labels: results .jsonl + .csv",
            key=self._key,
            service="batch-decode",
            timeout=DECODE_TIMEOUT,
            memory_size=1024,
        )
        role, bucket = function.role, self._bucket
        grant_objects(
            role, bucket, ["s3:GetObject"], [PREDICTIONS_PREFIX, BATCHES_PREFIX, INCOMING_PREFIX]
        )
        grant_objects(role, bucket, ["s3:PutObject"], [RESULTS_PREFIX])
        grant_list(role, bucket)
        # The approved model's labels.json, wherever the training pipeline keeps it.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[b.arn_for_objects("*labels.json") for b in label_buckets],
            )
        )
        self._key.grant(role, "kms:GenerateDataKey")
        acknowledge_wildcards(
            role.node.find_child("DefaultPolicy"),
            {
                bucket.arn_for_objects(f"{PREDICTIONS_PREFIX}*"): (
                    "Reads the .out files of any batch run under predictions/<batch id>/<run>/."
                ),
                bucket.arn_for_objects(f"{BATCHES_PREFIX}*"): (
                    "Reads the batch record of the batch it decodes, under batches/<batch id>/."
                ),
                bucket.arn_for_objects(f"{INCOMING_PREFIX}*"): (
                    "Checks whether an upload without output was deleted before the job (HEAD)."
                ),
                bucket.arn_for_objects(f"{RESULTS_PREFIX}*"): (
                    "Writes results/<batch id>.jsonl and .csv; the batch id is new for each batch."
                ),
                **{
                    b.arn_for_objects("*labels.json"): (
                        "The approved model's labels.json, wherever the training pipeline put it."
                    )
                    for b in label_buckets
                },
            },
        )
        skip_lambda_checks(
            function.function,
            invoked_by="the batch state machine (its Catch records and reports the failure)",
            bounded_by="one invocation per batch run, itself started by the trigger",
        )
        return function.function

    def _grant_transform(self, role: iam.IRole) -> None:
        """Exactly what createTransformJob.sync needs, scoped to this stack's job names."""
        stack = Stack.of(self)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateTransformJob",
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:StopTransformJob",
                    "sagemaker:AddTags",
                ],
                resources=[self._job_arn()],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    stack.format_arn(service="events", resource="rule", resource_name=SYNC_RULE)
                ],
            )
        )
        # SageMaker encrypts the job's volume with the data key through a grant.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:CreateGrant"],
                resources=[self._key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )

    def _job_arn(self) -> str:
        return Stack.of(self).format_arn(
            service="sagemaker",
            resource="transform-job",
            resource_name=f"{transform_job_prefix(self._config)}-*",
        )

    def _acknowledge(self, role: iam.IRole) -> None:
        acknowledge_wildcards(
            role.node.find_child("DefaultPolicy"),
            {
                "*": "Step Functions log delivery and X-Ray actions support no resource-level permissions.",
                self._job_arn(): "Job names are computed per execution and attempt; scoped to this stack's prefix.",
                f"{self.decode_function.function_arn}:*": (
                    "Invoking the decode function's versions and aliases (CDK's LambdaInvoke grant)."
                ),
                self._bucket.arn_for_objects(f"{BATCHES_PREFIX}*/status.json"): (
                    "Writes only status.json of the batch it runs, under batches/<batch id>/."
                ),
            },
        )
