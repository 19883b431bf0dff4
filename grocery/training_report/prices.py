"""On-demand hourly prices of the SageMaker training instances this project documents.

The values of docs/costs.md ("Training"): us-east-1, looked up on 2026-11-25. The tables of
the official pricing page (https://aws.amazon.com/sagemaker/pricing/) were not in the stored
text; these are the figures several third-party price tables agree on (docs/costs.md,
"Sources"). Other regions and types: pass `--price-per-hour`.
"""

from __future__ import annotations

REGION = "us-east-1"
LOOKED_UP = "2026-11-25"
SOURCE = "docs/costs.md"

ON_DEMAND_PER_HOUR: dict[str, float] = {
    "ml.p3.2xlarge": 3.825,
    "ml.g5.xlarge": 1.408,
    "ml.g4dn.xlarge": 0.736,
}


def hourly_price(instance_type: str) -> float | None:
    return ON_DEMAND_PER_HOUR.get(instance_type)
