"""Command line: ``python -m preprocessing prepare|upload ...``.

Exit codes, the same as ``python -m grocery`` (docs/operations.md): 0 success; 1 the command
ran and failed (an OS error while writing, e.g. disk full); 2 something must be fixed first
(bad usage, or a bad input: one ``error: ...`` line on stderr); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from preprocessing.errors import UserError
from preprocessing.prepare import DEFAULT_POOL, Options, default_workers, prepare

# upload (and boto3, ~12 MB) is imported only by the upload command: prepare's forked
# workers stay small.
DEFAULT_STACK = "Grocery-Storage"

USER_ERROR = 2
USAGE_ERROR = 2
RUN_FAILED = 1


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage mistakes on one line instead of usage + error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(USAGE_ERROR, f"error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m preprocessing",
        description="Prepare a folder of photos for the SageMaker image-classification "
        "algorithm and upload it to the training-data bucket.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    prep = commands.add_parser(
        "prepare",
        help="turn SOURCE into train/validation(/test) channels, .lst files and a manifest",
        description="Write OUT/train, OUT/validation (and OUT/test), OUT/<channel>_lst/"
        "<channel>.lst, labels.json, manifest.json and rejected.csv from SOURCE. Every output "
        "image is an RGB JPEG of exactly SIZE x SIZE: conforming JPEGs are copied byte for "
        "byte, others are EXIF-rotated, converted to RGB and resized to SIZE x SIZE without "
        "cropping (as the algorithm resizes at inference).",
    )
    prep.add_argument(
        "source",
        type=Path,
        metavar="SOURCE",
        help="the Grocery Store Dataset (folder with classes.csv + train/val/test.txt, or its "
        "parent) or a folder laid out as SOURCE/<class name>/*.jpg|*.jpeg|*.png",
    )
    prep.add_argument("out", type=Path, metavar="OUT", help="output folder (empty or new)")
    prep.add_argument(
        "--split",
        metavar="official|TRAIN/VAL",
        help="'official': the dataset's train.txt/val.txt/test.txt (test becomes a held-out "
        "test channel); '80/20' (or any TRAIN/VAL percentages): pool the images and split each "
        "class 80%% train / 20%% validation, reproducibly from --seed. Default: official for "
        "the Grocery layout, 80/20 for the folder layout",
    )
    prep.add_argument(
        "--size",
        type=int,
        default=348,
        help="output images are SIZE x SIZE pixels (default 348, as in the original write-up)",
    )
    prep.add_argument(
        "--min-side",
        type=int,
        default=224,
        help="reject inputs whose shorter side is below this many pixels (default 224: the "
        "algorithm's default training image_shape; training fails on smaller images)",
    )
    prep.add_argument("--seed", type=int, default=0, help="seed of a percentage split (default 0)")
    prep.add_argument(
        "--pool",
        metavar="LISTS",
        help="Grocery layout with a percentage split only: which official lists to pool, "
        f"comma separated (default {','.join(DEFAULT_POOL)}: the 5,125 images of the original "
        "write-up; files of other lists go to rejected.csv as not_in_pool)",
    )
    prep.add_argument(
        "--quality", type=int, default=95, help="JPEG quality of re-encoded images (default 95)"
    )
    prep.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help=f"worker processes (default: the CPUs available, here {default_workers()})",
    )
    prep.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous prepare output in OUT (refuses if OUT holds other files)",
    )
    prep.add_argument(
        "--additions",
        type=Path,
        metavar="DIR",
        help="also add the photos people labelled on the review page, from the folder "
        "`python -m grocery review export --out DIR` wrote: verdict 'label' only, to the train "
        "channel, except copies of validation/test images; sources.csv records where every "
        "image came from",
    )
    prep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    prep.set_defaults(handler=_run_prepare)

    up = commands.add_parser(
        "upload",
        help="upload a prepared OUT folder to s3://BUCKET/PREFIX/",
        description="Upload OUT to s3://BUCKET/PREFIX/ with parallel threads. Resumable: "
        "objects already there with the same size and sha256 (object metadata) are skipped. "
        "The bucket's default encryption (SSE-KMS) applies. manifest.json is uploaded last. "
        "Prints the S3 URIs the training pipeline takes.",
    )
    up.add_argument("out", type=Path, metavar="OUT", help="folder written by 'prepare'")
    where = up.add_mutually_exclusive_group(required=True)
    where.add_argument("--bucket", help="training-data bucket name")
    where.add_argument(
        "--stack",
        nargs="?",
        const=DEFAULT_STACK,
        metavar="NAME",
        help=f"read the bucket from the deployed storage stack's output TrainingDataBucketName "
        f"(NAME defaults to {DEFAULT_STACK})",
    )
    up.add_argument(
        "--prefix",
        help="key prefix of the dataset (default datasets/<name of OUT>); the training "
        "pipeline reads <prefix>/manifest.json and the channels under it",
    )
    up.add_argument("--dry-run", action="store_true", help="compare and report, upload nothing")
    up.add_argument(
        "--delete-stale",
        action="store_true",
        help="delete objects under the prefix that are not in OUT (left by an earlier upload)",
    )
    up.add_argument("--jobs", type=int, default=16, help="parallel uploads (default 16)")
    up.add_argument("--region", help="AWS region (default: your AWS configuration)")
    up.add_argument("--profile", help="AWS profile (default: your AWS configuration)")
    up.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    up.set_defaults(handler=_run_upload)
    return parser


def _run_prepare(args: argparse.Namespace) -> int:
    pool = None
    if args.pool is not None:
        pool = tuple(part.strip() for part in args.pool.split(",") if part.strip())
    summary = prepare(
        Options(
            source=args.source,
            out=args.out,
            split=args.split,
            size=args.size,
            min_side=args.min_side,
            quality=args.quality,
            seed=args.seed,
            pool=pool,
            workers=args.workers,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            additions=args.additions,
        )
    )
    print(summary.line())
    return 0


def _run_upload(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError

    from preprocessing.upload import bucket_from_stack, default_prefix, pipeline_uris, upload

    out = args.out
    if not out.is_dir():
        raise UserError(f"{out} is not a folder; pass the OUT folder written by 'prepare'")
    try:
        # AWS_REGION first, as the AWS CLI v2 and the CDK read it; this boto3 reads only
        # AWS_DEFAULT_REGION (https://docs.aws.amazon.com/sdkref/latest/guide/feature-region.html).
        region = args.region or os.environ.get("AWS_REGION") or None
        session = boto3.session.Session(profile_name=args.profile, region_name=region)
        bucket = args.bucket or bucket_from_stack(session, args.stack)
        s3 = session.client("s3")
    except BotoCoreError as exc:  # unknown profile, no region, no credentials
        raise UserError(f"AWS configuration problem: {exc}") from None
    summary = upload(
        out,
        s3,
        bucket,
        args.prefix if args.prefix is not None else default_prefix(out),
        jobs=args.jobs,
        dry_run=args.dry_run,
        delete_stale=args.delete_stale,
        progress=not args.no_progress,
    )
    verb = "would upload" if summary.dry_run else "uploaded"
    print(
        f"{verb} {summary.uploaded} files ({summary.uploaded_bytes / 1e6:.1f} MB), skipped "
        f"{summary.skipped} already identical, to {summary.uri}"
        + (" (dry run: nothing was uploaded)" if summary.dry_run else "")
    )
    if summary.stale:
        action = (
            f"deleted {summary.deleted}" if summary.deleted else "pass --delete-stale to remove"
        )
        print(f"note: {len(summary.stale)} objects under {summary.uri} are not in {out} ({action})")
    width = max(len(name) for name, _ in pipeline_uris(out, summary))
    for name, uri in pipeline_uris(out, summary):
        print(f"  {name:<{width}}  {uri}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else USAGE_ERROR
    try:
        return args.handler(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permission denied while writing OUT
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error:{where}: {exc.strerror or exc}", file=sys.stderr)
        return RUN_FAILED
