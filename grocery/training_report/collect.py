"""One training report from what the operator names: a training job, a hyperparameter tuning
job, or a model version of `<prefix>-classifier` (whose metadata names its training job).

A training job launched by a tuning job carries TuningJobArn in DescribeTrainingJob
(https://docs.aws.amazon.com/cli/latest/reference/sagemaker/describe-training-job.html), so a
version trained by a tuning run gets the table of that run's training jobs too. For a tuning
job the per-epoch part is about its best training job (BestTrainingJob).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from grocery.errors import FAILED, CommandError
from grocery.models import find
from grocery.training_report import epochs, sources
from grocery.training_report.cost import Billing, billing
from stacks.names import METADATA_TRAINING_JOB, model_package_group


@dataclass(frozen=True)
class Clients:
    sagemaker: Any
    logs: Any
    cloudwatch: Any
    region: str


@dataclass(frozen=True)
class JobReport:
    name: str
    status: str
    history: epochs.History
    billing: Billing
    final_metrics: dict[str, float]
    hyperparameters: dict[str, str]
    created: datetime | None
    failure: str


@dataclass(frozen=True)
class Trial:
    """One training job of a tuning run (its TrainingJobSummary, plus its billing)."""

    name: str
    status: str
    objective: float | None
    hyperparameters: dict[str, str]
    billing: Billing | None  # None when DescribeTrainingJob no longer knows the job


@dataclass(frozen=True)
class TuningReport:
    name: str
    status: str
    strategy: str
    objective: str  # e.g. "validation:accuracy (Maximize)"
    best_job: str | None
    trials: tuple[Trial, ...]

    @property
    def billed_instance_seconds(self) -> int:
        return sum((t.billing.billed_instance_seconds or 0) for t in self.trials if t.billing)

    @property
    def cost(self) -> float | None:
        costs = [t.billing.cost for t in self.trials if t.billing]
        return None if not costs or any(c is None for c in costs) else sum(costs)  # type: ignore[misc]


@dataclass(frozen=True)
class Report:
    subject: str  # what the operator asked for, in words
    job: JobReport | None
    tuning: TuningReport | None


def history(clients: Clients, description: dict[str, Any], now: datetime) -> epochs.History:
    name = description["TrainingJobName"]
    lines, streams = sources.log_lines(clients.logs, name)
    found = epochs.from_log_messages(line.message for line in lines)
    if found:
        where = ", ".join(streams)
        return epochs.History(found, epochs.LOGS, f"CloudWatch Logs {sources.LOG_GROUP}: {where}")
    logs_said = (
        f"no `Epoch[n] Train-accuracy=` / `Validation-accuracy=` lines in {len(streams)} log "
        f"stream(s) of {sources.LOG_GROUP}"
        if streams
        else f"no log streams {name}/* in {sources.LOG_GROUP} (expired or never written)"
    )
    start = description.get("TrainingStartTime")
    if start is None:
        return epochs.History((), epochs.NONE, f"{logs_said}; the job never started training")
    end = description.get("TrainingEndTime") or now
    series = sources.metric_series(clients.cloudwatch, name, start, end, now)
    found = epochs.from_metric_series(series.get("train", []), series.get("validation", []))
    if found:
        period = sources.metric_period(start, now)
        return epochs.History(
            found,
            epochs.METRICS,
            f"{logs_said}; values from CloudWatch metrics {sources.METRIC_NAMESPACE} "
            f"(one {period}-s average per point, numbered in time order: epochs shorter than "
            f"{period} s are merged)",
        )
    return epochs.History(
        (),
        epochs.NONE,
        f"{logs_said}, and no train:accuracy / validation:accuracy data points in CloudWatch "
        f"metrics {sources.METRIC_NAMESPACE}",
    )


def job_report(
    clients: Clients, description: dict[str, Any], price: float | None, now: datetime
) -> JobReport:
    finals = {
        m["MetricName"]: float(m["Value"])
        for m in description.get("FinalMetricDataList", [])
        if "MetricName" in m and "Value" in m
    }
    return JobReport(
        name=description["TrainingJobName"],
        status=description.get("TrainingJobStatus", "?"),
        history=history(clients, description, now),
        billing=billing(description, price),
        final_metrics=finals,
        hyperparameters=dict(description.get("HyperParameters", {})),
        created=description.get("CreationTime"),
        failure=description.get("FailureReason", ""),
    )


def tuning_report(
    clients: Clients, description: dict[str, Any], price: float | None
) -> TuningReport:
    name = description["HyperParameterTuningJobName"]
    config = description.get("HyperParameterTuningJobConfig", {})
    objective = config.get("HyperParameterTuningJobObjective", {})
    trials = []
    for summary in sources.tuning_training_jobs(clients.sagemaker, name):
        child = sources.training_job(clients.sagemaker, summary["TrainingJobName"])
        final = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
        trials.append(
            Trial(
                name=summary["TrainingJobName"],
                status=summary.get("TrainingJobStatus", "?"),
                objective=float(final["Value"]) if "Value" in final else None,
                hyperparameters=dict(summary.get("TunedHyperParameters", {})),
                billing=billing(child, price) if child else None,
            )
        )
    best = description.get("BestTrainingJob", {}).get("TrainingJobName")
    return TuningReport(
        name=name,
        status=description.get("HyperParameterTuningJobStatus", "?"),
        strategy=config.get("Strategy", "?"),
        objective=f"{objective.get('MetricName', '?')} ({objective.get('Type', '?')})",
        best_job=best,
        trials=tuple(trials),
    )


def _tuning_of(clients: Clients, description: dict[str, Any], price: float | None):
    arn = description.get("TuningJobArn")
    if not arn:
        return None
    tuning = sources.tuning_job(clients.sagemaker, sources.tuning_job_name(arn))
    return tuning_report(clients, tuning, price) if tuning else None


def _version_job(clients: Clients, prefix: str, number: int) -> str:
    try:
        version = find(clients.sagemaker, prefix, number)
    except CommandError as error:  # no such version: the lookup ran and found nothing
        raise CommandError(str(error), FAILED) from None
    job = version.metadata.get(METADATA_TRAINING_JOB, "")
    if not job:
        raise CommandError(
            f"version {number} of {model_package_group(prefix)} has no {METADATA_TRAINING_JOB} "
            "metadata: see `python -m grocery models show " + str(number) + "`",
            FAILED,
        )
    return job


def collect(
    clients: Clients, target: str, *, prefix: str, price: float | None, now: datetime
) -> Report:
    """The report for `target`: a version number, a training job or a tuning job name."""
    if target.isdigit():
        name = _version_job(clients, prefix, int(target))
        subject = f"model version {target} of {model_package_group(prefix)}"
        description = sources.training_job(clients.sagemaker, name)
        if description is None:
            raise CommandError(
                f"{subject} was trained by {name}, which SageMaker no longer knows in "
                f"{clients.region}",
                FAILED,
            )
        return Report(
            subject,
            job_report(clients, description, price, now),
            _tuning_of(clients, description, price),
        )
    description = sources.training_job(clients.sagemaker, target)
    if description is not None:
        return Report(
            f"training job {target}",
            job_report(clients, description, price, now),
            _tuning_of(clients, description, price),
        )
    tuning = sources.tuning_job(clients.sagemaker, target)
    if tuning is None:
        raise CommandError(
            f"no training job or hyperparameter tuning job named {target!r} in "
            f"{clients.region}: check the name (aws sagemaker list-training-jobs) and "
            "AWS_REGION, or pass a model version number (python -m grocery models list)",
            FAILED,
        )
    report = tuning_report(clients, tuning, price)
    best = sources.training_job(clients.sagemaker, report.best_job) if report.best_job else None
    job = job_report(clients, best, price, now) if best else None
    return Report(f"hyperparameter tuning job {target}", job, report)
