"""The batch state machine: released version -> its own Model -> transform job (.sync) ->
decode -> status + SNS.

    Initialise -> ReadPackageArn -> ReadLabelsUri -> Released?
      not released: NotReleased? -- no images --------------------------------> Decode
                                 -- otherwise -> NoReleasedModel -------------> failure
      released: NameVersion -> AnyImages? -- no images -----------------------> Decode
        otherwise -> CreateModel -> Transform (.sync) -> DeleteModel -> Decode -> Outcome?
                                    | job failed: DeleteModel, then Decode      -> success
                                      (keeps what was classified)   | job failed: ReadableCause
                                                                    -> Rerun? -> partial |
                                                                       failure | unfixable
      Read*/CreateModel/Decode errors ----------------------------------------> failure
    (the endings, stacks/batch/endings.py: status.json, one notification, Succeed or Fail)

The release record (the released model package version and its labels, written only by
the release workflow) is read from SSM at run time, so a re-run after a release uses
the new version. Each run creates its own SageMaker Model from that version and deletes
it once the job ended (stacks/batch/model.py): batch needs nothing of the serving stack,
which may be destroyed while no one calls the API. The decode step judges a failed job
(lambdas/batch_decode/outcome.py):
a batch whose images the model refused is PARTIAL (or FAILED if none was classified)
and its notification suggests no re-run that would fail the same way.
"""

from __future__ import annotations

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
from stacks.batch.endings import BatchEndings
from stacks.batch.model import (
    create_model_task,
    delete_model_task,
    grant_create_model,
    model_arn,
    package_arn,
    version_name,
)
from stacks.batch.transform import (
    grant_transform,
    job_arn,
    transform_task,
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
    release_parameter,
)
from stacks.prediction_metrics import (
    REVIEW_DECISIONS_PREFIX,
    REVIEW_QUEUE_PREFIX,
    review_environment,
)

DECODE_TIMEOUT = Duration.minutes(10)
NO_MODEL_CAUSE = (
    "no released model yet: approve a version (python -m grocery models approve N); the "
    "release record ({}) still holds '{}'. Then re-run this batch"
)
# Outcomes of the decode step (lambdas/batch_decode/outcome.py).
PARTIAL = "PARTIAL"
TRANSFORM_FAILED = "TransformJobFailed"

