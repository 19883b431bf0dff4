"""One CloudWatch dashboard for the whole system.

The construct takes the resources to watch as typed, keyword-only inputs, each
optional, so it can be built (and tested) with any subset of the stacks. Rows:

1. alarms of the whole app (their current state);
2. training: pipeline executions and the algorithm's accuracy metrics;
3. real-time endpoint: invocations and errors, model latency, instance count, utilization;
4. batch classification: pipeline (transform job) executions and durations, queue and DLQ depth;
5. Lambda functions: errors, duration, invocations and throttles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

# The variant name that SageMaker endpoint configurations get by convention (and ours use).
DEFAULT_VARIANT_NAME = "AllTraffic"
SAGEMAKER_NAMESPACE = "AWS/SageMaker"
ENDPOINT_INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
TRAINING_JOBS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
# The built-in image-classification algorithm publishes these without metric definitions.
TRAINING_METRICS = ("train:accuracy", "validation:accuracy")

FULL, HALF, THIRD, QUARTER = 24, 12, 8, 6
HEIGHT = 6
FIVE_MINUTES = Duration.minutes(5)
ONE_HOUR = Duration.hours(1)


def endpoint_metric(
    metric_name: str,
    *,
    endpoint_name: str,
    variant_name: str,
    statistic: str,
    namespace: str = SAGEMAKER_NAMESPACE,
    label: str | None = None,
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=metric_name,
        dimensions_map={"EndpointName": endpoint_name, "VariantName": variant_name},
        statistic=statistic,
        period=FIVE_MINUTES,
        label=label or metric_name,
    )


def _executions(machine: sfn.IStateMachine, period: Duration) -> list[cloudwatch.IMetric]:
    options = {"period": period, "statistic": "Sum"}
    return [
        machine.metric_started(label="started", **options),
        machine.metric_succeeded(label="succeeded", color=cloudwatch.Color.GREEN, **options),
        machine.metric_failed(label="failed", color=cloudwatch.Color.RED, **options),
        machine.metric_timed_out(label="timed out", color=cloudwatch.Color.ORANGE, **options),
        machine.metric_aborted(label="aborted", color=cloudwatch.Color.GREY, **options),
    ]


def _execution_time(machine: sfn.IStateMachine, period: Duration) -> list[cloudwatch.IMetric]:
    # ExecutionTime is in milliseconds; show minutes. Ids must differ within one graph.
    return [
        cloudwatch.MathExpression(
            expression=f"{statistic.lower()} / 60000",
            using_metrics={
                statistic.lower(): machine.metric_time(statistic=statistic, period=period)
            },
            label=f"{statistic.lower()} (minutes)",
            period=period,
        )
        for statistic in ("Average", "Maximum")
    ]


class OperationsDashboard(Construct):
    """The dashboard; `self.dashboard` is the CloudWatch dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        training_state_machine: sfn.IStateMachine | None = None,
        training_job_prefix: str | None = None,
        endpoint_name: str | None = None,
        endpoint_variant_name: str = DEFAULT_VARIANT_NAME,
        batch_state_machine: sfn.IStateMachine | None = None,
        queue: sqs.IQueue | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
        functions: Mapping[str, lambda_.IFunction | str] | None = None,
        alarms: Sequence[cloudwatch.IAlarm] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            default_interval=Duration.days(7),
        )
        self.missing: list[str] = []
        self._add(
            cloudwatch.TextWidget(
                markdown=f"# {dashboard_name}\n"
                "Training, real-time endpoint, batch classification and Lambda health of the "
                "grocery classifier. Alarms notify the project's SNS topic "
                "(`alarm_email` subscribes an address). See docs/operations.md.",
                width=FULL,
                height=2,
            )
        )
        if alarms:
            self._add(
                cloudwatch.AlarmStatusWidget(
                    title="Alarms",
                    alarms=list(alarms),
                    sort_by=cloudwatch.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
                    width=FULL,
                    height=3,
                )
            )
        self._training(training_state_machine, training_job_prefix)
        self._endpoint(endpoint_name, endpoint_variant_name)
        self._batch(batch_state_machine, queue, dead_letter_queue)
        self._functions(dict(functions or {}))

    # ------------------------------------------------------------------ rows

    def _add(self, *widgets: cloudwatch.IWidget) -> None:
        self.dashboard.add_widgets(*widgets)

    def _section(self, title: str, missing: bool) -> bool:
        if missing:
            self.missing.append(title)
            return False
        self._add(cloudwatch.TextWidget(markdown=f"## {title}", width=FULL, height=1))
        return True

    def _training(self, machine: sfn.IStateMachine | None, job_prefix: str | None) -> None:
        if not self._section("Training", machine is None):
            return
        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Training pipeline executions (per hour)",
                left=_executions(machine, ONE_HOUR),
                width=THIRD,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Training pipeline duration",
                left=_execution_time(machine, ONE_HOUR),
                width=THIRD,
                height=HEIGHT,
            ),
        ]
        # Training jobs publish per job (dimension Host = "<job name>/algo-1"): a search finds them.
        host = f" Host={job_prefix}" if job_prefix else ""
        widgets.append(
            cloudwatch.GraphWidget(
                title="Training job accuracy (per job)",
                left=[
                    cloudwatch.SearchExpression(
                        expression=(
                            f"SEARCH('{{{TRAINING_JOBS_NAMESPACE},Host}} "
                            f"MetricName=\"{metric}\"{host}', 'Maximum', 300)"
                        ),
                        label=metric,
                        period=FIVE_MINUTES,
                    )
                    for metric in TRAINING_METRICS
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=1, show_units=False),
                width=THIRD,
                height=HEIGHT,
            )
        )
        self._add(*widgets)

    def _endpoint(self, endpoint_name: str | None, variant_name: str) -> None:
        if not self._section("Real-time endpoint", endpoint_name is None):
            return
        names = {"endpoint_name": endpoint_name, "variant_name": variant_name}
        invocations = endpoint_metric("Invocations", statistic="Sum", **names)
        per_instance = endpoint_metric("InvocationsPerInstance", statistic="Sum", **names)
        latency = {
            statistic: endpoint_metric("ModelLatency", statistic=statistic, **names)
            for statistic in ("Average", "p99")
        }
        self._add(
            cloudwatch.GraphWidget(
                title=f"Invocations and errors ({variant_name})",
                left=[invocations],
                right=[
                    endpoint_metric(
                        "Invocation4XXErrors", statistic="Sum", label="4XX errors", **names
                    ),
                    endpoint_metric(
                        "Invocation5XXErrors", statistic="Sum", label="5XX errors", **names
                    ),
                    endpoint_metric(
                        "InvocationModelErrors", statistic="Sum", label="model errors", **names
                    ),
                ],
                width=QUARTER,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Model latency (ms)",
                # ModelLatency is reported in microseconds.
                left=[
                    cloudwatch.MathExpression(
                        expression=f"latency{statistic} / 1000",
                        using_metrics={f"latency{statistic}": metric},
                        label=f"{statistic.lower()} (ms)",
                        period=FIVE_MINUTES,
                    )
                    for statistic, metric in latency.items()
                ],
                width=QUARTER,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Instances in service (while there is traffic)",
                # Each request adds 1/instances to InvocationsPerInstance: the ratio of the
                # sums is the instance count (no data while the endpoint is idle).
                left=[
                    cloudwatch.MathExpression(
                        expression="invocations / perInstance",
                        using_metrics={"invocations": invocations, "perInstance": per_instance},
                        label="instances",
                        period=FIVE_MINUTES,
                    )
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=QUARTER,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Instance utilization (%)",
                left=[
                    endpoint_metric(
                        metric,
                        statistic="Average",
                        namespace=ENDPOINT_INSTANCE_NAMESPACE,
                        **names,
                    )
                    for metric in ("CPUUtilization", "MemoryUtilization", "DiskUtilization")
                ],
                width=QUARTER,
                height=HEIGHT,
            ),
        )

    def _batch(
        self,
        machine: sfn.IStateMachine | None,
        queue: sqs.IQueue | None,
        dead_letter_queue: sqs.IQueue | None,
    ) -> None:
        if not self._section(
            "Batch classification", machine is None and queue is None and dead_letter_queue is None
        ):
            return
        widgets: list[cloudwatch.IWidget] = []
        if machine is not None:
            widgets += [
                cloudwatch.GraphWidget(
                    title="Batch pipeline (transform job) executions",
                    left=_executions(machine, FIVE_MINUTES),
                    width=THIRD,
                    height=HEIGHT,
                ),
                cloudwatch.GraphWidget(
                    title="Batch pipeline duration (upload batch to results)",
                    left=_execution_time(machine, FIVE_MINUTES),
                    width=THIRD,
                    height=HEIGHT,
                ),
            ]
        else:
            self.missing.append("Batch state machine")
        queues: list[cloudwatch.IMetric] = []
        if queue is not None:
            queues += [
                queue.metric_approximate_number_of_messages_visible(
                    label="uploads waiting", statistic="Maximum", period=FIVE_MINUTES
                ),
                queue.metric_approximate_age_of_oldest_message(
                    label="oldest upload (s)", statistic="Maximum", period=FIVE_MINUTES
                ),
            ]
        if dead_letter_queue is not None:
            queues.append(
                dead_letter_queue.metric_approximate_number_of_messages_visible(
                    label="DLQ depth",
                    statistic="Maximum",
                    period=FIVE_MINUTES,
                    color=cloudwatch.Color.RED,
                )
            )
        if queues:
            widgets.append(
                cloudwatch.GraphWidget(
                    title="Upload queue and dead-letter queue",
                    left=queues,
                    width=THIRD,
                    height=HEIGHT,
                )
            )
        self._add(*widgets)

    def _functions(self, functions: dict[str, lambda_.IFunction | str]) -> None:
        """`functions`: label -> function, or the fixed name of a function in another stack."""
        if not self._section("Lambda functions", not functions):
            return
        items = sorted(functions.items())

        def per_function(metric_name: str, statistic: str) -> list[cloudwatch.IMetric]:
            return [
                cloudwatch.Metric(
                    namespace="AWS/Lambda",
                    metric_name=metric_name,
                    dimensions_map={"FunctionName": function},
                    statistic=statistic,
                    period=FIVE_MINUTES,
                    label=name,
                )
                if isinstance(function, str)
                else function.metric(
                    metric_name, statistic=statistic, period=FIVE_MINUTES, label=name
                )
                for name, function in items
            ]

        self._add(
            cloudwatch.GraphWidget(
                title="Errors",
                left=per_function("Errors", "Sum"),
                width=THIRD,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Duration p99 (ms)",
                left=per_function("Duration", "p99"),
                width=THIRD,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Invocations (left) and throttles (right)",
                left=per_function("Invocations", "Sum"),
                right=per_function("Throttles", "Sum"),
                width=THIRD,
                height=HEIGHT,
            ),
        )
