"""The release state machine: serve the approved model package version (JSONPath ASL).

Input: the EventBridge event "SageMaker Model Package State Change" of this deployment's
group (`detail.ModelPackageArn`, `detail.ModelApprovalStatus`), or `{"ModelPackageArn":
"..."}` to release one approved version (`python -m grocery promote`, `models rollback`).

    read the release record -> choose the target:
      Approved version (not the released one)          -> that version
      Rejected version that is released                -> the newest approved version
      anything else                                    -> nothing to do
    -> describe it (must be Approved, in this group) -> compare its labels with the released
    ones -> write the release record -> UpdateStack of the serving stack (previous template,
    every parameter UsePreviousValue: the SSM-typed ones are read again) with the
    CloudFormation service role -> wait for the update -> check the endpoint's config serves
    `<group>-v<N>` -> write the approved-model pointer (the CLI's labels) -> notify.

A failure after the record was written restores it (the stack rolled back: the previous
version still serves) and is notified. Only SDK integrations: it runs as-is in moto.
"""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.names import APPROVED, NO_APPROVED_MODEL, REJECTED, model_package_group
from stacks.release import calls
from stacks.release.smoke import ServerlessSmoke
from stacks.serving.names import endpoint_name

FAILURE = "$.failure"
POLL, RUNNING = calls.POLL, calls.STACK_UPDATING


def _failure(scope: Construct, name: str, error: str, cause: str) -> sfn.Pass:
    return sfn.Pass(scope, name, parameters={"Error": error, "Cause": cause}, result_path=FAILURE)


