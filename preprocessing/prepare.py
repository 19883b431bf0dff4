"""``prepare``: list the source, conform every image in a process pool, split, write OUT/.

Image data never accumulates: at most ``workers * IN_FLIGHT_PER_WORKER`` batches of *paths*
are queued, workers read, check and write one image at a time, and only small per-image
metadata (status, sha256) comes back to the parent, which keeps it for the split and the
.lst files (about 1 kB per image, measured by benchmarks/bench_prepare.py).
The official split writes images straight into their channel; a percentage split needs the
validated images and their hashes first, so it stages them in OUT/.staging and moves them.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from preprocessing import additions, images, manifest, outdir, splits
from preprocessing.errors import DatasetError, UserError
from preprocessing.lst import write_lst
from preprocessing.sources import GROCERY_LISTS, Item, Source, load_source

NOT_IN_POOL = "not_in_pool"
DEFAULT_POOL = ("train", "test")  # the original write-up's 5,125 images
BATCH = 32
IN_FLIGHT_PER_WORKER = 4
STAGING = outdir.STAGING
MIN_SIZE, MAX_SIZE = 32, 4096
MAX_LEAK_GROUPS = 50  # listed in manifest.json; all are counted


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class Options:
    source: Path
    out: Path
    split: str | None = None  # None: official for the Grocery layout, else 80/20
    size: int = 348
    min_side: int = 224
    quality: int = 95
    seed: int = 0
    pool: tuple[str, ...] | None = None
    workers: int = field(default_factory=default_workers)
    overwrite: bool = False
    progress: bool = True
    additions: Path | None = None  # a `grocery review export` folder (preprocessing/additions.py)


@dataclass
class Summary:
    out: Path
    split: str
    num_classes: int
    written: dict[str, int]
    copied: int
    converted: int
    rejected: int
    excluded: int
    leakage: dict[str, int]
    seconds: float
    additions: dict | None = None  # the manifest's `additions` section

    @property
    def images(self) -> int:
        return sum(self.written.values())

    def line(self) -> str:
        written = ", ".join(f"{ch} {n}" for ch, n in self.written.items())
        leaks = sum(self.leakage.values())
        leak_detail = ", ".join(f"{k} {v}" for k, v in self.leakage.items() if v)
        return (
            f"prepared {self.images} images in {self.out} ({self.split} split, "
            f"{self.num_classes} classes): {written} | copied {self.copied}, converted "
            f"{self.converted} | rejected {self.rejected}, excluded {self.excluded} "
            f"(see {manifest.REJECTED}) | leakage pairs {leaks}"
            + (f" ({leak_detail})" if leak_detail else "")
            + (additions.line(self.additions) if self.additions else "")
            + f" | {self.seconds:.1f}s"
        )


def prepare(opts: Options) -> Summary:
    started = time.perf_counter()
    settings = _check_options(opts)
    out = outdir.check(opts.out, opts.source, opts.overwrite)  # refused before any work
    source, spec = _load(opts, out)
    extra = additions.load(opts.additions, source.labels) if opts.additions else None
    items, rejected = _apply_pool(source, spec, opts.pool)
    if extra:
        additions.check_names(extra, items)
        rejected.extend(extra.rejected)
    every = items + (extra.items if extra else [])  # reviewed photos go straight to train/
    outdir.reset(out, opts.out)
    staging = out / STAGING
    # The official split knows each image's channel up front: write it in place. A percentage
    # split needs the validated images (and their hashes) first: stage, then move.
    if spec.is_official:
        folders = {(out / splits.official_channel(i.origin) / i.out_name).parent for i in items}

        def target(index: int, item: Item) -> Path:
            return out / splits.official_channel(item.origin) / item.out_name

    else:
        folders = {staging}

        def target(index: int, item: Item) -> Path:
            return staging / f"{index}.jpg"

    folders |= {(out / splits.TRAIN / i.out_name).parent for i in every[len(items) :]}

    def place_at(index: int, item: Item) -> Path:
        if item.origin == additions.ORIGIN:
            return out / splits.TRAIN / item.out_name
        return target(index, item)

    try:
        for folder in sorted(folders):
            folder.mkdir(parents=True, exist_ok=True)
        usable, reviewed, counts = _sort(
            every, _process_all(every, place_at, settings, opts), rejected
        )
        placed = splits.assign(usable, spec, opts.seed, source.labels)
        if not spec.is_official:
            index_of = {id(item): index for index, item in enumerate(items)}
            for p in placed:
                final = out / p.channel / p.item.out_name
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(target(index_of[id(p.item)], p.item), final)
        if extra:  # after the split: the leakage check needs the validation/test images
            kept, not_kept = additions.place(reviewed, placed, out)
            placed += kept
            rejected += not_kept
    except UserError as exc:  # a class without usable images...: OUT keeps rejected.csv only
        outdir.clear(out)
        raise outdir.failed(exc, out, rejected) from None
    except BaseException:
        outdir.clear(out)  # no half-written dataset left behind (it would lack a manifest anyway)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    leaks = splits.find_leaks(placed)
    pairs = splits.leak_pairs(leaks)
    section = additions.summary(extra, len(kept), rejected) if extra else None
    written = _write_metadata(
        out,
        source=source,
        spec=spec,
        opts=opts,
        settings=settings,
        placed=placed,
        rejected=rejected,
        counts=counts,
        leaks=leaks,
        extra=extra,
        section=section,
    )
    excluded = sum(1 for _, reason, _ in rejected if reason == NOT_IN_POOL)
    return Summary(
        out=out,
        split=spec.name,
        num_classes=len(source.labels),
        written=written,
        copied=counts[images.COPIED],
        converted=counts[images.CONVERTED],
        rejected=len(rejected) - excluded,
        excluded=excluded,
        leakage=pairs,
        seconds=time.perf_counter() - started,
        additions=section,
    )


# --------------------------------------------------------------------------- steps


def _check_options(opts: Options) -> images.Settings:
    if not MIN_SIZE <= opts.size <= MAX_SIZE:
        raise UserError(
            f"--size {opts.size} is out of range; use a pixel size between {MIN_SIZE} and "
            f"{MAX_SIZE} (default 348)"
        )
    if opts.min_side < 1 or opts.min_side > opts.size:
        raise UserError(
            f"--min-side {opts.min_side} must be between 1 and --size ({opts.size}); it is the "
            "smallest input side accepted, at least the training image_shape (224)"
        )
    if not 1 <= opts.quality <= 100:
        raise UserError(f"--quality {opts.quality} must be between 1 and 100 (default 95)")
    if opts.workers < 1:
        raise UserError(f"--workers {opts.workers} must be at least 1")
    return images.Settings(size=opts.size, min_side=opts.min_side, quality=opts.quality)


def _load(opts: Options, out: Path) -> tuple[Source, splits.SplitSpec]:
    try:
        source = load_source(opts.source)
    except DatasetError as exc:  # e.g. an empty class: still say which files were not used
        raise outdir.failed(exc, out, ()) from None
    spec = splits.parse_split(opts.split or ("official" if source.has_official_splits else "80/20"))
    if spec.is_official and not source.has_official_splits:
        raise UserError(
            f"--split official needs the Grocery Store Dataset lists (classes.csv, train.txt, "
            f"val.txt, test.txt) but {opts.source} has the folder layout; use --split 80/20"
        )
    return source, spec


def _apply_pool(
    source: Source, spec: splits.SplitSpec, pool: tuple[str, ...] | None
) -> tuple[list[Item], list[tuple[str, str, str]]]:
    rejected = [(r.rel, r.reason, r.detail) for r in source.rejected]
    if pool is not None:
        if spec.is_official or not source.has_official_splits:
            raise UserError(
                "--pool only applies to a percentage split (e.g. --split 80/20) of the Grocery "
                "Store Dataset layout; drop --pool"
            )
        unknown = sorted(set(pool) - set(GROCERY_LISTS))
        if unknown or not pool:
            raise UserError(
                f"--pool {','.join(pool)!r}: use a comma-separated subset of train,val,test"
            )
    if spec.is_official or not source.has_official_splits:
        return list(source.items), rejected
    pool = pool or DEFAULT_POOL
    items = []
    for item in source.items:
        if item.origin in pool:
            items.append(item)
        else:
            detail = f"{GROCERY_LISTS[item.origin]} is not in --pool {','.join(pool)}"
            rejected.append((item.rel, NOT_IN_POOL, detail))
    return items, rejected


def _sort(
    every: list[Item], results: list[images.Result], rejected: list[tuple[str, str, str]]
) -> tuple[list[tuple[Item, str]], list[tuple[Item, str]], dict[str, int]]:
    """(dataset images, reviewed photos) that conformed, with their sha256; the counts."""
    usable: list[tuple[Item, str]] = []
    reviewed: list[tuple[Item, str]] = []
    counts = {images.COPIED: 0, images.CONVERTED: 0}
    for item, result in zip(every, results, strict=True):
        if result.status == images.REJECTED:
            rejected.append((item.rel, result.reason, result.detail))
        else:
            counts[result.status] += 1
            is_reviewed = item.origin == additions.ORIGIN
            (reviewed if is_reviewed else usable).append((item, result.sha256))
    return usable, reviewed, counts


def conform_batch(
    batch: list[tuple[int, str, str]], settings: images.Settings
) -> list[tuple[int, images.Result]]:
    """Worker entry point (module level so it pickles): conform a batch of images."""
    return [(index, images.conform(Path(src), Path(dst), settings)) for index, src, dst in batch]


def _process_all(
    items: list[Item],
    target: Callable[[int, Item], Path],
    settings: images.Settings,
    opts: Options,
) -> list[images.Result]:
    def batches():  # built lazily: only the batches in flight exist at any time
        for start in range(0, len(items), BATCH):
            stop = min(start + BATCH, len(items))
            yield [(i, items[i].src, str(target(i, items[i]))) for i in range(start, stop)]

    results: list[images.Result | None] = [None] * len(items)
    with tqdm(
        total=len(items), unit="img", desc="prepare", disable=None if opts.progress else True
    ) as bar:

        def collect(done: list[tuple[int, images.Result]]) -> None:
            for index, result in done:
                results[index] = result
            bar.update(len(done))

        if opts.workers == 1:
            for batch in batches():
                collect(conform_batch(batch, settings))
        else:
            with ProcessPoolExecutor(max_workers=opts.workers) as executor:
                pending: set[Future] = set()
                limit = opts.workers * IN_FLIGHT_PER_WORKER
                for batch in batches():
                    if len(pending) >= limit:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in finished:
                            collect(future.result())
                    pending.add(executor.submit(conform_batch, batch, settings))
                for future in pending:
                    collect(future.result())
    return results  # type: ignore[return-value]


def _write_metadata(
    out: Path,
    *,
    source: Source,
    spec: splits.SplitSpec,
    opts: Options,
    settings: images.Settings,
    placed: list[splits.Placed],
    rejected: list[tuple[str, str, str]],
    counts: dict[str, int],
    leaks: list[splits.Leak],
    extra: additions.Additions | None = None,
    section: dict | None = None,
) -> dict[str, int]:
    labels = source.labels
    by_channel: dict[str, list[splits.Placed]] = {ch: [] for ch in splits.CHANNELS}
    for p in placed:
        by_channel[p.channel].append(p)
    channels = {}
    lst_sha256 = {}
    written = {}
    for channel, members in by_channel.items():
        if not members and channel == splits.TEST:
            continue  # no held-out test channel for a percentage split
        lst_path = manifest.lst_relpath(channel)
        digest = write_lst(out / lst_path, [(p.item.label, p.item.out_name) for p in members])
        (out / channel).mkdir(exist_ok=True)
        per_class = [0] * len(labels)
        for p in members:
            per_class[p.item.label] += 1
        lst_sha256[lst_path] = digest
        written[channel] = len(members)
        channels[channel] = {
            "images": f"{channel}/",
            "lst": lst_path,
            "count": len(members),
            "lst_sha256": digest,
            "per_class": dict(zip(labels, per_class, strict=True)),
        }
    manifest.write_json(out / manifest.LABELS, labels)
    manifest.write_rejected(out / manifest.REJECTED, rejected)
    pairs = splits.leak_pairs(leaks)
    payload = {
        "format_version": manifest.FORMAT_VERSION,
        "num_classes": len(labels),
        "num_training_samples": written[splits.TRAIN],
        "num_validation_samples": written[splits.VALIDATION],
        "num_test_samples": written.get(splits.TEST, 0),
        "image_shape": f"3,{settings.size},{settings.size}",
        "image_size": settings.size,
        "labels": labels,
        "coarse_labels": source.coarse_labels,
        "coarse_label_ids": source.coarse_label_ids,
        "split": {
            "name": spec.name,
            "seed": opts.seed,
            "validation_fraction": None if spec.is_official else spec.validation_fraction,
            "pool": None
            if spec.is_official or not source.has_official_splits
            else list(opts.pool or DEFAULT_POOL),
        },
        "source": {"path": str(source.root), "layout": source.layout},
        "settings": {
            "size": settings.size,
            "min_side": settings.min_side,
            "quality": settings.quality,
            "non_square": "resize to size x size without cropping (as the algorithm at inference)",
        },
        "channels": channels,
        "lst_sha256": lst_sha256,
        "counts": {
            "written": written,
            "copied": counts[images.COPIED],
            "converted": counts[images.CONVERTED],
            "rejected": sum(1 for row in rejected if row[1] != NOT_IN_POOL),
            "excluded": sum(1 for row in rejected if row[1] == NOT_IN_POOL),
        },
        "rejected_reasons": manifest.reason_counts(rejected),
        "leakage": {
            "pairs": pairs,
            # Capped: the training pipeline loads manifest.json into a Step Functions state
            # (256 kB limit), and a badly duplicated dataset could have thousands of groups.
            "groups_total": len(leaks),
            "groups": [
                {"sha256": leak.sha256, **leak.channels} for leak in leaks[:MAX_LEAK_GROUPS]
            ],
        },
        # Where every image came from (dataset path, or review decision): sources.csv.
        "image_sources": additions.write_sources(out, placed, extra),
        "additions": section,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    manifest.write_json(out / manifest.MANIFEST, payload)
    return written
