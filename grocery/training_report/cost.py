"""Duration, billable seconds, spot savings and cost of a training job (DescribeTrainingJob).

- Billed compute = BillableTimeInSeconds x ResourceConfig.InstanceCount; managed spot
  savings = 1 - BillableTimeInSeconds / TrainingTimeInSeconds (both formulas from the
  DescribeTrainingJob reference, `BillableTimeInSeconds`:
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html).
- Cost = billed hours x the instance's on-demand price: the spot discount is already in the
  billable seconds (docs/costs.md, "Training").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from grocery.training_report import prices


@dataclass(frozen=True)
class Billing:
    instance_type: str
    instance_count: int
    spot: bool
    training_seconds: int | None
    billable_seconds: int | None
    started: datetime | None
    ended: datetime | None
    price_per_hour: float | None
    price_source: str  # where price_per_hour comes from, for the report

    @property
    def wall_seconds(self) -> int | None:
        """TrainingStartTime to TrainingEndTime (includes spot interruptions)."""
        if self.started and self.ended:
            return int((self.ended - self.started).total_seconds())
        return None

    @property
    def spot_savings(self) -> float | None:
        if not self.spot or not self.training_seconds or self.billable_seconds is None:
            return None
        return 1 - self.billable_seconds / self.training_seconds

    @property
    def billed_instance_seconds(self) -> int | None:
        if self.billable_seconds is None:
            return None
        return self.billable_seconds * self.instance_count

    @property
    def cost(self) -> float | None:
        if self.price_per_hour is None or self.billed_instance_seconds is None:
            return None
        return self.billed_instance_seconds / 3600 * self.price_per_hour


def billing(description: dict[str, Any], price_per_hour: float | None = None) -> Billing:
    """The job's billing; `price_per_hour` overrides the table (another region or type)."""
    resources = description.get("ResourceConfig", {})
    instance_type = resources.get("InstanceType", "")
    if price_per_hour is not None:
        price, source = price_per_hour, "--price-per-hour"
    else:
        price = prices.hourly_price(instance_type)
        source = (
            f"{prices.REGION} on-demand list price, {prices.LOOKED_UP} ({prices.SOURCE})"
            if price is not None
            else f"no price for {instance_type or 'this instance type'} in {prices.SOURCE}: "
            "pass --price-per-hour"
        )
    return Billing(
        instance_type=instance_type,
        instance_count=int(resources.get("InstanceCount", 1)),
        spot=bool(description.get("EnableManagedSpotTraining", False)),
        training_seconds=description.get("TrainingTimeInSeconds"),
        billable_seconds=description.get("BillableTimeInSeconds"),
        started=description.get("TrainingStartTime"),
        ended=description.get("TrainingEndTime"),
        price_per_hour=price,
        price_source=source,
    )


def duration(seconds: int | None) -> str:
    """1008 -> `16 min 48 s`; None -> `-`."""
    if seconds is None:
        return "-"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min {secs} s"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def dollars(amount: float | None) -> str:
    return "-" if amount is None else f"${amount:.2f}"


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f} %"
