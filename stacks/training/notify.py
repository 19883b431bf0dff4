"""The pipeline's two endings, both notified on the storage stack's SNS topic: every failure
goes to "Notify failure" -> one Fail state with the cause; a registered version goes to
"Notify success" -> "Model registered"."""

from __future__ import annotations

from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.config import Config
from stacks.names import model_package_group
from stacks.training.common import FAILURE, retry_throttling


def failure_path(scope: Construct, config: Config, topic: sns.ITopic) -> sfn.IChainable:
    """ "Notify failure" (its own errors still end in the Fail state) -> "Failed"."""
    failed = sfn.Fail(
        scope,
        "Failed",
        error="TrainingPipelineFailed",
        cause_path=sfn.JsonPath.format(
            "{}: {}",
            sfn.JsonPath.string_at(f"{FAILURE}.Error"),
            sfn.JsonPath.string_at(f"{FAILURE}.Cause"),
        ),
    )
    notify = tasks.SnsPublish(
        scope,
        "Notify failure",
        topic=topic,
        subject=f"{config.prefix}: training pipeline failed",
        message=sfn.TaskInput.from_json_path_at(
            sfn.JsonPath.format(
                "Training pipeline execution {} failed. {}: {}",
                sfn.JsonPath.execution_name,
                sfn.JsonPath.string_at(f"{FAILURE}.Error"),
                sfn.JsonPath.string_at(f"{FAILURE}.Cause"),
            )
        ),
        result_path=sfn.JsonPath.DISCARD,
    )
    retry_throttling(notify, "sns")
    notify.add_catch(failed, errors=["States.ALL"], result_path="$.notify_error")
    notify.next(failed)
    return notify


def success_path(scope: Construct, config: Config, topic: sns.ITopic) -> sfn.IChainable:
    """ "Notify success" -> "Model registered"; a failed e-mail does not undo the version."""
    notify = tasks.SnsPublish(
        scope,
        "Notify success",
        topic=topic,
        subject=success_subject(config),
        message=sfn.TaskInput.from_json_path_at(success_message(config)),
        result_path=sfn.JsonPath.DISCARD,
    )
    retry_throttling(notify, "sns")
    done = sfn.Succeed(scope, "Model registered")
    notify.add_catch(done, errors=["States.ALL"], result_path="$.notify_error")
    return notify.next(done)


def success_message(config: Config) -> str:
    """The success notification: the registered version, its metrics and provenance."""
    status = config.model_approval_status
    then = (
        "It is approved; `python -m grocery promote` serves it."
        if status == "Approved"
        else "It waits for approval: `python -m grocery models approve {}`."
    )
    text = (
        "A new model is registered as version {} of model package group "
        f"{model_package_group(config.prefix)} ({status}): validation:accuracy {{}} "
        "(threshold {}). Training job {}, artifact {}, labels {}, dataset {}."
    )
    fields = [
        "$.model_package.version",
        "$.validation_accuracy",
        "$.accuracy_threshold",
        "$.training_job",
        "$.artifact",
        "$.labels_uri",
        "$.dataset",
    ]
    if config.test_accuracy_threshold > 0:
        text += f" Test accuracy {{}} (threshold {config.test_accuracy_threshold}), report {{}}."
        fields += ["$.test.accuracy", "$.test.report_uri"]
    text += " " + then
    if status != "Approved":
        fields.append("$.model_package.version")
    return sfn.JsonPath.format(text, *(sfn.JsonPath.string_at(f) for f in fields))


def success_subject(config: Config) -> str:
    if config.model_approval_status == "Approved":
        return f"{config.prefix}: new model version approved"
    return f"{config.prefix}: new model version awaits approval"
