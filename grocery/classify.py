"""`python -m grocery classify IMAGE [IMAGE ...]`: classify photos with the deployed model.

Through the IAM-authorized API (default: the serving stack's `ApiUrl`, or `--api URL`,
signed with SigV4) or straight at the real-time endpoint (`--endpoint NAME`, decoded here
with the approved model's labels or `--labels`). Prints, per image, the sentence of the
original write-up and the top k. Images over the payload limit, or in a format other than
JPEG/PNG that Pillow can read, are converted to a JPEG that fits before sending.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from classify_api.request import ENDPOINT_MAX_BYTES, MAX_TOP_K

from grocery.arguments import add_prefix_option
from grocery.aws import describe, error_code, is_setup_error
from grocery.aws import session as aws_session
from grocery.classify_wait import DEFAULT_WAIT_SECONDS, wait_for_result
from grocery.errors import FAILED, CommandError, FatalError
from grocery.images import PreparedImage, prepare_image
from grocery.stack_outputs import stack_output
from grocery_common.labels import (
    DEFAULT_TOP_K,
    LabelError,
    Prediction,
    decode,
    parse_labels,
    parse_probabilities,
)
from stacks.names import NO_APPROVED_MODEL, approved_model_parameter, stack_name

# API Gateway hands binary bodies to Lambda base64-encoded inside a JSON event, and Lambda
# takes at most 6 MB per synchronous request: an image must stay near 4.5 MB. 4 MiB is safe.
API_MAX_IMAGE_BYTES = 4 * 1024 * 1024
MAX_RETRIES = 2
MAX_RETRY_WAIT_SECONDS = 10
HTTP_TIMEOUT_SECONDS = 35  # above the API's 29 s integration timeout
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")

# API answers that do not depend on the image: stop at the first, with what to check.
_STOP_ALL_STATUSES = {
    401: "check your AWS credentials",
    403: "check that your credentials are valid, for the API's account, and allowed "
    "execute-api:Invoke on it",
    404: "check --api: it is the stack output ApiUrl",
}

# (status, headers, body) of one HTTP exchange.
HttpResponse = tuple[int, dict[str, str], bytes]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classify",
        help="classify photos with the deployed model (API or endpoint)",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="photo files")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--api", metavar="URL", help="the API's URL (default: stack output ApiUrl)")
    target.add_argument("--endpoint", metavar="NAME", help="call this SageMaker endpoint directly")
    parser.add_argument(
        "--top-k",
        type=int,
        default=DEFAULT_TOP_K,
        help=f"labels to show, 1-{MAX_TOP_K} (default: 5)",
    )
    parser.add_argument(
        "--labels",
        metavar="labels.json|s3://...",
        help="with --endpoint: the model's label list (default: the approved model's)",
    )
    add_prefix_option(parser)
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help="serving_mode=async: how long to wait for each queued result (default: 900)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")
    parser.set_defaults(run=run)


def api_region(url: str, default: str | None) -> str:
    match = _EXECUTE_API_HOST.match(urlparse(url).hostname or "")
    region = match.group(1) if match else default
    if not region:
        raise CommandError(f"cannot tell the region of {url}: set AWS_REGION or AWS_DEFAULT_REGION")
    return region


def _urllib_send(url: str, body: bytes | None, headers: dict[str, str]) -> HttpResponse:
    """POST `body`, or GET when it is None (an async result)."""
    method = "GET" if body is None else "POST"
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
    except (urllib.error.URLError, TimeoutError) as error:
        raise FatalError(
            f"cannot reach {url}: {getattr(error, 'reason', error)}", exit_code=FAILED
        ) from None


class ApiClassifier:
    """POSTs each image to the API, signed with SigV4 (service `execute-api`)."""

    max_bytes = API_MAX_IMAGE_BYTES

    def __init__(
        self,
        url: str,
        *,
        session: boto3.Session,
        send: Callable[[str, bytes | None, dict[str, str]], HttpResponse] = _urllib_send,
        sleep: Callable[[float], None] = time.sleep,
        wait: float = DEFAULT_WAIT_SECONDS,
    ) -> None:
        if urlparse(url).scheme != "https":
            raise CommandError(f"--api must be an https:// URL, got {url!r}")
        self.url = url
        self.region = api_region(url, session.region_name)
        credentials = session.get_credentials()
        if credentials is None:
            raise CommandError(
                "no AWS credentials found: the API accepts SigV4-signed requests only"
            )
        self.credentials = credentials
        self.send = send
        self.sleep = sleep
        self.wait = wait
        self.description = f"API {url}"

    def _get(self, url: str) -> HttpResponse:
        """A signed GET (serving_mode=async: the result of a queued request)."""
        request = AWSRequest(method="GET", url=url)
        SigV4Auth(self.credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(
            request
        )
        return self.send(url, None, dict(request.headers.items()))

    def _signed(self, image: PreparedImage, top_k: int) -> tuple[str, dict[str, str]]:
        url = f"{self.url}?{urlencode({'top_k': top_k})}"
        request = AWSRequest(
            method="POST", url=url, data=image.body, headers={"Content-Type": image.content_type}
        )
        SigV4Auth(self.credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(
            request
        )
        return url, dict(request.headers.items())

    def classify(self, image: PreparedImage, top_k: int) -> dict[str, Any]:
        for attempt in range(MAX_RETRIES + 1):
            url, headers = self._signed(image, top_k)  # re-signed: signatures expire
            status, response_headers, raw = self.send(url, image.body, headers)
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {"message": raw[:200].decode("utf-8", "replace")}
            if status == 200:
                return body
            if status == 202 and body.get("result"):  # serving_mode=async: queued
                return wait_for_result(
                    self._get, f"{self.url}/{body['result']}", timeout=self.wait, sleep=self.sleep
                )
            retryable = status == 429 or body.get("retryable") is True
            if not retryable or attempt == MAX_RETRIES:
                message = body.get("message") or body.get("Message") or "no message"
                if status in _STOP_ALL_STATUSES:  # the same answer for every image
                    raise FatalError(
                        f"the API answered {status}: {message} ({_STOP_ALL_STATUSES[status]})"
                    )
                raise CommandError(f"the API answered {status}: {message}", exit_code=FAILED)
            headers_lower = {k.lower(): v for k, v in response_headers.items()}
            wait = headers_lower.get("retry-after", "1")
            self.sleep(min(float(wait) if wait.isdigit() else 1.0, MAX_RETRY_WAIT_SECONDS))
        raise AssertionError("unreachable")


def read_labels(source: str, session: boto3.Session) -> list[str]:
    try:
        if source.startswith("s3://"):
            bucket, _, key = source.removeprefix("s3://").partition("/")
            text = session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        else:
            text = Path(source).read_bytes()
        return parse_labels(text, source=source)
    except LabelError as error:
        raise CommandError(str(error)) from None
    except (ClientError, BotoCoreError) as error:
        if is_setup_error(error):
            raise
        raise CommandError(f"cannot read the labels from {source}: {describe(error)}") from None
    except OSError as error:
        raise CommandError(
            f"cannot read the labels from {source}: {error.strerror or error}"
        ) from None


def _approved(prefix: str, field: str, session: boto3.Session) -> str:
    name = approved_model_parameter(prefix, field)
    ssm = session.client("ssm")
    try:
        value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as error:
        if error_code(error) == "ParameterNotFound":
            raise CommandError(
                f"SSM parameter {name} does not exist in {ssm.meta.region_name}: deploy the app "
                "first (make deploy), set AWS_REGION to its region, or pass --labels"
            ) from None
        if is_setup_error(error):
            raise
        raise CommandError(f"cannot read SSM parameter {name} ({describe(error)})") from None
    if value == NO_APPROVED_MODEL:
        raise CommandError(
            f"no approved model yet ({name} is '{NO_APPROVED_MODEL}'): run the training pipeline, "
            "or pass --labels"
        )
    return value


class EndpointClassifier:
    """Invokes the endpoint and decodes its probabilities here, with the shared decoder."""

    max_bytes = ENDPOINT_MAX_BYTES

    def __init__(
        self, endpoint_name: str, *, labels: list[str], model: str, session: boto3.Session
    ) -> None:
        self.endpoint_name = endpoint_name
        self.labels = labels
        self.model = model
        self.runtime = session.client(
            "sagemaker-runtime", config=Config(retries={"mode": "standard", "max_attempts": 3})
        )
        self.description = f"endpoint {endpoint_name}"

    def classify(self, image: PreparedImage, top_k: int) -> dict[str, Any]:
        try:
            response = self.runtime.invoke_endpoint(
                EndpointName=self.endpoint_name,
                Body=image.body,
                ContentType=image.content_type,
                Accept="application/json",
            )
            prediction: Prediction = decode(
                parse_probabilities(response["Body"].read()), self.labels, k=top_k
            )
        except ClientError as error:
            message = error.response["Error"].get("Message", str(error))
            if is_setup_error(error):
                raise FatalError(
                    f"AWS refused the call to endpoint {self.endpoint_name}: {message}"
                ) from None
            if error_code(error) == "ValidationError" and "not found" in message:
                raise FatalError(f"{message}: check --endpoint and AWS_REGION") from None
            raise CommandError(f"the endpoint refused it: {message}", exit_code=FAILED) from None
        except BotoCoreError as error:
            if is_setup_error(error):
                raise
            raise FatalError(f"calling the endpoint failed: {error}", exit_code=FAILED) from None
        except LabelError as error:
            raise CommandError(
                f"the endpoint's answer cannot be decoded: {error}", exit_code=1
            ) from None
        return {
            **prediction.to_dict(),
            "sentence": prediction.sentence(),
            "model": self.model,
            "endpoint": self.endpoint_name,
        }


def build_classifier(args: argparse.Namespace, session: boto3.Session):
    if session.get_credentials() is None:  # once, not once per image
        raise NoCredentialsError()
    if args.endpoint:
        labels_source = args.labels or _approved(args.prefix, "labels-uri", session)
        model = "(given labels)" if args.labels else _approved(args.prefix, "model-name", session)
        return EndpointClassifier(
            args.endpoint,
            labels=read_labels(labels_source, session),
            model=model,
            session=session,
        )
    url = args.api or stack_output(stack_name(args.prefix, "Serving"), "ApiUrl", session=session)
    return ApiClassifier(url, session=session, wait=getattr(args, "wait", DEFAULT_WAIT_SECONDS))


def format_answer(path: Path, answer: dict[str, Any], note: str) -> str:
    lines = [f"{path}: {answer['sentence']}"]
    width = max(len(guess["label"]) for guess in answer["top_k"])
    lines += [
        f"  {rank}. {guess['label']:<{width}}  {guess['confidence']:6.1%}"
        for rank, guess in enumerate(answer["top_k"], start=1)
    ]
    if note:
        lines.append(f"  ({note})")
    return "\n".join(lines)


def check_arguments(args: argparse.Namespace) -> None:
    """Everything that can be checked before AWS is reached."""
    if not 1 <= args.top_k <= MAX_TOP_K:
        raise CommandError(f"--top-k must be from 1 to {MAX_TOP_K}, got {args.top_k}")
    if args.labels and not args.endpoint:
        raise CommandError("--labels applies to --endpoint only: the API uses its model's labels")
    if args.labels and not args.labels.startswith("s3://") and not Path(args.labels).is_file():
        raise CommandError(f"--labels {args.labels}: no such file; pass labels.json or s3://...")
    missing = [str(path) for path in args.images if not path.is_file()]
    if missing:
        raise CommandError(
            f"no such image file: {', '.join(missing)} ({len(missing)} of {len(args.images)}); "
            "check the paths"
        )


def run(args: argparse.Namespace, *, session: boto3.Session | None = None, classifier=None) -> int:
    check_arguments(args)
    session = session or aws_session()
    classifier = classifier or build_classifier(args, session)
    failures = 0
    models = set()
    for path in args.images:
        try:
            image = prepare_image(path, classifier.max_bytes)
            answer = classifier.classify(image, args.top_k)
        except FatalError:
            raise
        except CommandError as error:
            failures += 1
            if args.json:
                print(json.dumps({"image": str(path), "error": str(error)}))
            else:
                print(f"{path}: error: {error}", file=sys.stderr)
            continue
        models.add(answer.get("model", "?"))
        if args.json:
            print(json.dumps({"image": str(path), **answer, "note": image.note or None}))
        else:
            print(format_answer(path, answer, image.note))
    if not args.json:
        done = len(args.images) - failures
        print(
            f"{done} of {len(args.images)} image(s) classified by model "
            f"{', '.join(sorted(models)) or '-'} via {classifier.description}",
            file=sys.stderr,
        )
    return 1 if failures else 0
