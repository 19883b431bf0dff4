"""Calls AWS services make on the app's behalf, derived from the resolved templates.

- every alarm action on an SNS topic: CloudWatch publishes as `cloudwatch.amazonaws.com`
  with the alarm as aws:SourceArn (AWS re:Post, "Why didn't I receive an SNS notification
  for my CloudWatch alarm trigger?", https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger);
- every EventBridge rule target and dead-letter queue: `events.amazonaws.com` sends (or
  invokes a function) with the rule as aws:SourceArn;
- every EventBridge Scheduler schedule: its role invokes the target and sends dead letters;
- every KMS-encrypted log group: `logs.<region>.amazonaws.com` with the log group in
  kms:EncryptionContext:aws:logs:arn
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html);
- every SQS event source mapping: Lambda polls with the function's role;
- every Lambda permission: its principal invokes the function from its source ARN.

`kms_calls` adds what S3, SNS and SQS ask KMS on a caller's behalf when the target is
encrypted with a customer managed key (the caller needs the key permissions itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tests.access.calls import ALLOWED, Call
from tests.access.policies import AccessModel
from tests.access.templates import ACCOUNT, PARTITION, REGION

# What a Lambda SQS event source does with the function's role (Lambda developer guide,
# "Execution role permissions" of "Using Lambda with Amazon SQS").
SQS_POLLING = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
# CloudWatch Logs encrypts and decrypts a log group's events with these (encrypt-log-data-kms).
LOGS_KMS = ("kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt")


def _source(arn: str) -> dict[str, str]:
    return {"aws:SourceArn": arn, "aws:SourceAccount": ACCOUNT}


def _queue_arn_of_url(url: str) -> str:
    _, _, host, account, name = url.split("/")
    return f"arn:{PARTITION}:sqs:{host.split('.')[1]}:{account}:{name}"


def alarm_calls(model: AccessModel) -> Iterator[Call]:
    for stack, logical_id, resource in model.resources_of_type("AWS::CloudWatch::Alarm"):
        props = resource["Properties"]
        alarm_arn = model.resolver.stacks[stack].attributes[logical_id]["Arn"]
        path = model.paths.get((stack, logical_id), logical_id)
        actions = {
            *props.get("AlarmActions", []),
            *props.get("OKActions", []),
            *props.get("InsufficientDataActions", []),
        }
        for action in sorted(actions):
            if ":sns:" not in action:
                continue
            yield Call(
                id=f"{path} notifies {action.rsplit(':', 1)[1]}",
                who="service:cloudwatch.amazonaws.com",
                action="sns:Publish",
                resource=action,
                context=_source(alarm_arn),
                why="CloudWatch alarm action",
            )


def rule_calls(model: AccessModel) -> Iterator[Call]:
    for stack, logical_id, resource in model.resources_of_type("AWS::Events::Rule"):
        rule_arn = model.resolver.stacks[stack].attributes[logical_id]["Arn"]
        path = model.paths.get((stack, logical_id), logical_id)
        for target in resource["Properties"].get("Targets", []):
            destinations = [target["Arn"]]
            if "DeadLetterConfig" in target:
                destinations.append(target["DeadLetterConfig"]["Arn"])
            if ":states:" in target["Arn"] and "RoleArn" in target:
                # EventBridge starts the state machine with the target's role.
                role = model.role_named(target["RoleArn"].rsplit("/", 1)[1])
                yield Call(
                    id=f"{path} starts {target['Arn'].rsplit(':', 1)[1]}",
                    who=role.path,
                    action="states:StartExecution",
                    resource=target["Arn"],
                    why="EventBridge rule target (a state machine, with the target's role)",
                )
                destinations = destinations[1:]
            if destinations and ":lambda:" in destinations[0]:
                # EventBridge invokes a function through its resource policy (no role).
                yield Call(
                    id=f"{path} invokes {destinations[0].rsplit(':', 1)[1]}",
                    who="service:events.amazonaws.com",
                    action="lambda:InvokeFunction",
                    resource=destinations[0],
                    context=_source(rule_arn),
                    why="EventBridge rule target (a Lambda function)",
                )
                destinations = destinations[1:]
            for arn in destinations:
                if ":sqs:" not in arn:
                    raise ValueError(f"{path}: no calls known for target {arn}")
                yield Call(
                    id=f"{path} delivers to {arn.rsplit(':', 1)[1]}",
                    who="service:events.amazonaws.com",
                    action="sqs:SendMessage",
                    resource=arn,
                    context=_source(rule_arn),
                    why="EventBridge rule target (or its dead-letter queue)",
                )


def schedule_calls(model: AccessModel) -> Iterator[Call]:
    """EventBridge Scheduler calls its templated target, and sends dead letters, with the
    schedule's execution role (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-templated.html,
    configuring-schedule-dlq.html)."""
    for stack, logical_id, resource in model.resources_of_type("AWS::Scheduler::Schedule"):
        target = resource["Properties"]["Target"]
        path = model.paths.get((stack, logical_id), logical_id)
        role = _role_path(model, target["RoleArn"])
        if ":lambda:" not in target["Arn"]:
            raise ValueError(f"{path}: no calls known for schedule target {target['Arn']}")
        yield Call(
            id=f"{path} invokes {target['Arn'].rsplit(':', 1)[-1]}",
            who=role,
            action="lambda:InvokeFunction",
            resource=target["Arn"],
            why="EventBridge Scheduler templated target (Lambda Invoke) with the schedule's role",
        )
        if "DeadLetterConfig" in target:
            yield Call(
                id=f"{path} sends a dead letter",
                who=role,
                action="sqs:SendMessage",
                resource=target["DeadLetterConfig"]["Arn"],
                why="EventBridge Scheduler dead-letter queue, with the schedule's role",
            )


def log_group_calls(model: AccessModel) -> Iterator[Call]:
    for stack, logical_id, resource in model.resources_of_type("AWS::Logs::LogGroup"):
        key = resource["Properties"].get("KmsKeyId")
        if not key:
            continue
        arn = model.resolver.stacks[stack].attributes[logical_id]["Arn"].removesuffix(":*")
        path = model.paths.get((stack, logical_id), logical_id)
        for action in LOGS_KMS:
            yield Call(
                id=f"{path} log events {action}",
                who=f"service:logs.{REGION}.amazonaws.com",
                action=action,
                resource=key,
                context={"kms:EncryptionContext:aws:logs:arn": arn},
                why="CloudWatch Logs encrypts the log group with the data key",
            )


def event_source_calls(model: AccessModel) -> Iterator[Call]:
    functions = {
        props["Properties"].get("FunctionName", logical_id): (stack, logical_id, props)
        for stack, logical_id, props in model.resources_of_type("AWS::Lambda::Function")
    }
    by_name = {model.resolver.stacks[s].refs[lid]: p for s, lid, p in functions.values()}
    for stack, logical_id, resource in model.resources_of_type("AWS::Lambda::EventSourceMapping"):
        props = resource["Properties"]
        queue = props["EventSourceArn"]
        function = by_name[props["FunctionName"]]
        role = model.role_named(function["Properties"]["Role"].rsplit("/", 1)[1])
        path = model.paths.get((stack, logical_id), logical_id)
        for action in SQS_POLLING:
            yield Call(
                id=f"{path} {action}",
                who=role.path,
                action=action,
                resource=queue,
                why="Lambda polls the queue with the function's role",
            )


def permission_calls(model: AccessModel) -> Iterator[Call]:
    for stack, logical_id, resource in model.resources_of_type("AWS::Lambda::Permission"):
        props = resource["Properties"]
        principal = props["Principal"]
        context = {"aws:SourceAccount": props.get("SourceAccount", ACCOUNT)}
        if "SourceArn" in props:
            # A concrete request ARN inside the permitted pattern.
            context["aws:SourceArn"] = props["SourceArn"].replace("*", "v1")
        function = props["FunctionName"]
        if not function.startswith("arn:"):
            function = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{function}"
        yield Call(
            id=f"{model.paths.get((stack, logical_id), logical_id)}",
            who=f"service:{principal}",
            action=props["Action"],
            resource=function,
            context=context,
            why="Lambda permission (resource policy) of the function",
        )


def trust_calls(model: AccessModel) -> Iterator[Call]:
    """Each service principal a role trusts assumes it (with this account as its source;
    Step Functions also names the state machine as aws:SourceArn)."""
    machines = {
        resource["Properties"]["RoleArn"]: model.resolver.stacks[stack].refs[logical_id]
        for stack, logical_id, resource in model.resources_of_type(
            "AWS::StepFunctions::StateMachine"
        )
    }
    for role in model.roles.values():
        context = {"aws:SourceAccount": ACCOUNT}
        if role.arn in machines:
            context["aws:SourceArn"] = machines[role.arn]
        for statement in model.resource_policy(role.arn)["Statement"]:
            services = statement.get("Principal", {}).get("Service", [])
            for service in [services] if isinstance(services, str) else services:
                yield Call(
                    id=f"{service} assumes {role.path}",
                    who=f"service:{service}",
                    action="sts:AssumeRole",
                    resource=role.arn,
                    context=context,
                    why="role trust policy",
                )


def _role_path(model: AccessModel, role_arn: str) -> str:
    return model.role_named(role_arn.rsplit("/", 1)[1]).path


def runtime_calls(model: AccessModel) -> Iterator[Call]:
    """What every function and state machine does with its role: logs and X-Ray traces."""
    for stack, logical_id, resource in model.resources_of_type("AWS::Lambda::Function"):
        props = resource["Properties"]
        path = model.paths.get((stack, logical_id), logical_id)
        who = _role_path(model, props["Role"])
        group = props.get("LoggingConfig", {}).get("LogGroup")
        if group:
            stream = f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:s1"
            for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
                yield Call(f"{path} {action}", who, action, stream, why="function logs")
        if props.get("TracingConfig", {}).get("Mode") == "Active":
            yield Call(f"{path} traces", who, "xray:PutTraceSegments", "*", why="X-Ray")
    for stack, logical_id, resource in model.resources_of_type("AWS::StepFunctions::StateMachine"):
        props = resource["Properties"]
        path = model.paths.get((stack, logical_id), logical_id)
        who = _role_path(model, props["RoleArn"])
        if props.get("LoggingConfiguration"):
            # Step Functions delivers logs through CloudWatch Logs vended log delivery
            # (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html).
            for action in ("logs:CreateLogDelivery", "logs:PutResourcePolicy"):
                yield Call(f"{path} {action}", who, action, "*", why="execution logging")
        if props.get("TracingConfiguration", {}).get("Enabled"):
            yield Call(f"{path} traces", who, "xray:PutTraceSegments", "*", why="X-Ray")


def derived_service_calls(model: AccessModel) -> list[Call]:
    return [
        *alarm_calls(model),
        *rule_calls(model),
        *schedule_calls(model),
        *log_group_calls(model),
        *event_source_calls(model),
        *permission_calls(model),
        *trust_calls(model),
        *runtime_calls(model),
    ]


# --- KMS calls made on a caller's behalf -------------------------------------------------------


def _bucket_keys(model: AccessModel) -> dict[str, str]:
    keys = {}
    for stack, logical_id, resource in model.resources_of_type("AWS::S3::Bucket"):
        rules = (
            resource["Properties"]
            .get("BucketEncryption", {})
            .get("ServerSideEncryptionConfiguration", [])
        )
        for rule in rules:
            key = rule.get("ServerSideEncryptionByDefault", {}).get("KMSMasterKeyID")
            if key:
                keys[model.resolver.stacks[stack].refs[logical_id]] = key
    return keys


def _encrypted(model: AccessModel, type_name: str, arn_attribute: str) -> dict[str, str]:
    keys = {}
    for stack, logical_id, resource in model.resources_of_type(type_name):
        key = resource["Properties"].get("KmsMasterKeyId")
        if key:
            attributes = model.resolver.stacks[stack].attributes[logical_id]
            keys[attributes[arn_attribute]] = key
    return keys


def _kms_needs(call: Call, model: AccessModel, caches: dict[str, dict[str, str]]) -> list[tuple]:
    """(KMS action, key, context) for one call; S3 with bucket keys: the bucket is the context
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html)."""
    service = call.action.split(":")[0]
    if service == "s3" and call.action in ("s3:GetObject", "s3:PutObject"):
        bucket = call.resource.split(":::", 1)[1].split("/", 1)[0]
        key = caches["s3"].get(bucket)
        context = {
            "kms:ViaService": f"s3.{REGION}.amazonaws.com",
            "kms:EncryptionContext:aws:s3:arn": f"arn:{PARTITION}:s3:::{bucket}",
        }
        action = "kms:Decrypt" if call.action == "s3:GetObject" else "kms:GenerateDataKey"
        return [(action, key, context)] if key else []
    if call.action == "sns:Publish" and call.resource in caches["sns"]:
        context = {"kms:ViaService": f"sns.{REGION}.amazonaws.com"}
        return [
            (a, caches["sns"][call.resource], context)
            for a in ("kms:GenerateDataKey", "kms:Decrypt")
        ]
    if service == "sqs" and call.resource in caches["sqs"]:
        context = {
            "kms:ViaService": f"sqs.{REGION}.amazonaws.com",
            "kms:EncryptionContext:aws:sqs:arn": call.resource,
        }
        action = {"sqs:SendMessage": "kms:GenerateDataKey", "sqs:ReceiveMessage": "kms:Decrypt"}
        return (
            [(action[call.action], caches["sqs"][call.resource], context)]
            if call.action in action
            else []
        )
    return []


def kms_calls(calls: Iterable[Call], model: AccessModel) -> list[Call]:
    """The KMS calls behind each expected S3/SNS/SQS call on a customer-key-encrypted target."""
    caches = {
        "s3": _bucket_keys(model),
        "sns": _encrypted(model, "AWS::SNS::Topic", "TopicArn"),
        "sqs": _encrypted(model, "AWS::SQS::Queue", "Arn"),
    }
    extra = []
    for call in calls:
        if call.expect != ALLOWED:
            continue
        for action, key, context in _kms_needs(call, model, caches):
            service_context: dict[str, Any] = dict(context)
            if call.who.startswith("service:"):
                # A service principal's KMS request carries its source, like its first call.
                service_context.update(
                    {k: v for k, v in call.context.items() if k.startswith("aws:Source")}
                )
            extra.append(
                Call(
                    id=f"{call.id} + {action}",
                    who=call.who,
                    action=action,
                    resource=key,
                    context=service_context,
                    why=f"{call.action} on an encrypted target asks KMS ({call.why})".strip(),
                )
            )
    return extra
