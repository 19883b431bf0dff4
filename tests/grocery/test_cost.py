"""python -m grocery cost: the figures, the config it reads, and docs/costs.md's table."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from grocery.cost import PRICES, estimate, markdown_table, run
from grocery.errors import CommandError
from stacks.config import Config

DOCS = Path(__file__).resolve().parents[2] / "docs" / "costs.md"


def args(**overrides) -> argparse.Namespace:
    values = {"images_per_month": None, "context": [], "cdk_json": Path("cdk.json")}
    return argparse.Namespace(**{**values, **overrides})


def test_the_docs_table_shows_this_modules_figures():
    text = DOCS.read_text()
    table = re.search(
        r"<!-- serving-modes-table -->\n(.*?)\n<!-- /serving-modes-table -->", text, re.S
    )
    assert table, "docs/costs.md lost its serving-modes table markers"
    assert table.group(1) == markdown_table(Config())


def test_serverless_is_memory_seconds_plus_data_plus_the_api():
    config = Config(serving_mode="serverless", serverless_memory_mb=2048)
    cost = estimate(config, 1_000_000)
    compute = 1_000_000 * 0.5 * 2 * PRICES["serverless_per_gb_second"]
    data = 1_000_000 * 0.1 / 1024 * PRICES["serverless_data_per_gb"]
    assert cost.endpoint == pytest.approx(compute + data)
    assert cost.api == pytest.approx(3.50 + 0.88)
    assert estimate(config, 0).total == 0


def test_realtime_bills_its_floor_and_async_scales_to_zero():
    config = Config(endpoint_min_instances=2, endpoint_max_instances=3)
    assert estimate(config, 0).endpoint == pytest.approx(2 * 730 * 0.28)
    assert estimate(config, 0, "async").endpoint == 0
    # 1,000 images in bursts of 50: 20 half hours plus 0.07 h of work.
    assert estimate(config, 1_000, "async").endpoint == pytest.approx(
        (10 + 1000 * 0.25 / 3600) * 0.28
    )
    assert estimate(config, 10_000_000, "async").endpoint == pytest.approx(730 * 0.28)


def test_prints_the_configs_mode_beside_the_others(tmp_path, capsys):
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"serving_mode": "async"}}))
    assert (
        run(args(cdk_json=cdk_json, images_per_month=1000, context=["monthly_budget_usd=25"])) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("serving_mode async")
    assert "1,000 images: $2.82" in out
    assert "realtime $204.40" in out
    assert "serverless $0.04" in out
    assert "budget: $25.00" in out


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"context": ["serving_mode"]}, "KEY=VALUE"),
        ({"context": ["serving_mode=batch"]}, "'serving_mode'"),
        ({"context": ["endpoint_instance_type=ml.p3.2xlarge"]}, "no price"),
        ({"images_per_month": -1}, "0 or more"),
    ],
)
def test_mistakes_are_one_clear_line(tmp_path, overrides, fragment):
    with pytest.raises(CommandError, match=re.escape(fragment)):
        run(args(cdk_json=tmp_path / "missing.json", **overrides))


def test_a_broken_cdk_json_is_named(tmp_path):
    broken = tmp_path / "cdk.json"
    broken.write_text("{")
    with pytest.raises(CommandError, match="not valid JSON"):
        run(args(cdk_json=broken))
