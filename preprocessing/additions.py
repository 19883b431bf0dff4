"""``prepare --additions DIR``: photos people reviewed, merged into a new dataset version.

DIR is the folder ``python -m grocery review export --out DIR`` writes (decisions/<id>.json
and images/<id>.<suffix>; lambdas/grocery_common/review_queue.py). A local folder rather
than s3://: prepare stays offline and reproducible (the folder is the snapshot the dataset
was made from; the photos the API kept expire in S3), and prepare needs no AWS credentials.

* Only verdict "label" adds a photo; "not_grocery" and "skip" are counted, never used.
* A label that is not in the dataset's label list refuses the run (nothing is written).
* Reviewed photos go to the train channel only: validation and test stay those of the
  dataset, so accuracies stay comparable between versions (and reviewed photos are the hard
  cases, not a sample of what the shop sees).
* They pass the same conforming as every image, and the leakage check: a reviewed photo
  identical (sha256 after conforming) to a validation or test image is excluded
  (rejected.csv reason leaks_into_validation / leaks_into_test), since training on it would
  leak the held-out split.
* sources.csv (written with --additions) lists where every image came from (dataset path,
  or review decision id and the photo's S3 location); manifest.json `image_sources` counts
  both and holds the file's sha256 (its `additions` section what was and was not added).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lambdas.grocery_common import review_queue as rq
from preprocessing import splits
from preprocessing.errors import UserError
from preprocessing.sources import Item

ORIGIN = "review"
SOURCES = "sources.csv"
MISSING_PHOTO = "missing_file"


def leak_reason(channel: str) -> str:
    return f"leaks_into_{channel}"


@dataclass
class Additions:
    folder: Path
    items: list[Item] = field(default_factory=list)
    decisions: dict[str, rq.Decision] = field(default_factory=dict)  # by Item.rel
    verdicts: Counter = field(default_factory=Counter)
    rejected: list[tuple[str, str, str]] = field(default_factory=list)


def rel_of(decision_id: str) -> str:
    """How a reviewed photo is named in rejected.csv and sources.csv."""
    return f"review:{decision_id}"


def load(folder: Path, labels: list[str]) -> Additions:
    """Read DIR; refuse a folder that is not an export, or labels outside `labels`."""
    text = str(folder)
    if text.startswith("s3:/"):  # Path("s3://b/k") is "s3:/b/k"
        raise UserError(
            f"--additions {text}: pass the local folder written by `python -m grocery review "
            "export --out DIR` (export the decisions first; prepare reads no S3)"
        )
    decisions_dir = folder / rq.EXPORT_DECISIONS
    if not decisions_dir.is_dir():
        raise UserError(
            f"--additions {folder}: no {rq.EXPORT_DECISIONS}/ folder in it; pass the folder "
            "written by `python -m grocery review export --out DIR`"
        )
    additions = Additions(folder=folder)
    unknown: list[tuple[str, str]] = []
    index = {label: i for i, label in enumerate(labels)}
    for path in sorted(decisions_dir.glob("*.json")):
        try:
            decision = rq.Decision.from_json(path.read_bytes(), where=str(path))
        except rq.ReviewQueueError as error:
            raise UserError(f"--additions: {error}; delete or re-export that file") from None
        additions.verdicts[decision.verdict] += 1
        if decision.verdict != rq.LABELLED:
            continue
        label = decision.label or ""
        if label not in index:
            unknown.append((decision.id, label))
            continue
        rel = rel_of(decision.id)
        photo = folder / rq.EXPORT_IMAGES / rq.exported_photo_name(decision)
        if not photo.is_file():
            detail = f"the photo of review decision {decision.id} is not in {photo.parent}"
            additions.rejected.append((rel, MISSING_PHOTO, detail))
            continue
        out_name = f"{label}/{ORIGIN}_{decision.id}.jpg"
        additions.items.append(Item(str(photo.resolve()), rel, index[label], ORIGIN, out_name))
        additions.decisions[rel] = decision
    if unknown:
        shown = ", ".join(f"{i} says {label!r}" for i, label in unknown[:3])
        raise UserError(
            f"--additions {folder}: {len(unknown)} review decision(s) use labels that are not "
            f"in the dataset's label list ({len(labels)} labels): {shown}. Prepare from the "
            "dataset the reviewed model version was trained on, or delete those files from "
            f"{decisions_dir}"
        )
    return additions


def check_names(additions: Additions, items: list[Item]) -> None:
    taken = {item.out_name for item in items}
    clash = next((i.out_name for i in additions.items if i.out_name in taken), None)
    if clash:
        raise UserError(
            f"--additions: the source already has an image named {clash}; rename that file"
        )


def place(
    reviewed: list[tuple[Item, str]], placed: list[splits.Placed], out: Path
) -> tuple[list[splits.Placed], list[tuple[str, str, str]]]:
    """Reviewed (item, sha256) into train, except copies of validation/test images (removed)."""
    candidates = [splits.Placed(item, digest, splits.TRAIN) for item, digest in reviewed]
    ours = {c.item.rel for c in candidates}
    leaking: dict[str, str] = {}
    for leak in splits.find_leaks(placed + candidates):  # the check prepare reports with
        held_out = [ch for ch in (splits.TEST, splits.VALIDATION) if leak.channels.get(ch)]
        for rel in leak.channels.get(splits.TRAIN, []):
            if held_out and rel in ours:
                leaking[rel] = held_out[0]
    kept, rejected = [], []
    for candidate in candidates:
        channel = leaking.get(candidate.item.rel)
        if channel is None:
            kept.append(candidate)
            continue
        (out / splits.TRAIN / candidate.item.out_name).unlink(missing_ok=True)
        detail = f"identical to a {channel} image of the dataset: it stays held out"
        rejected.append((candidate.item.rel, leak_reason(channel), detail))
    return kept, rejected


def write_sources(out: Path, placed: list[splits.Placed], additions: Additions | None) -> dict:
    """The manifest's `image_sources`; with additions also sources.csv (every image: channel,
    path, source, decision id, where it came from)."""
    decisions = additions.decisions if additions else {}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["channel", "image", "source", "decision_id", "origin"])
    counts = Counter()
    for p in sorted(placed, key=lambda p: (p.channel, p.item.out_name)):
        decision = decisions.get(p.item.rel)
        if decision is None:
            row = [p.channel, f"{p.channel}/{p.item.out_name}", "dataset", "", p.item.rel]
        else:
            photo = f"s3://{decision.item.bucket}/{decision.item.key}"
            row = [p.channel, f"{p.channel}/{p.item.out_name}", ORIGIN, decision.id, photo]
        counts[row[2]] += 1
        writer.writerow(row)
    summary = {"counts": {"dataset": counts["dataset"], ORIGIN: counts[ORIGIN]}}
    if additions is None:  # every image is the dataset's: the .lst files say which
        return {"file": None, "sha256": None, **summary}
    data = buffer.getvalue().encode("utf-8")
    (out / SOURCES).write_bytes(data)
    return {"file": SOURCES, "sha256": hashlib.sha256(data).hexdigest(), **summary}


def summary(additions: Additions, added: int, rejected: list[tuple[str, str, str]]) -> dict:
    """The manifest's `additions` section (also what the summary line says)."""
    ours = Counter(reason for rel, reason, _ in rejected if rel.startswith(rel_of("")))
    return {
        "from": str(additions.folder.resolve()),
        "decisions": sum(additions.verdicts.values()),
        "labelled": additions.verdicts[rq.LABELLED],
        "not_grocery": additions.verdicts[rq.NOT_GROCERY],
        "skipped": additions.verdicts[rq.SKIPPED],
        "added": added,
        "not_added": dict(sorted(ours.items())),
    }


def line(section: dict) -> str:
    not_added = ", ".join(f"{reason} {n}" for reason, n in section["not_added"].items())
    return (
        f" | review additions: {section['added']} of {section['labelled']} labelled added to "
        f"train" + (f" (not added: {not_added})" if not_added else "") + f", not grocery "
        f"{section['not_grocery']} and skipped {section['skipped']} not used"
    )