class ReleaseWorkflow(Construct):
    """`self.start`: the first state. `c` gives the calls and their IAM (calls.py)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        c: calls.Calls,
        topic: sns.ITopic,
        artifacts: s3.IBucket,
        smoke_function: lambda_.IFunction | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.prefix, self.c, self.artifacts = prefix, c, artifacts
        # serving_mode=serverless only: the smoke request after "Serves the version?".
        self.smoke = (
            ServerlessSmoke(self, prefix=prefix, c=c, function=smoke_function, topic=topic)
            if smoke_function is not None
            else None
        )
        self.group = model_package_group(prefix)
        failed = sfn.Fail(
            self,
            "Release failed",
            error="ReleaseFailed",
            cause_path=sfn.JsonPath.format(
                "{}: {}",
                sfn.JsonPath.string_at("$.failure.Error"),
                sfn.JsonPath.string_at("$.failure.Cause"),
            ),
        )
        self.notify_failure = tasks.SnsPublish(
            self,
            "Notify failure",
            topic=topic,
            subject=f"{prefix}: model release failed",
            message=sfn.TaskInput.from_json_path_at(
                sfn.JsonPath.format(
                    "Release {} failed; the previous version keeps serving. {}: {}",
                    sfn.JsonPath.execution_name,
                    sfn.JsonPath.string_at("$.failure.Error"),
                    sfn.JsonPath.string_at("$.failure.Cause"),
                )
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        calls.retry(self.notify_failure)
        self.notify_failure.add_catch(failed, errors=["States.ALL"], result_path="$.notify_error")
        self.notify_failure.next(failed)
        restore_labels, restore_arn = c.restore_record(self)
        for state in (restore_labels, restore_arn):
            state.add_catch(
                self.notify_failure, errors=["States.ALL"], result_path="$.restore_error"
            )
        restore_labels.next(restore_arn).next(self.notify_failure)
        self.restore = restore_labels
        self.notify_success = tasks.SnsPublish(
            self,
            "Notify success",
            topic=topic,
            subject=f"{prefix}: model version released",
            message=sfn.TaskInput.from_json_path_at(
                sfn.JsonPath.format(
                    "Version {} of {} is released: endpoint {} serves model {}, and batch "
                    "classification uses it. {}",
                    sfn.JsonPath.string_at("$.target.version"),
                    self.group,
                    endpoint_name(prefix),
                    sfn.JsonPath.string_at("$.expected_model"),
                    sfn.JsonPath.string_at("$.labels.note"),
                )
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        calls.retry(self.notify_success)
        self.start = self._queue(self._request())

    def _queue(self, then: sfn.IChainable) -> sfn.IChainable:
        """One release at a time: wait while an older release of this deployment runs.

        Every execution lists the RUNNING ones and goes on only when it is the oldest, so
        releases queue in the order they started (two at once would both read the record
        and the second UpdateStack would fail on a stack that is updating).
        """
        running = self.c.running_releases(self)
        self._catch(running)
        wait = sfn.Wait(self, "Wait for the older release", time=sfn.WaitTime.duration(POLL))
        oldest = sfn.Pass(
            self,
            "Oldest running release",
            parameters={
                "arn.$": "States.ArrayGetItem($.queue.arns, States.MathAdd($.queue.count, -1))",
                "me.$": "$$.Execution.Id",
            },
            result_path="$.queue.oldest",
        )
        wait.next(running)
        # Eventually consistent: an execution may not list itself yet (count 0): ask again.
        oldest.next(
            sfn.Choice(self, "Oldest release?")
            .when(
                sfn.Condition.string_equals_json_path("$.queue.oldest.arn", "$.queue.oldest.me"),
                then,
            )
            .otherwise(wait)
        )
        return running.next(
            sfn.Choice(self, "Anything running?")
            .when(sfn.Condition.number_greater_than("$.queue.count", 0), oldest)
            .otherwise(wait)
        )

    def _catch(self, state, *, restore: bool = False) -> None:
        target = self.restore if restore else self.notify_failure
        state.add_catch(target, errors=["States.ALL"], result_path=FAILURE)

    # --- which version ------------------------------------------------------------------

    def _request(self) -> sfn.IChainable:
        from_event = sfn.Pass(
            self,
            "From event",
            parameters={
                "arn": sfn.JsonPath.string_at("$.detail.ModelPackageArn"),
                "status": sfn.JsonPath.string_at("$.detail.ModelApprovalStatus"),
            },
            result_path="$.request",
        )
        from_request = sfn.Pass(
            self,
            "From request",
            parameters={"arn": sfn.JsonPath.string_at("$.ModelPackageArn"), "status": APPROVED},
            result_path="$.request",
        )
        invalid = _failure(
            self,
            "Reject input",
            "InvalidInput",
            'The input must be a "SageMaker Model Package State Change" event or '
            '{"ModelPackageArn": "<an approved version of this group>"}.',
        ).next(self.notify_failure)
        read_arn, read_labels, shape = self.c.read_record(self)
        for state in (read_arn, read_labels):
            self._catch(state)
        from_event.next(read_arn)
        from_request.next(read_arn)
        read_arn.next(read_labels).next(shape).next(self._choose())
        return (
            sfn.Choice(self, "Event or request")
            .when(sfn.Condition.is_present("$.detail.ModelPackageArn"), from_event)
            .when(sfn.Condition.is_present("$.ModelPackageArn"), from_request)
            .otherwise(invalid)
        )

    def _choose(self) -> sfn.IChainable:
        status, arn, current = "$.request.status", "$.request.arn", "$.current.arn"
        describe = self._describe()
        this_one = sfn.Pass(
            self, "Release this version", parameters={"arn.$": arn}, result_path="$.target_ref"
        )
        this_one.next(describe)
        newest = self.c.newest_approved(self)
        self._catch(newest)
        none_left = _failure(
            self,
            "No approved version left",
            "NothingToRollBackTo",
            sfn.JsonPath.format(
                f"the released version {{}} was rejected but {self.group} has no other "
                "approved version: it keeps serving. Approve another version "
                "(python -m grocery models approve N) or destroy the serving stack.",
                sfn.JsonPath.string_at(arn),
            ),
        ).next(self.notify_failure)
        take_newest = (
            sfn.Pass(
                self,
                "Take the newest approved",
                parameters={"first.$": "$.approved.ModelPackageSummaryList[0]"},
                result_path="$.newest",
            )
            .next(
                sfn.Pass(
                    self,
                    "Release the newest approved",
                    parameters={"arn.$": "$.newest.first.ModelPackageArn"},
                    result_path="$.target_ref",
                )
            )
            .next(describe)
        )
        newest.next(
            sfn.Choice(self, "Any approved?")
            .when(sfn.Condition.is_present("$.approved.ModelPackageSummaryList[0]"), take_newest)
            .otherwise(none_left)
        )
        nothing = sfn.Succeed(self, "Nothing to release")
        return (
            sfn.Choice(self, "What to release")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals(status, APPROVED),
                    sfn.Condition.string_equals_json_path(arn, current),
                ),
                nothing,
            )
            .when(sfn.Condition.string_equals(status, APPROVED), this_one)
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals(status, REJECTED),
                    sfn.Condition.string_equals_json_path(arn, current),
                ),
                newest,
            )
            .otherwise(nothing)
        )

    def _describe(self) -> sfn.IChainable:
        describe = self.c.describe_target(self)
        self._catch(describe)
        not_approved = _failure(
            self,
            "Not an approved version",
            "NotApproved",
            sfn.JsonPath.format(
                f"model package {{}} is {{}} in group {{}}: only Approved versions of "
                f"{self.group} are released.",
                sfn.JsonPath.string_at("$.target.arn"),
                sfn.JsonPath.string_at("$.target.status"),
                sfn.JsonPath.string_at("$.target.group"),
            ),
        ).next(self.notify_failure)
        check = (
            sfn.Choice(self, "Approved here?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals("$.target.status", APPROVED),
                    sfn.Condition.string_equals("$.target.group", self.group),
                ),
                self._labels(),
            )
            .otherwise(not_approved)
        )
        return describe.next(check)

    # --- labels of the target and of the released version ---------------------------------

    def _labels(self) -> sfn.IChainable:
        read_new = self.c.read_labels(
            self, "Read new labels", "$.target.training_job", "$.new_labels"
        )
        self._catch(read_new)
        first = sfn.Pass(
            self,
            "First release",
            parameters={"note": "First release of this deployment."},
            result_path="$.labels",
        )
        describe_old = self.c.describe_released(self)
        read_old = self.c.read_labels(
            self, "Read released labels", "$.released.training_job", "$.old_labels"
        )
        for state in (describe_old, read_old):
            self._catch(state)
        compare = sfn.Pass(
            self,
            "Hash labels",
            parameters={
                "new.$": "States.Hash($.new_labels.body, 'MD5')",
                "old.$": "States.Hash($.old_labels.body, 'MD5')",
                "new_count.$": "States.ArrayLength(States.StringToJson($.new_labels.body))",
                "old_count.$": "States.ArrayLength(States.StringToJson($.old_labels.body))",
            },
            result_path="$.hashes",
        )
        same = sfn.Pass(
            self,
            "Same labels",
            parameters={"note": "Same labels as the version it replaces."},
            result_path="$.labels",
        )
        changed = sfn.Pass(
            self,
            "Labels changed",
            parameters={
                "note.$": "States.Format('The labels changed: {} classes before, {} now "
                "(version {} had other labels); the classify API and batch decode with the "
                "new labels.json.', $.hashes.old_count, $.hashes.new_count, $.released.version)"
            },
            result_path="$.labels",
        )
        record = self._record()
        for state in (first, same, changed):
            state.next(record)
        old_path = (
            describe_old.next(read_old)
            .next(compare)
            .next(
                sfn.Choice(self, "Labels differ?")
                .when(sfn.Condition.string_equals_json_path("$.hashes.new", "$.hashes.old"), same)
                .otherwise(changed)
            )
        )
        return read_new.next(
            sfn.Choice(self, "Released before?")
            .when(sfn.Condition.string_equals("$.current.arn", NO_APPROVED_MODEL), first)
            .otherwise(old_path)
        )

    # --- the release itself ------------------------------------------------------------------

    def _record(self) -> sfn.IChainable:
        labels, arn = self.c.write_record(self)
        for state in (labels, arn):
            self._catch(state, restore=True)
        update = self.c.update_stack(self)
        verify = self._verify()
        unchanged = sfn.Choice(self, "Nothing to update?").when(
            sfn.Condition.string_matches("$.failure.Cause", "*No updates are to be performed*"),
            verify,
        )
        unchanged.otherwise(self.restore)
        update.add_catch(unchanged, errors=["States.ALL"], result_path=FAILURE)
        wait = sfn.Wait(self, "Wait for the stack", time=sfn.WaitTime.duration(POLL))
        describe = self.c.describe_stack(self)
        self._catch(describe, restore=True)
        stack_failed = _failure(
            self,
            "Stack update failed",
            "ServingStackUpdateFailed",
            sfn.JsonPath.format(
                "the serving stack ended in {} (CloudFormation rolled it back: see its events; "
                "a blue/green update rolls back when an endpoint alarm fires while baking).",
                sfn.JsonPath.string_at("$.stack.stack.StackStatus"),
            ),
        ).next(self.restore)
        waiting = sfn.Condition.or_(
            *(sfn.Condition.string_equals("$.stack.stack.StackStatus", s) for s in RUNNING)
        )
        wait.next(describe).next(
            sfn.Choice(self, "Stack updated?")
            .when(
                sfn.Condition.string_equals("$.stack.stack.StackStatus", "UPDATE_COMPLETE"), verify
            )
            .when(waiting, wait)
            .otherwise(stack_failed)
        )
        return labels.next(arn).next(update).next(wait)

    def _verify(self) -> sfn.IChainable:
        expected = sfn.Pass(
            self,
            "Expected model",
            parameters={
                "name.$": f"States.Format('{self.group}-v{{}}', $.target.version)",
            },
            result_path="$.expected",
        )
        kept = {
            "request.$": "$.request",
            "current.$": "$.current",
            "target.$": "$.target",
            "labels.$": "$.labels",
            "expected_model.$": "$.expected.name",
        }
        if self.smoke:
            # The smoke request checks one probability per label of the new version.
            kept["label_count.$"] = "States.ArrayLength(States.StringToJson($.new_labels.body))"
        keep = sfn.Pass(self, "Keep expected model name", parameters=kept)
        endpoint, config = self.c.describe_endpoint(self)
        for state in (endpoint, config):
            self._catch(state, restore=True)
        wrong = _failure(
            self,
            "Endpoint does not serve it",
            "EndpointNotServing",
            sfn.JsonPath.format(
                f"the serving stack updated but endpoint {endpoint_name(self.prefix)} serves "
                "{}, not {}.",
                sfn.JsonPath.string_at("$.served.variant.ModelName"),
                sfn.JsonPath.string_at("$.expected_model"),
            ),
        ).next(self.restore)
        pointer_labels, pointer_model = self.c.write_pointer(self)
        for state in (pointer_labels, pointer_model):
            self._catch(state)
        done = sfn.Succeed(self, "Released")
        self.notify_success.add_catch(done, errors=["States.ALL"], result_path="$.notify_error")
        served = pointer_labels.next(pointer_model).next(self.notify_success).next(done)
        if self.smoke:
            served = self.smoke.chain(served)
        return (
            expected.next(keep)
            .next(endpoint)
            .next(config)
            .next(
                sfn.Choice(self, "Serves the version?")
                .when(
                    sfn.Condition.string_equals_json_path(
                        "$.served.variant.ModelName", "$.expected_model"
                    ),
                    served,
                )
                .otherwise(wrong)
            )
        )
