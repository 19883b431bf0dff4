"""Decode throughput of the batch stack, S3 latency excluded.

    .venv/bin/python benchmarks/bench_decode.py [--outputs 10000] [--classes 81]

Feeds the real decode step (`lambdas/batch_decode/decoding.py`: list, match,
parallel fetch in bounded windows, validate, top-5, stream .jsonl + .csv) from
an in-memory fake S3 holding `--outputs` transform outputs
(`{"prediction": [81 probabilities]}`), and compares it with a naive baseline
measured in the same run: `json.loads` + `max()` per output, rows kept in a
list, one JSON Lines file written at the end. Prints results per second and the
peak memory traced by tracemalloc (the outputs themselves, held by the fake S3,
are not counted), at two batch sizes to show that decode's memory stays bounded.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambdas"))

from batch_decode.decoding import BatchToDecode, ResultWriter, decode_batch

BUCKET = "bench"
PREFIX = "predictions/bench/run/"


class FakeS3:
    """The three calls decode makes, answered from memory."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_paginator(self, _name: str) -> FakeS3:
        return self

    def paginate(self, *, Bucket: str, Prefix: str):  # noqa: N803 (boto3's names)
        keys = [key for key in self.objects if key.startswith(Prefix)]
        for start in range(0, len(keys), 1000):
            yield {"Contents": [{"Key": key} for key in keys[start : start + 1000]]}

    def get_object(self, *, Bucket: str, Key: str) -> dict:  # noqa: N803
        return {"Body": io.BytesIO(self.objects[Key])}

    def head_object(self, *, Bucket: str, Key: str) -> dict:  # noqa: N803
        return {}


def make_outputs(count: int, classes: int, seed: int = 7) -> tuple[list[str], dict[str, bytes]]:
    rng = random.Random(seed)
    images, objects = [], {}
    for n in range(count):
        weights = [rng.random() ** 4 for _ in range(classes)]
        total = sum(weights)
        key = f"incoming/shop-{n % 50}/photo-{n:05d}.jpg"
        images.append(key)
        objects[f"{PREFIX}{key}.out"] = json.dumps(
            {"prediction": [w / total for w in weights]}
        ).encode()
    return images, objects


def run_decode(images: list[str], s3: FakeS3, labels: list[str]) -> int:
    writer = ResultWriter()
    try:
        batch = BatchToDecode(BUCKET, "bench", "model", images, [], PREFIX)
        summary = decode_batch(s3, batch, lambda: labels, writer)
        writer.flush()
    finally:
        writer.close()
    assert summary.classified == len(images), summary
    return summary.classified


def run_baseline(images: list[str], s3: FakeS3, labels: list[str]) -> int:
    rows = []
    for key in images:
        body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}{key}.out")["Body"].read()
        probabilities = json.loads(body)["prediction"]
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        rows.append({"image": key, "label": labels[best], "confidence": probabilities[best]})
    with tempfile.TemporaryFile("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    return len(rows)


def measure(run: Callable[[], int], repeat: int) -> tuple[float, float]:
    """(best results per second, peak traced MiB)."""
    best = 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        count = run()
        best = max(best, count / (time.perf_counter() - started))
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outputs", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=81)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    labels = [f"class-{n}" for n in range(args.classes)]

    print(
        f"{args.outputs} outputs of {args.classes} probabilities, Python {sys.version.split()[0]}"
    )
    print(f"{'':38} {'results/s':>10} {'peak MiB':>9}")
    for outputs in (args.outputs // 5, args.outputs):
        images, objects = make_outputs(outputs, args.classes)
        s3 = FakeS3(objects)
        for name, run in (
            ("baseline (json.loads + max, rows in memory)", run_baseline),
            ("decode (validated, top-5, .jsonl + .csv)", run_decode),
        ):
            rate, peak = measure(functools.partial(run, images, s3, labels), args.repeat)
            print(f"{outputs:>6} {name:<44} {rate:>9,.0f} {peak:>9.1f}")


if __name__ == "__main__":
    main()
