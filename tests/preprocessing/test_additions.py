"""prepare --additions: reviewed photos from a `grocery review export` folder join train."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from lambdas.grocery_common import review_queue as rq
from preprocessing.cli import main
from preprocessing.errors import UserError
from preprocessing.lst import read_lst
from preprocessing.manifest import read_rejected
from preprocessing.prepare import Options, prepare

from .conftest import make_folders, write_jpeg


def _item(decision_id: str) -> rq.ReviewItem:
    return rq.ReviewItem(
        id=decision_id,
        bucket="inference",
        key=f"review/images/2026/12/01/{decision_id}.jpg",
        top_k=rq.top_k_of([("Avocado", 0.4), ("Golden-Delicious", 0.3)]),
        model_version="3",
        time="2026-12-01T12:00:00Z",
        source="api",
    )


def export(folder: Path, decisions: list[tuple[str, str, str | None, Path | None]]) -> Path:
    """The folder `grocery review export` writes: (id, verdict, label, photo to copy)."""
    (folder / rq.EXPORT_DECISIONS).mkdir(parents=True)
    (folder / rq.EXPORT_IMAGES).mkdir()
    for decision_id, verdict, label, photo in decisions:
        decision = rq.Decision(
            decision_id, verdict, label, "ana", "2026-12-01T13:00:00Z", _item(decision_id)
        )
        (folder / rq.EXPORT_DECISIONS / f"{decision_id}.json").write_text(decision.to_json())
        if photo is not None:
            shutil.copyfile(photo, folder / rq.EXPORT_IMAGES / rq.exported_photo_name(decision))
    return folder


def _run(source: Path, out: Path, additions: Path, **kwargs):
    return prepare(
        Options(source=source, out=out, workers=1, progress=False, additions=additions, **kwargs)
    )


def _sources(out: Path) -> list[dict[str, str]]:
    with (out / "sources.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_official_split_gets_the_labelled_photos_in_train(grocery, tmp_path):
    photos = tmp_path / "photos"
    test_copy = next((grocery / "dataset" / "test").rglob("*.jpg"))
    additions = export(
        tmp_path / "reviewed",
        [
            ("d1", rq.LABELLED, "Avocado", write_jpeg(photos / "a.jpg")),
            ("d2", rq.LABELLED, "Golden-Delicious", write_jpeg(photos / "b.jpg", size=(500, 400))),
            ("d3", rq.LABELLED, "Avocado", test_copy),  # a test photo sent to the API
            ("d4", rq.LABELLED, "Avocado", None),  # its photo expired before the export
            ("d5", rq.LABELLED, "Avocado", write_jpeg(photos / "small.jpg", size=(100, 100))),
            ("d6", rq.NOT_GROCERY, None, None),
            ("d7", rq.SKIPPED, None, None),
        ],
    )
    out = tmp_path / "out"
    summary = _run(grocery, out, additions)

    assert summary.written == {"train": 14, "validation": 4, "test": 9}  # 12 + d1, d2
    train = {path: label for _, label, path in read_lst(out / "train_lst" / "train.lst")}
    assert train["Avocado/review_d1.jpg"] == 1
    assert train["Golden-Delicious/review_d2.jpg"] == 0
    assert (out / "train" / "Avocado" / "review_d1.jpg").is_file()
    assert not (out / "train" / "Avocado" / "review_d3.jpg").exists()  # stays held out

    reasons = {row["path"]: row["reason"] for row in read_rejected(out / "rejected.csv")}
    assert reasons["review:d3"] == "leaks_into_test"
    assert reasons["review:d4"] == "missing_file"
    assert reasons["review:d5"] == "too_small"  # conformed like every image

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["additions"] == {
        "from": str(additions.resolve()),
        "decisions": 7,
        "labelled": 5,
        "not_grocery": 1,
        "skipped": 1,
        "added": 2,
        "not_added": {"leaks_into_test": 1, "missing_file": 1, "too_small": 1},
    }
    assert manifest["leakage"]["pairs"]["train/test"] == 0
    sources = manifest["image_sources"]
    assert sources["counts"] == {"dataset": 25, "review": 2}
    assert sources["sha256"] == hashlib.sha256((out / "sources.csv").read_bytes()).hexdigest()
    review_rows = [row for row in _sources(out) if row["source"] == "review"]
    assert review_rows == [
        {
            "channel": "train",
            "image": "train/Avocado/review_d1.jpg",
            "source": "review",
            "decision_id": "d1",
            "origin": "s3://inference/review/images/2026/12/01/d1.jpg",
        },
        {
            "channel": "train",
            "image": "train/Golden-Delicious/review_d2.jpg",
            "source": "review",
            "decision_id": "d2",
            "origin": "s3://inference/review/images/2026/12/01/d2.jpg",
        },
    ]
    dataset_row = next(row for row in _sources(out) if row["channel"] == "test")
    assert (dataset_row["source"], dataset_row["decision_id"]) == ("dataset", "")
    assert dataset_row["origin"].startswith("test/")
    line = summary.line()
    assert "review additions: 2 of 5 labelled added to train" in line
    assert "leaks_into_test 1" in line
    assert "not grocery 1 and skipped 1 not used" in line


def test_percentage_split_keeps_validation_held_out(tmp_path):
    source = make_folders(tmp_path / "src", {"ant": 5, "bee": 5})
    plain = tmp_path / "plain"
    prepare(Options(source=source, out=plain, workers=1, progress=False))
    validation_name = read_lst(plain / "validation_lst" / "validation.lst")[0][2]
    additions = export(
        tmp_path / "reviewed",
        [
            ("v1", rq.LABELLED, "bee", plain / "validation" / validation_name),
            ("n1", rq.LABELLED, "ant", write_jpeg(tmp_path / "new.jpg")),
        ],
    )
    out = tmp_path / "out"
    summary = _run(source, out, additions)
    plain_manifest = json.loads((plain / "manifest.json").read_text())
    assert summary.written == {
        "train": plain_manifest["num_training_samples"] + 1,
        "validation": plain_manifest["num_validation_samples"],  # the split is unchanged
    }
    assert read_lst(out / "validation_lst" / "validation.lst") == read_lst(
        plain / "validation_lst" / "validation.lst"
    )
    reasons = {row["path"]: row["reason"] for row in read_rejected(out / "rejected.csv")}
    assert reasons == {"review:v1": "leaks_into_validation"}


def test_a_label_outside_the_label_list_is_refused(grocery, tmp_path):
    additions = export(
        tmp_path / "reviewed",
        [("x1", rq.LABELLED, "Banana", write_jpeg(tmp_path / "p.jpg"))],
    )
    out = tmp_path / "out"
    with pytest.raises(
        UserError, match=r"not in the dataset's label list \(3 labels\): x1 says 'Banana'"
    ):
        _run(grocery, out, additions)
    assert not out.exists()  # refused before any work


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("s3://inference/review/decisions/", "pass the local folder written by"),
        ("no-export", "no decisions/ folder"),
    ],
)
def test_not_an_export_folder(grocery, tmp_path, where, message):
    path = Path(where) if where.startswith("s3://") else tmp_path / where
    if not where.startswith("s3://"):
        path.mkdir()
    with pytest.raises(UserError, match=message):
        _run(grocery, tmp_path / "out", path)


def test_a_malformed_decision_names_its_file(grocery, tmp_path):
    folder = export(tmp_path / "reviewed", [])
    (folder / "decisions" / "bad.json").write_text('{"id": "bad"}')
    with pytest.raises(UserError, match=r"bad\.json.*re-export"):
        _run(grocery, tmp_path / "out", folder)


def test_an_out_name_clash_is_refused(tmp_path):
    source = make_folders(tmp_path / "src", {"ant": 3, "bee": 3})
    write_jpeg(source / "ant" / "review_c1.jpg")
    folder = export(
        tmp_path / "reviewed", [("c1", rq.LABELLED, "ant", write_jpeg(tmp_path / "c.jpg"))]
    )
    with pytest.raises(UserError, match=r"already has an image named ant/review_c1\.jpg"):
        _run(source, tmp_path / "out", folder)


def test_cli_option_and_overwrite(grocery, tmp_path):
    folder = export(
        tmp_path / "reviewed", [("k1", rq.LABELLED, "Avocado", write_jpeg(tmp_path / "k.jpg"))]
    )
    out = tmp_path / "out"
    args = [
        "prepare",
        str(grocery),
        str(out),
        "--workers",
        "1",
        "--no-progress",
        "--additions",
        str(folder),
    ]
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert main(args) == 0
        assert main([*args, "--overwrite"]) == 0  # sources.csv is a prepare output
    assert "review additions: 1 of 1 labelled added to train" in printed.getvalue()
