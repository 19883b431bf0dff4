"""The review page's local server: one static page and a small JSON API, on loopback only.

It runs with the reviewer's own AWS credentials, so it must not be reachable by anyone else:
it binds to a loopback address only (anything else is refused), answers only requests whose
Host is that address (a page of another site cannot reach it through DNS rebinding), and the
API wants the random token the command puts in the page's URL (another site's page in the
same browser cannot read it, so it cannot decide for the reviewer). The page gets no
Referer-leaking, no caching of API answers, and a Content-Security-Policy.

    GET  /                 the page (static/index.html)
    GET  /static/<file>    app.js, style.css
    GET  /api/state        the photo this reviewer holds (claimed if none), its labels, progress
    POST /api/decide       {"id", "verdict": "label"|"not_grocery"|"skip", "label"}
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from grocery.aws import describe
from grocery.errors import CommandError
from grocery.review.labels import LabelLists
from grocery.review.store import AlreadyDecidedError, Claimed, ReviewStore
from grocery_common import review_queue as rq

STATIC = Path(__file__).with_name("static")
_STATIC_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
TOKEN_HEADER = "X-Review-Token"
MAX_BODY = 4096


class ReviewApp:
    """What the API does, without HTTP: the photo held, decisions, progress."""

    def __init__(self, store: ReviewStore, labels: LabelLists) -> None:
        self.store = store
        self.labels = labels
        self.current: Claimed | None = None
        self.lock = threading.Lock()  # one decision at a time (two tabs of one reviewer)

    def state(self, notice: str = "") -> dict[str, Any]:
        with self.lock:
            return self._state(notice)

    def _state(self, notice: str = "") -> dict[str, Any]:
        if self.current is None:
            self.current = self.store.claim_next()
        payload: dict[str, Any] = {"reviewer": self.store.reviewer, "notice": notice, "item": None}
        if self.current is not None:
            claimed = self.store.claimed(self.current.item)  # a fresh URL on every load
            item = claimed.item
            labels, labels_from = self.labels.for_version(item.model_version)
            payload["item"] = {
                "id": item.id,
                "url": claimed.url,
                "url_expires": claimed.expires,
                "top_k": [{"label": g.label, "confidence": g.confidence} for g in item.top_k],
                "model_version": item.model_version,
                "source": item.source,
                "time": item.time,
                "labels": labels,
                "labels_from": labels_from,
            }
        payload["progress"] = self.store.progress().to_dict()
        return payload

    def decide(self, body: dict[str, Any]) -> dict[str, Any]:
        item_id, verdict, label = body.get("id"), body.get("verdict"), body.get("label")
        with self.lock:
            if self.current is None or self.current.item.id != item_id:
                return self._state(notice="that photo is no longer yours: here is the next one")
            if verdict not in rq.VERDICTS:
                raise ValueError(f"verdict must be one of {', '.join(rq.VERDICTS)}")
            item = self.current.item
            if verdict == rq.LABELLED:
                labels, _ = self.labels.for_version(item.model_version)
                if label not in labels:
                    raise ValueError(f"{label!r} is not in the label list of this model version")
            try:
                decision = self.store.decide(item, verdict, label)
                notice = f"saved: {_said(decision)}"
            except AlreadyDecidedError:
                notice = "another reviewer decided that photo first; their decision is kept"
            self.current = None
            return self._state(notice=notice)

    def close(self) -> None:
        """Give the held photo back, so another reviewer gets it without waiting for the lease."""
        with self.lock:
            if self.current is not None:
                self.store.release(self.current.item.id)
                self.current = None


def _said(decision: rq.Decision) -> str:
    if decision.verdict == rq.LABELLED:
        return decision.label or ""
    return "not a grocery product" if decision.verdict == rq.NOT_GROCERY else "skipped"


def check_loopback(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise CommandError(
            f"the review server binds to a loopback address only (127.0.0.1 or ::1), not "
            f"{host!r}: it acts with your AWS credentials"
        )
    return host


class _Handler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "grocery-review"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the page polls; the terminal stays readable

    # ------------------------------------------------------------------ plumbing

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")  # the token stays off S3's logs
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", self.server.csp)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _allowed(self, *, api: bool) -> bool:
        if self.headers.get("Host", "") not in self.server.hosts:
            self._json(HTTPStatus.FORBIDDEN, {"error": "unexpected Host header"})
            return False
        if api and not secrets.compare_digest(
            self.headers.get(TOKEN_HEADER, ""), self.server.token
        ):
            self._json(
                HTTPStatus.FORBIDDEN,
                {
                    "error": "missing or wrong token: open the URL `python -m grocery review` printed"
                },
            )
            return False
        return True

    def _run(self, action) -> None:
        try:
            self._json(HTTPStatus.OK, action())
        except ValueError as error:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        except (ClientError, BotoCoreError) as error:
            self._json(HTTPStatus.BAD_GATEWAY, {"error": f"AWS: {describe(error)}"})
        except CommandError as error:
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(error)})

    # ------------------------------------------------------------------ routes

    def do_GET(self) -> None:
        path = urlparse(self.path).path
        if not self._allowed(api=path.startswith("/api/")):
            return
        if path == "/api/state":
            self._run(self.server.app.state)
            return
        name = "index.html" if path in ("/", "/index.html") else path.removeprefix("/static/")
        if name not in _STATIC_TYPES:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})
            return
        self._send(HTTPStatus.OK, (STATIC / name).read_bytes(), _STATIC_TYPES[name])

    def do_POST(self) -> None:
        if urlparse(self.path).path != "/api/decide":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such API: {self.path}"})
            return
        if not self._allowed(api=True):
            return
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send application/json"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"a decision is 1-{MAX_BODY} bytes"})
            return
        try:
            body = json.loads(self.rfile.read(length))
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "the body must be a JSON object"})
            return
        self._run(lambda: self.server.app.decide(body))


class ReviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: ReviewApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        check_loopback(host)
        super().__init__((host, port), _Handler)
        self.app = app
        self.token = secrets.token_urlsafe(24)
        self.port = self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.hosts = {f"{shown}:{self.port}", f"localhost:{self.port}"}
        self.url = f"http://{shown}:{self.port}/?token={self.token}"
        self.csp = (
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            f"img-src {image_origin(app.store.s3)}; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'"
        )


def image_origin(s3) -> str:
    """Where presigned photo URLs point: the S3 endpoint's origin (any S3 host on AWS)."""
    endpoint = urlparse(s3.meta.endpoint_url)
    if endpoint.hostname and endpoint.hostname.endswith(".amazonaws.com"):
        return "https://*.amazonaws.com"  # virtual-hosted bucket names under the endpoint
    if endpoint.hostname and endpoint.hostname.endswith(".amazonaws.com.cn"):
        return "https://*.amazonaws.com.cn"
    return f"{endpoint.scheme}://{endpoint.netloc}"
