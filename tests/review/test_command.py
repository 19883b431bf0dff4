"""`python -m grocery review`: parsing, the label lists of model versions, the page command
and `review export` (moto)."""

from __future__ import annotations

import argparse
import io
import json
import threading
import urllib.request

import boto3
import pytest
from moto import mock_aws

import grocery.__main__ as cli
from grocery.errors import CommandError
from grocery.review import command
from grocery.review.labels import LabelLists, version_number
from grocery_common import review_queue as rq
from tests.grocery.test_models import register
from tests.review.world import BUCKET, LABELS, photo, queue


@pytest.fixture
def session(aws_credentials, monkeypatch):
    with mock_aws():
        aws = boto3.Session(region_name="us-east-1")
        aws.client("s3").create_bucket(Bucket=BUCKET)
        aws.client("s3").create_bucket(Bucket="artifacts")
        calls = []

        def output(stack, key, *, session):
            calls.append((stack, key))
            return BUCKET

        monkeypatch.setattr(command, "stack_output", output)
        aws.stack_calls = calls
        yield aws


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["review", *argv])


def test_parsing():
    args = parse("--prefix", "shop", "--port", "8765", "--no-browser", "--reviewer", "ana")
    assert (args.prefix, args.port, args.no_browser, args.reviewer) == ("shop", 8765, True, "ana")
    assert args.run is command.run_page
    exporting = parse("--prefix", "shop", "export", "--out", "reviewed")
    assert (exporting.run, exporting.prefix, str(exporting.out)) == (
        command.run_export,
        "shop",
        "reviewed",
    )


@pytest.mark.parametrize("argv", [("--port", "70000"), ("--reviewer", " "), ("export",)])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2


def test_default_reviewer_without_a_login_name(monkeypatch):
    def no_user():
        raise OSError("no user")

    monkeypatch.setattr(command.getpass, "getuser", no_user)
    assert command.default_reviewer() == "reviewer"


@pytest.mark.parametrize(
    ("text", "number"), [("3", 3), ("grocery-classifier-v12", 12), ("my-model-x", None)]
)
def test_version_number(text, number):
    assert version_number(text) == number


def test_labels_of_a_version_else_the_released_ones(session):
    s3 = session.client("s3")
    job_labels = ["Apple", "Pear"]
    s3.put_object(
        Bucket="artifacts", Key="training-jobs/job-1/labels.json", Body=json.dumps(job_labels)
    )
    sagemaker = session.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="grocery-classifier")
    register(sagemaker, "job-1", accuracy="0.9", status="Approved")
    s3.put_object(Bucket="artifacts", Key="released/labels.json", Body=json.dumps(LABELS))
    session.client("ssm").put_parameter(
        Name="/grocery/release/labels-uri",
        Value="s3://artifacts/released/labels.json",
        Type="String",
    )
    lists = LabelLists(session, "grocery")
    labels, where = lists.for_version("grocery-classifier-v1")
    assert (labels, where) == (
        job_labels,
        "model version 1 (s3://artifacts/training-jobs/job-1/labels.json)",
    )
    assert lists.for_version("7")[0] == LABELS  # no such version: the released labels
    assert lists.for_version("some-model")[1].startswith("/grocery/release/labels-uri")


def test_no_label_list_at_all_says_what_to_do(session):
    session.client("ssm").put_parameter(
        Name="/grocery/release/labels-uri", Value="none", Type="String"
    )
    with pytest.raises(CommandError, match="no label list to review with"):
        LabelLists(session, "grocery").for_version("some-model")


def test_the_page_command_serves_until_stopped(session):
    items = queue(session.client("s3"), 1)
    session.client("s3").put_object(Bucket="artifacts", Key="l.json", Body=json.dumps(LABELS))
    session.client("ssm").put_parameter(
        Name="/grocery/release/labels-uri", Value="s3://artifacts/l.json", Type="String"
    )
    ready, servers, out = threading.Event(), [], io.StringIO()
    args = parse("--no-browser", "--reviewer", "ana")
    thread = threading.Thread(
        target=command.run_page,
        args=(args,),
        kwargs={"session": session, "out": out, "ready": ready, "servers": servers},
    )
    thread.start()
    assert ready.wait(5)
    (server,) = servers
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/api/state", headers={"X-Review-Token": server.token}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        state = json.load(response)
    assert (state["item"]["id"], state["reviewer"]) == (items[0].id, "ana")
    server.shutdown()
    thread.join(5)
    assert session.stack_calls == [("Grocery-Storage", "InferenceBucketName")]
    assert f"as ana: {server.url}" in out.getvalue()
    assert out.getvalue().endswith("review server stopped; every decision is saved\n")
    listing = session.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=rq.CLAIMS_PREFIX)
    assert listing["KeyCount"] == 0  # the held photo was given back


