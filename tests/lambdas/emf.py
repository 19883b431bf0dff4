"""Reads the CloudWatch embedded-metric-format objects a handler printed (capsys output)."""

from __future__ import annotations

import json
from collections import defaultdict


def emf_objects(stdout: str) -> list[dict]:
    objects = []
    for raw in stdout.splitlines():
        line = raw.strip()
        if not line.startswith("{"):
            continue
        data = json.loads(line)
        if "_aws" in data:
            objects.append(data)
    return objects


def metric_values(objects: list[dict], name: str, **dimensions: str) -> list[float]:
    """Every value of metric `name` in the objects whose dimension values match."""
    values: list[float] = []
    for data in objects:
        directive = data["_aws"]["CloudWatchMetrics"][0]
        if name not in {m["Name"] for m in directive["Metrics"]}:
            continue
        if any(data.get(key) != value for key, value in dimensions.items()):
            continue
        value = data[name]
        values += value if isinstance(value, list) else [value]
    return values


def dimension_sets(objects: list[dict], name: str) -> set[tuple[tuple[str, ...], ...]]:
    found: set[tuple[tuple[str, ...], ...]] = set()
    for data in objects:
        directive = data["_aws"]["CloudWatchMetrics"][0]
        if name in {m["Name"] for m in directive["Metrics"]}:
            found.add(tuple(tuple(s) for s in directive["Dimensions"]))
    return found


def namespaces(objects: list[dict]) -> set[str]:
    return {data["_aws"]["CloudWatchMetrics"][0]["Namespace"] for data in objects}


def per_label(objects: list[dict], name: str) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for data in objects:
        directive = data["_aws"]["CloudWatchMetrics"][0]
        if name in {m["Name"] for m in directive["Metrics"]}:
            value = data[name]
            totals[data["Label"]] += sum(value) if isinstance(value, list) else value
    return dict(totals)
