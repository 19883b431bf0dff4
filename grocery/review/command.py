"""`python -m grocery review`: label unsure predictions in a local web page.

Opens a page served from 127.0.0.1 with your own AWS credentials: each queued photo beside
the model's top-k; pick the right label with the keyboard, or mark it "not a grocery
product" or "skip". Every decision is saved to S3 as it is made; two reviewers never get the
same photo. `review export --out DIR` copies the decisions and labelled photos to a folder
for `python -m preprocessing prepare --additions DIR`.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import threading
import webbrowser
from pathlib import Path
from typing import TextIO

import boto3

from grocery.arguments import add_prefix_option
from grocery.arguments import prefix as prefix_argument
from grocery.aws import session as aws_session
from grocery.review.export import export
from grocery.review.labels import LabelLists
from grocery.review.server import ReviewApp, ReviewServer
from grocery.review.store import DEFAULT_LEASE_SECONDS, ReviewStore, s3_client
from grocery.stack_outputs import stack_output
from stacks.names import stack_name

BUCKET_OUTPUT = "InferenceBucketName"


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535 (0: any free port), not {value!r}")
    return int(value)


def _reviewer(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 64 or not value.isprintable():
        raise argparse.ArgumentTypeError(
            f"reviewer must be 1-64 printable characters, not {value!r}"
        )
    return value


def default_reviewer() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return "reviewer"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "review",
        help="label unsure predictions in a local web page; export the decisions",
        description=__doc__.split("\n\n")[1],
    )
    add_prefix_option(parser)
    parser.add_argument(
        "--port", type=_port, default=0, help="port on 127.0.0.1 (default: any free port)"
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="print the page's URL, do not open a browser"
    )
    parser.add_argument(
        "--reviewer",
        type=_reviewer,
        default=default_reviewer(),
        help="your name in the saved decisions (default: your login name)",
    )
    parser.set_defaults(run=run_page)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    exporting = actions.add_parser(
        "export",
        help="copy the decisions and labelled photos to a folder (for prepare --additions)",
    )
    exporting.add_argument("--out", type=Path, required=True, help="folder to write (created)")
    exporting.add_argument(
        "--prefix", default=argparse.SUPPRESS, type=prefix_argument, help="the app's prefix"
    )
    exporting.set_defaults(run=run_export)


def inference_bucket(session: boto3.Session, prefix: str) -> str:
    return stack_output(stack_name(prefix, "Storage"), BUCKET_OUTPUT, session=session)


def run_page(
    args: argparse.Namespace,
    *,
    session: boto3.Session | None = None,
    out: TextIO = sys.stdout,
    ready: threading.Event | None = None,
    servers: list[ReviewServer] | None = None,
) -> int:
    session = session or aws_session()
    bucket = inference_bucket(session, args.prefix)
    store = ReviewStore(s3_client(session), bucket, reviewer=args.reviewer)
    app = ReviewApp(store, LabelLists(session, args.prefix))
    server = ReviewServer(app, port=args.port)
    if servers is not None:
        servers.append(server)  # tests stop it with server.shutdown()
    print(f"reviewing s3://{bucket}/review/ as {args.reviewer}: {server.url}", file=out)
    print(
        f"each photo is yours for {DEFAULT_LEASE_SECONDS // 60} minutes; "
        "Ctrl-C stops the server and gives your current photo back",
        file=out,
        flush=True,
    )
    if not args.no_browser:
        webbrowser.open(server.url)
    if ready is not None:
        ready.set()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass  # the usual way to stop: not an error
    finally:
        app.close()
        server.server_close()
    print("review server stopped; every decision is saved", file=out)
    return 0


def run_export(
    args: argparse.Namespace, *, session: boto3.Session | None = None, out: TextIO = sys.stdout
) -> int:
    session = session or aws_session()
    bucket = inference_bucket(session, args.prefix)
    summary = export(s3_client(session), bucket, args.out)
    print(summary.line(), file=out)
    print(
        f"next: python -m preprocessing prepare SOURCE OUT --additions {args.out}",
        file=out,
    )
    return 0
