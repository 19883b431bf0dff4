"""upload against a local S3 (moto): resumable, dry run, KMS bucket, manifest last, --stack."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from preprocessing import upload as upload_module
from preprocessing.cli import main
from preprocessing.errors import UserError
from preprocessing.prepare import Options, prepare
from preprocessing.upload import upload

from .conftest import make_folders

BUCKET = "training-data"
PREFIX = "datasets/fruit"


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    source = make_folders(tmp_path / "src", {"apple": 6, "pear": 5})
    out = tmp_path / "fruit"
    prepare(Options(source=source, out=out, workers=1, progress=False))
    return out


@pytest.fixture
def s3(aws_credentials):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_encryption(
            Bucket=BUCKET,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": key_id,
                        }
                    }
                ]
            },
        )
        yield client


def _local(out: Path) -> dict[str, Path]:
    return {p.relative_to(out).as_posix(): p for p in out.rglob("*") if p.is_file()}


def _keys(s3) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def _spy_uploads(s3, monkeypatch, fail_on: str | None = None) -> list[str]:
    sent: list[str] = []
    real = s3.upload_file

    def spy(filename, bucket, key, **kwargs):
        if fail_on and key.endswith(fail_on):
            raise OSError(f"simulated network failure for {key}")
        sent.append(key)
        return real(filename, bucket, key, **kwargs)

    monkeypatch.setattr(s3, "upload_file", spy)
    return sent


def test_upload_everything_with_metadata_and_bucket_encryption(prepared, s3):
    files = _local(prepared)
    summary = upload(prepared, s3, BUCKET, PREFIX, jobs=4, progress=False)
    assert (summary.uploaded, summary.skipped) == (len(files), 0)
    assert summary.uploaded_bytes == sum(p.stat().st_size for p in files.values())
    assert _keys(s3) == {f"{PREFIX}/{rel}" for rel in files}
    head = s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/train_lst/train.lst")
    assert head["Metadata"]["sha256"] == upload_module.file_sha256(files["train_lst/train.lst"])
    assert head["ServerSideEncryption"] == "aws:kms"  # the bucket default applied
    assert head["ContentType"] == "text/plain"
    image_key = next(k for k in _keys(s3) if k.endswith(".jpg"))
    assert s3.head_object(Bucket=BUCKET, Key=image_key)["ContentType"] == "image/jpeg"
    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/manifest.json")["Body"].read()
    assert body == (prepared / "manifest.json").read_bytes()


def test_second_upload_skips_identical_objects(prepared, s3, monkeypatch):
    upload(prepared, s3, BUCKET, PREFIX, progress=False)
    sent = _spy_uploads(s3, monkeypatch)
    summary = upload(prepared, s3, BUCKET, PREFIX, progress=False)
    assert sent == []
    assert (summary.uploaded, summary.skipped) == (0, len(_local(prepared)))


def test_changed_file_of_the_same_size_is_uploaded_again(prepared, s3, monkeypatch):
    upload(prepared, s3, BUCKET, PREFIX, progress=False)
    labels = prepared / "labels.json"
    labels.write_text(labels.read_text().replace("apple", "appla"))  # same size, new content
    sent = _spy_uploads(s3, monkeypatch)
    summary = upload(prepared, s3, BUCKET, PREFIX, progress=False)
    assert sent == [f"{PREFIX}/labels.json"]
    assert summary.uploaded == 1


def test_object_without_checksum_metadata_is_replaced(prepared, s3, monkeypatch):
    labels = prepared / "labels.json"
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/labels.json", Body=labels.read_bytes())
    sent = _spy_uploads(s3, monkeypatch)
    upload(prepared, s3, BUCKET, PREFIX, progress=False)
    assert f"{PREFIX}/labels.json" in sent


def test_dry_run_uploads_nothing(prepared, s3, monkeypatch):
    sent = _spy_uploads(s3, monkeypatch)
    summary = upload(prepared, s3, BUCKET, PREFIX, dry_run=True, progress=False)
    assert sent == []
    assert _keys(s3) == set()
    assert summary.uploaded == len(_local(prepared))  # what it would upload


def test_failed_upload_withholds_manifest_and_resume_finishes(prepared, s3, monkeypatch):
    sent = _spy_uploads(s3, monkeypatch, fail_on="validation.lst")
    with pytest.raises(UserError, match=r"1 of \d+ uploads failed .*validation\.lst.*re-run"):
        upload(prepared, s3, BUCKET, PREFIX, progress=False)
    assert f"{PREFIX}/manifest.json" not in _keys(s3)
    done_first = len(sent)
    monkeypatch.delattr(s3, "upload_file")  # back to the real client method
    summary = upload(prepared, s3, BUCKET, PREFIX, progress=False)
    assert summary.uploaded == 2  # validation.lst and manifest.json
    assert summary.skipped == done_first
    assert f"{PREFIX}/manifest.json" in _keys(s3)


def test_stale_objects_are_reported_and_deleted_on_request(prepared, s3):
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/train/old/x.jpg", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="datasets/other/keep.jpg", Body=b"x")
    summary = upload(prepared, s3, BUCKET, PREFIX, progress=False)
    assert summary.stale == [f"{PREFIX}/train/old/x.jpg"]
    assert f"{PREFIX}/train/old/x.jpg" in _keys(s3)
    summary = upload(prepared, s3, BUCKET, PREFIX, delete_stale=True, progress=False)
    assert summary.deleted == 1
    assert f"{PREFIX}/train/old/x.jpg" not in _keys(s3)
    assert "datasets/other/keep.jpg" in _keys(s3)


def test_cli_upload_by_stack_prints_pipeline_uris(prepared, s3, capsys):
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"TrainingDataBucketName": {"Value": BUCKET}},
    }
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    cfn.create_stack(StackName="Grocery-Storage", TemplateBody=json.dumps(template))
    code = main(["upload", str(prepared), "--stack", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    base = f"s3://{BUCKET}/datasets/fruit/"
    assert f"to {base}" in out
    for name in (
        "manifest.json",
        "labels.json",
        "train/",
        "validation/",
        "train_lst/",
        "validation_lst/",
    ):
        assert f"{base}{name}" in out
    assert f"{BUCKET}/datasets/fruit/test/" not in out  # no test channel for 80/20
    assert "datasets/fruit/manifest.json" in _keys(s3)


def test_cli_dry_run_says_so(prepared, s3, capsys):
    code = main(["upload", str(prepared), "--bucket", BUCKET, "--prefix", "/x/y/", "--dry-run"])
    assert code == 0
    out = capsys.readouterr().out
    assert "would upload" in out
    assert "dry run" in out
    assert f"s3://{BUCKET}/x/y/" in out
    assert _keys(s3) == set()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bucket", "nope"], "bucket 'nope' does not exist"),
        (["--stack", "Missing-Stack"], "Missing-Stack"),
        (["--bucket", BUCKET, "--prefix", "/"], "--prefix must not be empty"),
        (["--bucket", BUCKET, "--jobs", "0"], "--jobs 0"),
    ],
)
def test_cli_upload_user_errors_are_one_line(prepared, s3, capsys, args, message):
    code = main(["upload", str(prepared), "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_cli_upload_of_a_folder_without_manifest(tmp_path, s3, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["upload", str(tmp_path / "empty"), "--bucket", BUCKET]) == 2
    assert "has no manifest.json; run 'python -m preprocessing prepare" in capsys.readouterr().err
    assert main(["upload", str(tmp_path / "missing"), "--bucket", BUCKET]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_stack_output_key_missing(s3):
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"Other": {"Value": "x"}},
    }
    cfn.create_stack(StackName="Grocery-Storage", TemplateBody=json.dumps(template))
    with pytest.raises(UserError, match=r"no output 'TrainingDataBucketName'.*pass --bucket"):
        upload_module.bucket_from_stack(boto3.Session(region_name="us-east-1"), "Grocery-Storage")
