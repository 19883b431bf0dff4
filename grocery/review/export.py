"""`python -m grocery review export --out DIR`: the reviewed photos as a local folder.

    DIR/decisions/<id>.json   every Decision, as saved in s3://<inference bucket>/review/decisions/
    DIR/images/<id>.<suffix>  the photo of every decision with verdict "label"

`python -m preprocessing prepare ... --additions DIR` reads this folder. Exporting first
keeps prepare offline and reproducible (the folder is a snapshot; the photos the API kept
expire under review/images/ by lifecycle). Run it again to add new decisions: files already
there are kept (decisions never change), each file is written whole or not at all.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from botocore.exceptions import ClientError

from grocery.aws import error_code
from grocery_common import review_queue as rq

DECISIONS = rq.EXPORT_DECISIONS
IMAGES = rq.EXPORT_IMAGES


@dataclasses.dataclass
class ExportSummary:
    out: Path
    new: int = 0
    kept: int = 0
    verdicts: dict[str, int] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(rq.VERDICTS, 0)
    )
    photos: int = 0
    missing: list[str] = dataclasses.field(default_factory=list)  # photos no longer in S3

    def line(self) -> str:
        v = self.verdicts
        text = (
            f"exported {self.new + self.kept} decisions to {self.out} ({self.new} new, "
            f"{self.kept} already there): {v[rq.LABELLED]} labelled ({self.photos} photos), "
            f"{v[rq.NOT_GROCERY]} not a grocery product, {v[rq.SKIPPED]} skipped"
        )
        if self.missing:
            text += (
                f"; {len(self.missing)} labelled photos are gone from S3 (expired?), e.g. "
                f"{self.missing[0]}: prepare lists them in rejected.csv"
            )
        return text


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def export(s3, bucket: str, out: Path) -> ExportSummary:
    summary = ExportSummary(out=out)
    (out / DECISIONS).mkdir(parents=True, exist_ok=True)
    (out / IMAGES).mkdir(exist_ok=True)
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=rq.DECISIONS_PREFIX
    ):
        for entry in page.get("Contents", []):
            if not entry["Key"].endswith(".json"):
                continue
            item_id = rq.item_id_of(entry["Key"])
            local = out / DECISIONS / f"{item_id}.json"
            if local.is_file():
                body = local.read_bytes()
                summary.kept += 1
            else:
                body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
                summary.new += 1
            decision = rq.Decision.from_json(body, where=f"s3://{bucket}/{entry['Key']}")
            if not local.is_file():
                _write(local, body)
            summary.verdicts[decision.verdict] += 1
            if decision.verdict == rq.LABELLED:
                _export_photo(
                    s3, decision, out / IMAGES / rq.exported_photo_name(decision), summary
                )
    return summary


def _export_photo(s3, decision: rq.Decision, path: Path, summary: ExportSummary) -> None:
    if not path.is_file():
        item = decision.item
        try:
            data = s3.get_object(Bucket=item.bucket, Key=item.key)["Body"].read()
        except ClientError as error:
            if error_code(error) not in ("NoSuchKey", "404"):
                raise
            summary.missing.append(f"s3://{item.bucket}/{item.key}")
            return
        _write(path, data)
    summary.photos += 1