def test_the_page_command_opens_the_browser(session, monkeypatch):
    opened = []
    monkeypatch.setattr(command.webbrowser, "open", opened.append)

    class Stopped(command.ReviewServer):
        def serve_forever(self, poll_interval=0.5):
            raise KeyboardInterrupt  # Ctrl-C: a normal stop

    monkeypatch.setattr(command, "ReviewServer", Stopped)
    out = io.StringIO()
    assert command.run_page(parse(), session=session, out=out) == 0
    assert opened
    assert opened[0].startswith("http://127.0.0.1:")


def _decision(s3, n: int, verdict: str, label: str | None, *, key: str | None = None) -> str:
    item = rq.ReviewItem(
        id=f"d{n}",
        bucket=BUCKET,
        key=key or f"review/images/2026/12/01/d{n}.png",
        top_k=rq.top_k_of([("Banana", 0.5)]),
        model_version="3",
        time="2026-12-01T12:00:00Z",
        source="batch",
    )
    decision = rq.Decision(item.id, verdict, label, "ana", "2026-12-01T13:00:00Z", item)
    s3.put_object(Bucket=BUCKET, Key=rq.decision_key(item.id), Body=decision.to_json())
    if key is None:
        s3.put_object(Bucket=BUCKET, Key=item.key, Body=photo(n))
    return item.id


def test_export_writes_decisions_and_labelled_photos_once(session, tmp_path):
    s3 = session.client("s3")
    _decision(s3, 1, rq.LABELLED, "Banana")
    _decision(s3, 2, rq.NOT_GROCERY, None)
    _decision(s3, 3, rq.SKIPPED, None)
    _decision(s3, 4, rq.LABELLED, "Plantain", key="review/images/2026/12/01/gone.jpg")
    s3.put_object(Bucket=BUCKET, Key="review/decisions/README", Body=b"not a decision")
    out_dir = tmp_path / "reviewed"
    out = io.StringIO()
    assert command.run_export(parse("export", "--out", str(out_dir)), session=session, out=out) == 0
    assert sorted(p.name for p in (out_dir / "decisions").iterdir()) == [
        "d1.json",
        "d2.json",
        "d3.json",
        "d4.json",
    ]
    assert [p.name for p in (out_dir / "images").iterdir()] == ["d1.png"]
    assert (out_dir / "images" / "d1.png").read_bytes() == photo(1)
    first = out.getvalue()
    assert "exported 4 decisions" in first
    assert "(4 new, 0 already there)" in first
    assert "2 labelled (1 photos), 1 not a grocery product, 1 skipped" in first
    assert "1 labelled photos are gone from S3" in first
    assert f"--additions {out_dir}" in first

    _decision(s3, 5, rq.LABELLED, "Banana")
    again = io.StringIO()
    command.run_export(parse("export", "--out", str(out_dir)), session=session, out=again)
    assert "exported 5 decisions" in again.getvalue()
    assert "(1 new, 4 already there)" in again.getvalue()


def test_export_stops_on_other_s3_errors(session, tmp_path):
    s3 = session.client("s3")
    _decision(s3, 1, rq.LABELLED, "Banana", key="review/images/x.jpg")
    item = rq.Decision.from_json(
        s3.get_object(Bucket=BUCKET, Key=rq.decision_key("d1"))["Body"].read()
    ).item
    broken = rq.ReviewItem(**{**item.__dict__, "bucket": "no-such-bucket"})
    decision = rq.Decision("d1", rq.LABELLED, "Banana", "ana", "2026-12-01T13:00:00Z", broken)
    s3.put_object(Bucket=BUCKET, Key=rq.decision_key("d1"), Body=decision.to_json())
    with pytest.raises(Exception, match="NoSuchBucket"):
        command.run_export(parse("export", "--out", str(tmp_path / "r")), session=session)
