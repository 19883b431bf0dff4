"""Benchmark ``python -m preprocessing prepare`` against a naive single-process Pillow loop.

Both run in the same invocation over the same images (the full Grocery Store Dataset copy:
every file of train.txt, val.txt and test.txt), each in its own subprocess so that their
memory is measured separately:

* naive: for each image ``Image.open -> convert("RGB") -> resize((SIZE, SIZE)) -> save(q=95)``;
* prepare: the real command, ``--workers N`` (default 2).

Reported: images/s (best of --repeat runs, after one warm-up read of every file so both
see a warm page cache), the speed-up, and peak memory: the peak sum of PSS over the
process tree (the parent and its pool workers, sampled every 50 ms from /proc; PSS shares
copy-on-write pages fairly instead of counting them once per worker) and the largest
single-process peak RSS (VmHWM). To show that memory does not grow with the dataset, prepare also
runs on a folder-layout copy of the dataset made of symlinks, at 1x and --scale x.

Usage (Linux):
    .venv/bin/python benchmarks/bench_prepare.py [--source DIR] [--workers 2] [--scale 4]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from preprocessing.sources import load_source  # noqa: E402

DEFAULT_SOURCE = Path("/work/shared/datasets/GroceryStoreDataset")


@dataclass
class Run:
    images: int
    seconds: float
    peak_pss_mb: float
    max_rss_mb: float
    cpu_seconds: float  # user + sys of the whole process tree

    @property
    def rate(self) -> float:
        return self.images / self.seconds


# --------------------------------------------------------------------------- measuring


def _tree_memory_kb(root_pid: int) -> tuple[int, int]:
    """(sum of PSS, largest VmHWM) in kB over root_pid and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, high_water, stack = 0, 0, [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        total += _proc_field(f"/proc/{pid}/smaps_rollup", "Pss:")
        high_water = max(high_water, _proc_field(f"/proc/{pid}/status", "VmHWM:"))
    return total, high_water


def _proc_field(path: str, name: str) -> int:
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(name):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _measure(command: list[str], images: int) -> Run:
    """Run command as a subprocess; time it and sample its process tree's memory."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak, high_water = 0, 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, high_water
        while not done.is_set():
            pss, hwm = _tree_memory_kb(process.pid)
            peak, high_water = max(peak, pss), max(high_water, hwm)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(command)}\n{stderr.decode()}")
    return Run(images, seconds, peak / 1024, high_water / 1024, _children_cpu() - cpu_before)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # includes waited-for grandchildren
    return usage.ru_utime + usage.ru_stime


def naive_loop(list_file: Path, out: Path, size: int) -> None:
    """The baseline: one process, every image decoded, resized and re-encoded."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    for index, line in enumerate(list_file.read_text().splitlines()):
        with Image.open(line) as image:
            image.convert("RGB").resize((size, size)).save(out / f"{index}.jpg", quality=95)


# --------------------------------------------------------------------------- scenarios


def _symlink_tree(source: Path, target: Path, copies: int) -> int:
    """A folder-layout dataset of symlinks to every listed image, ``copies`` times over."""
    listed = load_source(source)
    count = 0
    for item in listed.items:
        folder = target / listed.labels[item.label]
        folder.mkdir(parents=True, exist_ok=True)
        for copy in range(copies):
            os.symlink(item.src, folder / f"{copy}_{item.origin}_{Path(item.src).name}")
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=348)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    parser.add_argument("--scale", type=int, default=4, help="copies for the memory check")
    parser.add_argument(
        "--tmp",
        type=Path,
        help="where outputs are written (default: the system temp dir); e.g. /dev/shm takes "
        "the disk's file-creation cost out of both contenders",
    )
    parser.add_argument("--naive", nargs=3, metavar=("LIST", "OUT", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive:
        naive_loop(Path(args.naive[0]), Path(args.naive[1]), int(args.naive[2]))
        return

    python = sys.executable
    source = load_source(args.source)
    paths = [str(item.src) for item in source.items]
    with tempfile.TemporaryDirectory(prefix="bench-prepare-", dir=args.tmp) as tmp_name:
        tmp = Path(tmp_name)
        list_file = tmp / "images.txt"
        list_file.write_text("\n".join(paths) + "\n")
        for path in paths:  # warm the page cache for both contenders
            Path(path).read_bytes()

        def best(make_commands, images: int) -> list[Run]:
            """Run the commands in turn, --repeat times (interleaved); keep each one's best."""
            runs: list[list[Run]] = [[] for _ in make_commands]
            for attempt in range(args.repeat):
                for position, make_command in enumerate(make_commands):
                    out = tmp / f"out-{attempt}-{position}"
                    runs[position].append(_measure(make_command(out), images))
                    shutil.rmtree(out, ignore_errors=True)
            return [min(found, key=lambda run: run.seconds) for found in runs]

        prep_cmd = [python, "-m", "preprocessing", "prepare", "--no-progress"]
        options = ["--workers", str(args.workers), "--size", str(args.size)]
        naive, prepared = best(
            [
                lambda out: [python, __file__, "--naive", str(list_file), str(out), str(args.size)],
                lambda out: [
                    *prep_cmd,
                    str(args.source),
                    str(out),
                    "--split",
                    "official",
                    *options,
                ],
            ],
            len(paths),
        )
        scaled = {}
        for copies in (1, args.scale):
            tree = tmp / f"tree-{copies}"
            count = _symlink_tree(args.source, tree, copies)
            command = [*prep_cmd, str(tree), "OUT", "--split", "80/20", *options]
            (scaled[copies],) = best(
                [lambda out, command=command: [str(out) if c == "OUT" else c for c in command]],
                count,
            )
            shutil.rmtree(tree)

    cpus = len(os.sched_getaffinity(0))
    load = os.getloadavg()[0]
    print(
        f"images: {len(paths)} ({args.source}), size {args.size}, CPUs available: {cpus}, "
        f"outputs in {args.tmp or tempfile.gettempdir()}, "
        f"load average at the end: {load:.2f} (other processes compete for the CPUs)"
    )
    header = f"{'run':<46} {'images':>7} {'seconds':>8} {'img/s':>7} {'CPU ms/img':>10}"
    print(f"{header} {'peak PSS MB':>11} {'max RSS MB':>10}")
    rows = [
        ("naive loop (1 process, re-encode all)", naive),
        (f"prepare --split official --workers {args.workers}", prepared),
        *(
            (f"prepare folders x{k} --split 80/20 --workers {args.workers}", run)
            for k, run in scaled.items()
        ),
    ]
    for name, run in rows:
        print(
            f"{name:<46} {run.images:>7} {run.seconds:>8.2f} {run.rate:>7.0f} "
            f"{run.cpu_seconds / run.images * 1000:>10.2f} {run.peak_pss_mb:>11.1f} "
            f"{run.max_rss_mb:>10.1f}"
        )
    print(f"speed-up of prepare over the naive loop: {prepared.rate / naive.rate:.1f}x")
    print(
        json.dumps(
            {
                "images": len(paths),
                "workers": args.workers,
                "cpus": cpus,
                "load_average": round(load, 2),
                "naive_cpu_ms_per_image": round(naive.cpu_seconds / naive.images * 1000, 3),
                "prepare_cpu_ms_per_image": round(prepared.cpu_seconds / prepared.images * 1000, 3),
                "naive_images_per_s": round(naive.rate, 1),
                "prepare_images_per_s": round(prepared.rate, 1),
                "speedup": round(prepared.rate / naive.rate, 2),
                "prepare_peak_pss_mb": round(prepared.peak_pss_mb, 1),
                "naive_peak_pss_mb": round(naive.peak_pss_mb, 1),
                "scaled_peak_pss_mb": {k: round(r.peak_pss_mb, 1) for k, r in scaled.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
