"""Benchmark the classify Lambda's own cost: cold import time and per-request overhead.

The endpoint is excluded: the SageMaker runtime client is replaced by a stand-in that
returns a real-format answer (a JSON array of 81 probabilities) at once, and the label
list is already cached, so what is timed is the handler's own work (Powertools logging
and metrics, base64 decoding, validation, JSON parsing, top-k decoding, the response).

Each figure is printed next to a baseline measured in the same run:

* cold import: `import classify_api.handler` in a fresh interpreter vs `import json, boto3`
  (every boto3 Lambda pays that) — median of --imports fresh processes each; plus the
  import and the creation of the two boto3 clients the first request makes;
* per request: `handler(event, context)` vs a bare handler that only returns a constant
  response, and vs the same no-op wrapped in the handler's Powertools decorators —
  median of --rounds rounds of --requests calls, for a small JPEG and a 4 MB one.

Usage:
    .venv/bin/python benchmarks/bench_classify_handler.py [--imports 7] [--rounds 5] [--requests 2000]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDAS = ROOT / "lambdas"
sys.path[:0] = [str(ROOT), str(LAMBDAS)]

NUM_CLASSES = 81

IMPORT_SNIPPET = """
import time
started = time.perf_counter()
{statement}
print(time.perf_counter() - started)
"""


def cold_import_seconds(statements: dict[str, str], runs: int) -> dict[str, float]:
    """Median seconds per statement, each in a fresh interpreter; the statements take turns
    so that a busy machine slows all of them alike."""
    env = {**os.environ, "PYTHONPATH": str(LAMBDAS), "AWS_DEFAULT_REGION": "us-east-1"}
    samples: dict[str, list[float]] = {name: [] for name in statements}
    for _ in range(runs):
        for name, statement in statements.items():
            out = subprocess.run(
                [sys.executable, "-c", IMPORT_SNIPPET.format(statement=statement)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stdout
            samples[name].append(float(out.strip().splitlines()[-1]))
    return {name: statistics.median(values) for name, values in samples.items()}


class InstantRuntime:
    """Stands in for the sagemaker-runtime client: answers at once, in the real format."""

    def __init__(self) -> None:
        best = 7
        rest = (1 - 0.971) / (NUM_CLASSES - 1)
        self.payload = json.dumps(
            [0.971 if i == best else rest for i in range(NUM_CLASSES)]
        ).encode()

    def invoke_endpoint(self, **_):
        return {"Body": io.BytesIO(self.payload)}


class Context:
    function_name = "classify"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:classify"
    aws_request_id = "bench"


def jpeg_event(size_bytes: int) -> dict:
    body = b"\xff\xd8\xff\xe0" + os.urandom(size_bytes - 4)
    return {
        "httpMethod": "POST",
        "headers": {"Content-Type": "image/jpeg"},
        "queryStringParameters": {"top_k": "5"},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def per_request_microseconds(handler, event: dict, rounds: int, requests: int) -> float:
    context = Context()
    for _ in range(min(requests, 200)):  # warm-up
        handler(event, context)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(requests):
            handler(event, context)
        samples.append((time.perf_counter() - started) / requests * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--imports", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    cold = cold_import_seconds(
        {
            "baseline": "import json, boto3",
            "handler": "import classify_api.handler",
            # The first request also builds the two boto3 clients (sagemaker-runtime, s3).
            "clients": "import classify_api.handler as h; h.Classifier.from_environment()",
        },
        args.imports,
    )
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"cold start (median of {args.imports} fresh processes each, interleaved):")
    print(f"  baseline  import json, boto3            {cold['baseline'] * 1000:7.1f} ms")
    print(f"  handler   import classify_api.handler   {cold['handler'] * 1000:7.1f} ms")
    print(f"  handler + create its 2 boto3 clients    {cold['clients'] * 1000:7.1f} ms")

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["POWERTOOLS_METRICS_NAMESPACE"] = "Bench"
    from classify_api import handler as module
    from classify_api.handler import Classifier, Settings

    classifier = Classifier(
        Settings(endpoint_name="bench", model_name="bench-model", labels_uri="s3://b/labels.json"),
        runtime=InstantRuntime(),
        s3=None,
    )
    classifier.labels._labels = [f"Label-{i}" for i in range(NUM_CLASSES)]
    module._classifier = classifier

    def bare(event, context):
        return {"statusCode": 200, "headers": {}, "body": "{}", "isBase64Encoded": False}

    decorated_noop = module.metrics.log_metrics(module.logger.inject_lambda_context(bare))

    class Discard(io.TextIOBase):
        def write(self, text: str) -> int:
            return len(text)

    # JSON logs and EMF metrics are built and serialized as in Lambda, then discarded.
    module.logger.registered_handler.setStream(Discard())
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    real_stdout = sys.stdout
    results = []
    for label, size, requests in (
        ("50 KB JPEG", 50_000, args.requests),
        ("4 MB JPEG", 4 * 1024 * 1024, max(1, args.requests // 20)),
    ):
        event = jpeg_event(size)
        sys.stdout = Discard()  # EMF metrics are print()ed
        try:
            row = (
                label,
                per_request_microseconds(bare, event, args.rounds, requests),
                per_request_microseconds(decorated_noop, event, args.rounds, requests),
                per_request_microseconds(module.handler, event, args.rounds, requests),
            )
        finally:
            sys.stdout = real_stdout
        results.append(row)
    print("per request, endpoint excluded (median µs per call):")
    print(f"  {'body':<11} {'bare no-op':>11} {'no-op + Powertools':>19} {'handler':>10}")
    for label, bare_us, noop_us, handler_us in results:
        print(f"  {label:<11} {bare_us:11.1f} {noop_us:19.1f} {handler_us:10.1f}")


if __name__ == "__main__":
    main()
