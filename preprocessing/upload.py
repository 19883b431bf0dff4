"""``upload``: copy a prepared OUT/ folder to ``s3://BUCKET/PREFIX/``, in parallel and resumably.

* An object is skipped when one with the same size and the same sha256 (stored as object
  metadata ``sha256`` by a previous upload) already exists: ETags of SSE-KMS objects are not
  MD5s, so they cannot be compared with local files.
* No encryption arguments are sent: the bucket's default encryption (SSE-KMS in the storage
  stack) applies, so no key id is hard-coded here.
* manifest.json goes last, and only if everything else succeeded: its presence in S3 means
  the dataset under the prefix is complete.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from tqdm import tqdm

from preprocessing.errors import UserError
from preprocessing.manifest import LABELS, MANIFEST

BUCKET_OUTPUT_KEY = "TrainingDataBucketName"
SHA256_METADATA = "sha256"  # stored as x-amz-meta-sha256
CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".lst": "text/plain",
    ".json": "application/json",
    ".csv": "text/csv",
}
_NO_THREADS = TransferConfig(use_threads=False)


@dataclass
class UploadSummary:
    bucket: str
    prefix: str
    uploaded: int = 0
    skipped: int = 0
    uploaded_bytes: int = 0
    stale: list[str] = field(default_factory=list)
    deleted: int = 0
    dry_run: bool = False

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/"


def normalize_prefix(prefix: str) -> str:
    cleaned = prefix.strip().strip("/")
    if not cleaned:
        raise UserError("--prefix must not be empty; use e.g. datasets/grocery")
    if "//" in cleaned:
        raise UserError(f"--prefix {prefix!r} contains an empty path segment ('//'); remove it")
    return cleaned


def default_prefix(out: Path) -> str:
    return f"datasets/{out.resolve().name}"


def bucket_from_stack(session, stack: str) -> str:
    """The training-data bucket name from the storage stack's outputs (shared with grocery CLI)."""
    from grocery.errors import CommandError
    from grocery.stack_outputs import stack_output

    try:
        return stack_output(stack, BUCKET_OUTPUT_KEY, session=session)
    except CommandError as exc:
        raise UserError(f"{exc}; or pass --bucket") from None


def local_files(out: Path) -> list[tuple[Path, str]]:
    """(path, key suffix) of every file to upload; manifest.json last."""
    if not (out / MANIFEST).is_file():
        raise UserError(
            f"{out} has no {MANIFEST}; run 'python -m preprocessing prepare SOURCE {out}' first"
        )
    files = []
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            files.append((path, rel.as_posix()))
    files.sort(key=lambda entry: entry[1] == MANIFEST)
    return files


def upload(
    out: Path,
    s3,
    bucket: str,
    prefix: str,
    *,
    jobs: int = 16,
    dry_run: bool = False,
    delete_stale: bool = False,
    progress: bool = True,
) -> UploadSummary:
    prefix = normalize_prefix(prefix)
    if jobs < 1:
        raise UserError(f"--jobs {jobs} must be at least 1")
    files = local_files(out)
    summary = UploadSummary(bucket, prefix, dry_run=dry_run)
    existing = _list_sizes(s3, bucket, prefix)
    wanted = {f"{prefix}/{rel}" for _, rel in files}
    summary.stale = sorted(key for key in existing if key not in wanted)
    body = [entry for entry in files if entry[1] != MANIFEST]
    last = [entry for entry in files if entry[1] == MANIFEST]
    failures: list[tuple[str, str]] = []
    with (
        tqdm(
            total=len(files), unit="file", desc="upload", disable=None if progress else True
        ) as bar,
        ThreadPoolExecutor(max_workers=jobs) as pool,
    ):
        for group in (body, last):
            if failures:
                break  # never publish a manifest for an incomplete dataset
            futures = {
                pool.submit(
                    _sync_one,
                    s3,
                    bucket,
                    f"{prefix}/{rel}",
                    path,
                    existing=existing,
                    dry_run=dry_run,
                ): rel
                for path, rel in group
            }
            for future in as_completed(futures):
                try:
                    sent, size = future.result()
                except (ClientError, BotoCoreError, OSError) as exc:
                    failures.append((futures[future], _aws_message(exc)))
                else:
                    if sent:
                        summary.uploaded += 1
                        summary.uploaded_bytes += size
                    else:
                        summary.skipped += 1
                bar.update(1)
    if failures:
        rel, message = sorted(failures)[0]
        raise UserError(
            f"{len(failures)} of {len(files)} uploads failed (first: {rel}: {message}); "
            f"{MANIFEST} was not uploaded; re-run the same command to resume"
        )
    if delete_stale and summary.stale and not dry_run:
        for start in range(0, len(summary.stale), 1000):
            chunk = summary.stale[start : start + 1000]
            s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
            )
            summary.deleted += len(chunk)
    return summary


def _list_sizes(s3, bucket: str, prefix: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/"
        ):
            for obj in page.get("Contents", []):
                sizes[obj["Key"]] = obj["Size"]
    except NoCredentialsError:
        raise UserError(
            "no AWS credentials found; configure them (aws configure, AWS_PROFILE) or pass --profile"
        ) from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            raise UserError(
                f"bucket {bucket!r} does not exist; check --bucket, or use --stack to read it "
                "from the deployed storage stack"
            ) from None
        raise UserError(f"cannot list s3://{bucket}/{prefix}/: {_aws_message(exc)}") from None
    except BotoCoreError as exc:
        raise UserError(f"cannot reach S3: {_aws_message(exc)}") from None
    return sizes


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sync_one(s3, bucket, key, path: Path, *, existing: dict[str, int], dry_run: bool):
    """Upload one file unless an identical object exists. Returns (uploaded?, size)."""
    size = path.stat().st_size
    digest = file_sha256(path)
    if existing.get(key) == size:
        head = s3.head_object(Bucket=bucket, Key=key)
        if head.get("Metadata", {}).get(SHA256_METADATA) == digest:
            return False, size
    if not dry_run:
        content_type = CONTENT_TYPES.get(path.suffix.lower()) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        s3.upload_file(
            str(path),
            bucket,
            key,
            ExtraArgs={"Metadata": {SHA256_METADATA: digest}, "ContentType": content_type},
            Config=_NO_THREADS,
        )
    return True, size


def pipeline_uris(out: Path, summary: UploadSummary) -> list[tuple[str, str]]:
    """The S3 URIs the training pipeline takes, in the order it lists its channels."""
    base = summary.uri
    data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    uris = [("dataset", base), ("manifest", f"{base}{MANIFEST}"), ("labels", f"{base}{LABELS}")]
    for channel in data.get("channels", {}):
        uris.append((channel, f"{base}{channel}/"))
        uris.append((f"{channel}_lst", f"{base}{channel}_lst/"))
    return uris


def _aws_message(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip()
    return " ".join(str(exc).split())
