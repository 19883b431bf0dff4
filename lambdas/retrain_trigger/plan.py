"""What a trigger starts: the execution input of the training state machine, and its name.

The input contract of the training state machine (stacks/training/inputs.py):
`{"dataset": "<key prefix ending with />"}`, plus, for incremental training from
registered version N, `"initial_model": {"version": "N", "model_data": "s3://..."}`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from retrain_trigger.datasets import Dataset, LabelsUnavailableError
from retrain_trigger.serving import ServedVersion

DATASET, SCHEDULE = "dataset", "schedule"
# StartExecution names: at most 80 characters; only 0-9, A-Z, a-z, - and _ keep the
# execution's CloudWatch logging working.
# https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
MAX_NAME = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclasses.dataclass(frozen=True)
class Plan:
    trigger: str  # DATASET or SCHEDULE
    dataset: str  # key prefix, ending with "/"
    reason: str  # why this training, said in the log
    version: str = ""  # the serving version an incremental training starts from
    model_data: str = ""

    @property
    def mode(self) -> str:
        return "incremental" if self.version else "full"

    def execution_input(self) -> dict[str, Any]:
        document: dict[str, Any] = {"dataset": self.dataset}
        if self.version:
            document["initial_model"] = {"version": self.version, "model_data": self.model_data}
        return document

    def execution_name(self, when: dt.datetime) -> str:
        """e.g. retrain-schedule-20270104T030000Z-incremental-v3-grocery-2027-01 (<= 80)."""
        stamp = when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        mode = f"incremental-v{self.version}" if self.version else "full"
        dataset = self.dataset.removeprefix("datasets/").rstrip("/")
        name = f"retrain-{self.trigger}-{stamp}-{mode}-{dataset}"
        return re.sub("-{2,}", "-", _UNSAFE.sub("-", name))[:MAX_NAME].rstrip("-_")


def event_time(text: str | None) -> dt.datetime:
    """An event's ISO-8601 time (EventBridge `time`, Scheduler's scheduled time); else now.

    The same event delivered twice gets the same execution name, and StartExecution with
    the same name and input as an open execution starts nothing new.
    """
    try:
        when = dt.datetime.fromisoformat(str(text))
    except ValueError:
        return dt.datetime.now(dt.UTC)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def dataset_plan(prefix: str) -> Plan:
    return Plan(DATASET, prefix, f"a new dataset was uploaded: {prefix}manifest.json")


def schedule_plan(
    dataset: Dataset,
    served: ServedVersion | None,
    *,
    incremental: bool,
    dataset_labels: Callable[[], list[str]],
    version_labels: Callable[[ServedVersion], list[str]],
) -> Plan:
    """Incremental from the serving version when allowed and the labels match; else full."""
    newest = (
        f"the newest dataset is {dataset.prefix} (uploaded {dataset.uploaded:%Y-%m-%d %H:%M} UTC)"
    )

    why, count = _why_not_incremental(
        served,
        incremental=incremental,
        dataset_labels=dataset_labels,
        version_labels=version_labels,
    )
    if why or served is None:
        return Plan(SCHEDULE, dataset.prefix, f"{newest}; full training: {why}")
    return Plan(
        SCHEDULE,
        dataset.prefix,
        f"{newest}; incremental training from the serving version {served.version}: "
        f"its {count} labels equal the dataset's",
        version=served.version,
        model_data=served.model_data,
    )


def _why_not_incremental(
    served: ServedVersion | None,
    *,
    incremental: bool,
    dataset_labels: Callable[[], list[str]],
    version_labels: Callable[[ServedVersion], list[str]],
) -> tuple[str, int]:
    """("", label count) when incremental training applies, else (the reason, 0)."""
    blockers = [
        (not incremental, "retrain_incremental is false"),
        (served is None, "no version is released yet"),
    ]
    if served is not None:
        blockers += [
            (not served.model_data, f"version {served.version} names no model artifact"),
            (
                not served.labels_uri,
                f"version {served.version} does not name its labels (no labels_uri)",
            ),
        ]
    for blocked, why in blockers:
        if blocked:
            return why, 0
    try:
        theirs, ours = version_labels(served), dataset_labels()
    except LabelsUnavailableError as error:
        return f"the labels cannot be compared: {error}", 0
    if theirs != ours:
        return _difference(served.version, theirs, ours), 0
    return "", len(theirs)


def _difference(version: str, theirs: list[str], ours: list[str]) -> str:
    added = sorted(set(ours) - set(theirs))
    removed = sorted(set(theirs) - set(ours))
    if not added and not removed:
        return f"the dataset orders its labels differently from version {version}"
    return (
        f"the dataset's labels differ from version {version}'s "
        f"(new: {', '.join(added[:5]) or '-'}; gone: {', '.join(removed[:5]) or '-'})"
    )
