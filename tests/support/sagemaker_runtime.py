"""TEST-ONLY: moto's SageMaker Runtime taking binary bodies, and queueing its answers.

moto 5.2.5 decodes every request body as UTF-8, so InvokeEndpoint with a JPEG (what the
image-classification container takes) fails inside moto. `binary_bodies()` lets the body
through as bytes and records each one (tests check the image arrived intact); each call
takes the next answer of moto's documented queue (`queue_answers`, /moto-api/static/sagemaker/
endpoint-results: https://docs.getmoto.org/en/latest/docs/services/sagemaker-runtime.html).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator

import requests

from tests.support.sfn_local import ACCOUNT, REGION

RESULTS_URL = "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results"


def queue_answers(*bodies: str) -> None:
    """The bodies moto's next InvokeEndpoint calls answer, in order (inside mock_aws)."""
    results = [
        {"Body": body, "ContentType": "application/json", "InvokedProductionVariant": "AllTraffic"}
        for body in bodies
    ]
    response = requests.post(
        RESULTS_URL, json={"account_id": ACCOUNT, "region": REGION, "results": results}, timeout=5
    )
    assert response.status_code == 201, response.text


@contextlib.contextmanager
def binary_bodies() -> Iterator[list[bytes]]:
    """Yields the list of request bodies InvokeEndpoint received (as bytes)."""
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    received: list[bytes] = []
    original = SageMakerRuntimeResponse.invoke_endpoint

    def invoke_endpoint(self):
        body = self.raw_body if isinstance(self.raw_body, bytes) else str(self.body).encode()
        received.append(body)
        # moto keys its answers on a JSON of the request and answers the same request the
        # same way again; every call here takes the next queued answer (AWS asks the model).
        self.body = f"{len(received)}:{base64.b64encode(body).decode()}"
        return original(self)

    SageMakerRuntimeResponse.use_raw_body = True
    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint
    try:
        yield received
    finally:
        SageMakerRuntimeResponse.invoke_endpoint = original
        SageMakerRuntimeResponse.use_raw_body = False