__all__ = ["BatchWorkflow"]


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
        model_role: iam.IRole,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._key = key
        self._bucket = bucket
        self.decode_function = self._decode_function(label_buckets)

        endings = BatchEndings(self, prefix=config.prefix, bucket=bucket, topic=topic)
        self._endings = endings
        fail_chain = endings.failure()
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
            .when(sfn.Condition.is_present("$.error.Error"), self._judged(endings, fail_chain))
            .otherwise(endings.success())
        )

        # The run's Model lives from CreateModel to DeleteModel, which every outcome of the
        # job passes (its Catch included) before Decode.
        delete_model = delete_model_task(self, config)
        delete_model.add_catch(decode, result_path="$.model_cleanup_error")  # keep the results
        delete_model.next(decode)
        transform = transform_task(self, self._config, self._key)
        transform.add_catch(delete_model, result_path="$.error")  # keep what was classified
        transform.next(delete_model)
        create_model = create_model_task(self, config, model_role)
        create_model.add_catch(fail_chain, result_path="$.error")
        create_model.next(transform)

        no_model = sfn.Pass(
            self,
            "NoReleasedModel",
            result=sfn.Result.from_object(
                {
                    "Error": "NoReleasedModel",
                    "Cause": NO_MODEL_CAUSE.format(
                        ", ".join(self._release_parameters()), NO_APPROVED_MODEL
                    ),
                }
            ),
            result_path="$.error",
        ).next(fail_chain)

        # The name stays "none" until NameVersion knows the version (decode and the endings
        # read it on every path, a batch with nothing to classify included).
        read_package = self._read_parameter(
            "ReadPackageArn",
            "model-package-arn",
            "$.model",
            {"package_arn.$": "$.Parameter.Value", "name": NO_APPROVED_MODEL},
        )
        read_labels = self._read_parameter(
            "ReadLabelsUri", "labels-uri", "$.labels", {"uri.$": "$.Parameter.Value"}
        )
        for read in (read_package, read_labels):
            read.add_catch(
                no_model, errors=["Ssm.ParameterNotFoundException"], result_path="$.error"
            )
            read.add_catch(fail_chain, result_path="$.error")

        nothing_to_classify = sfn.Condition.number_equals("$.image_count", 0)
        released = (
            sfn.Choice(self, "Released?")
            .when(
                sfn.Condition.or_(
                    sfn.Condition.string_equals("$.model.package_arn", NO_APPROVED_MODEL),
                    sfn.Condition.string_equals("$.labels.uri", NO_APPROVED_MODEL),
                ),
                sfn.Choice(self, "NotReleased?")
                .when(nothing_to_classify, decode)
                .otherwise(no_model),
            )
            .otherwise(
                version_name(self).next(
                    sfn.Choice(self, "AnyImages?")
                    .when(nothing_to_classify, decode)
                    .otherwise(create_model)
                )
            )
        )
        definition = (
            sfn.Pass(self, "Initialise", result=sfn.Result.from_object({}), result_path="$.error")
            .next(read_package)
            .next(read_labels)
            .next(released)
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
        grant_transform(self, self.state_machine.role, self._config, key)
        grant_create_model(self, self.state_machine.role, self._config, model_role)
        key.grant(self.state_machine.role, "kms:Decrypt", "kms:GenerateDataKey")
        self._acknowledge(self.state_machine.role)

    # --- states ------------------------------------------------------------------------------

    def _judged(self, endings: BatchEndings, fail_chain: sfn.IChainable) -> sfn.IChainable:
        """A failed job, judged by decode: partial, re-runnable, or not fixable by a re-run."""
        readable = sfn.Pass(
            self,
            "ReadableCause",
            # The cause names the Step Functions error (e.g. States.TaskFailed), which a Fail
            # state may not reuse: error names starting with "States." are reserved.
            comment="The job's FailureReason instead of its whole description",
            parameters={
                "Error": TRANSFORM_FAILED,
                "Cause": sfn.JsonPath.string_at("$.decode.failure"),
            },
            result_path="$.error",
        )
        return readable.next(
            sfn.Choice(self, "Rerun?")
            .when(sfn.Condition.string_equals("$.decode.outcome", PARTIAL), endings.partial())
            .when(sfn.Condition.boolean_equals("$.decode.rerun", True), fail_chain)
            .otherwise(endings.unfixable())
        )

    def _release_parameters(self) -> tuple[str, str]:
        prefix = self._config.prefix
        return (
            release_parameter(prefix, "model-package-arn"),
            release_parameter(prefix, "labels-uri"),
        )

    def _read_parameter(
        self, state_id: str, field: str, path: str, selector: dict
    ) -> sfn.TaskStateBase:
        """GetParameter of one field of the release record (stacks/names.py)."""
        parameter = release_parameter(self._config.prefix, field)
        task = tasks.CallAwsService(
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
            result_selector=selector,
            result_path=path,
        )
        task.add_retry(
            errors=["Ssm.ThrottlingException"],
            interval=Duration.seconds(2),
            backoff_rate=2.0,
            max_attempts=5,
            jitter_strategy=sfn.JitterType.FULL,
        )
        return task

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
            # Unsure rows are queued for review, every batch publishes confidence metrics.
            environment=review_environment(
                self._config.prefix, threshold=self._config.review_threshold
            ),
        )
        role, bucket = function.role, self._bucket
        grant_objects(
            role, bucket, ["s3:GetObject"], [PREDICTIONS_PREFIX, BATCHES_PREFIX, INCOMING_PREFIX]
        )
        grant_objects(role, bucket, ["s3:PutObject"], [RESULTS_PREFIX, REVIEW_QUEUE_PREFIX])
        # HEAD of review/decisions/<id>.json: a re-run does not re-queue a decided item.
        grant_objects(role, bucket, ["s3:GetObject"], [REVIEW_DECISIONS_PREFIX])
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
                bucket.arn_for_objects(f"{REVIEW_QUEUE_PREFIX}*"): (
                    "Queues each unsure row as review/queue/b-<batch id>-<key hash>.json."
                ),
                bucket.arn_for_objects(f"{REVIEW_DECISIONS_PREFIX}*"): (
                    "Checks whether an unsure row's item was already decided (HEAD)."
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

    def _acknowledge(self, role: iam.IRole) -> None:
        acknowledge_wildcards(
            role.node.find_child("DefaultPolicy"),
            {
                "*": "Step Functions log delivery and X-Ray actions support no resource-level permissions.",
                job_arn(
                    self, self._config
                ): "Job names are computed per execution and attempt; scoped to this stack's prefix.",
                f"{self.decode_function.function_arn}:*": (
                    "Invoking the decode function's versions and aliases (CDK's LambdaInvoke grant)."
                ),
                self._endings.status_resource: (
                    "Writes only status.json of the batch it runs, under batches/<batch id>/."
                ),
                model_arn(self, self._config): (
                    "Each run creates and deletes its own Model, named after the execution "
                    "like its transform job; scoped to this stack's prefix."
                ),
                package_arn(self, self._config): (
                    "CreateModel reads the released version, which the release record names: "
                    "any version of this deployment's model package group."
                ),
            },
        )
