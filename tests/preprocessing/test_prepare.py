"""prepare end to end on generated datasets: layout, .lst lines, manifest, rejected.csv."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from preprocessing.errors import UserError
from preprocessing.lst import read_lst
from preprocessing.manifest import read_rejected
from preprocessing.prepare import Options, prepare

from .conftest import DATA, make_folders, write_jpeg


def _run(source: Path, out: Path, **kwargs):
    kwargs.setdefault("workers", 1)
    kwargs.setdefault("progress", False)
    return prepare(Options(source=source, out=out, **kwargs))


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _tree(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def test_official_split_layout_and_counts(grocery, tmp_path):
    out = tmp_path / "out"
    summary = _run(grocery, out)
    assert summary.written == {"train": 12, "validation": 4, "test": 9}
    assert (summary.copied, summary.converted, summary.rejected) == (25, 0, 0)
    assert sorted(p.name for p in out.iterdir()) == [
        "labels.json",
        "manifest.json",
        "rejected.csv",
        "test",
        "test_lst",
        "train",
        "train_lst",
        "validation",
        "validation_lst",
    ]
    assert json.loads((out / "labels.json").read_text()) == [
        "Golden-Delicious",
        "Avocado",
        "Brown-Cap-Mushroom",
    ]
    assert (out / "validation_lst" / "validation.lst").read_text() == (
        "0\t0\tGolden-Delicious/val_Golden-Delicious_001.jpg\n"
        "1\t0\tGolden-Delicious/val_Golden-Delicious_002.jpg\n"
        "2\t1\tAvocado/val_Avocado_001.jpg\n"
        "3\t1\tAvocado/val_Avocado_002.jpg\n"
    )
    test_rows = read_lst(out / "test_lst" / "test.lst")
    assert [r[0] for r in test_rows] == list(range(9))
    assert (6, 2, "Brown-Cap-Mushroom/test_Brown-Cap-Mushroom_001.jpg") in test_rows
    for channel in ("train", "validation", "test"):
        for _, _, rel in read_lst(out / f"{channel}_lst" / f"{channel}.lst"):
            assert (out / channel / rel).is_file()
    source_file = grocery / "dataset/train/Fruit/Avocado/Avocado_003.jpg"
    copied = out / "train/Avocado/train_Avocado_003.jpg"
    assert copied.read_bytes() == source_file.read_bytes()
    assert (out / "rejected.csv").read_text().splitlines() == ["path,reason,detail"]


def test_manifest_contents(grocery, tmp_path):
    out = tmp_path / "out"
    _run(grocery, out, seed=3)
    manifest = _manifest(out)
    train_lines = (out / "train_lst/train.lst").read_text().splitlines()
    assert manifest["num_classes"] == 3
    assert manifest["num_training_samples"] == len(train_lines) == 12
    assert isinstance(manifest["num_training_samples"], int)
    assert manifest["image_shape"] == "3,348,348"
    assert manifest["image_size"] == 348
    assert manifest["labels"] == json.loads((out / "labels.json").read_text())
    assert manifest["coarse_labels"] == ["Apple", "Avocado", "Mushroom"]
    assert manifest["split"] == {
        "name": "official",
        "seed": 3,
        "validation_fraction": None,
        "pool": None,
    }
    assert manifest["source"]["layout"] == "grocery"
    for lst, digest in manifest["lst_sha256"].items():
        assert hashlib.sha256((out / lst).read_bytes()).hexdigest() == digest
    assert set(manifest["lst_sha256"]) == {
        "train_lst/train.lst",
        "validation_lst/validation.lst",
        "test_lst/test.lst",
    }
    assert manifest["channels"]["validation"]["per_class"] == {
        "Golden-Delicious": 2,
        "Avocado": 2,
        "Brown-Cap-Mushroom": 0,
    }
    assert manifest["counts"]["written"] == {"train": 12, "validation": 4, "test": 9}
    assert manifest["leakage"]["pairs"]["train/validation"] == 0


def test_bad_inputs_go_to_rejected_csv_and_the_summary(grocery, tmp_path):
    dataset = grocery / "dataset"
    folder = "train/Fruit/Avocado"
    (dataset / folder / "Avocado_001.jpg").write_bytes(b"")
    (dataset / folder / "Avocado_002.jpg").write_text("not an image")
    data = (dataset / folder / "Avocado_003.jpg").read_bytes()
    (dataset / folder / "Avocado_003.jpg").write_bytes(data[: len(data) // 2])
    small = "train/Fruit/Apple/Golden-Delicious/Golden-Delicious_004.jpg"
    write_jpeg(dataset / small, size=(100, 100))
    Image.new("RGBA", (400, 300), (1, 2, 3, 128)).save(
        dataset / "test/Fruit/Avocado/Avocado_001.jpg", "PNG"
    )
    out = tmp_path / "out"
    summary = _run(grocery, out)
    rows = {(r["path"], r["reason"]) for r in read_rejected(out / "rejected.csv")}
    assert rows == {
        (f"{folder}/Avocado_001.jpg", "empty_file"),
        (f"{folder}/Avocado_002.jpg", "not_an_image"),
        (f"{folder}/Avocado_003.jpg", "truncated"),
        (small, "too_small"),
    }
    assert summary.rejected == 4
    assert summary.written == {"train": 8, "validation": 4, "test": 9}
    assert (summary.copied, summary.converted) == (20, 1)  # the PNG-in-a-.jpg is converted
    assert _manifest(out)["rejected_reasons"] == {
        "empty_file": 1,
        "not_an_image": 1,
        "too_small": 1,
        "truncated": 1,
    }
    assert "rejected 4" in summary.line()


def test_all_images_of_a_class_rejected_is_a_user_error(grocery, tmp_path):
    for path in (grocery / "dataset/train/Fruit/Avocado").iterdir():
        path.write_bytes(b"")
    out = tmp_path / "out"
    with pytest.raises(UserError, match="class 'Avocado' has no usable training images") as info:
        _run(grocery, out)
    assert not (out / ".staging").exists()
    assert [p.name for p in out.iterdir()] == ["rejected.csv"]  # no half-written dataset
    rows = {(row["path"], row["reason"]) for row in read_rejected(out / "rejected.csv")}
    assert rows == {
        (f"train/Fruit/Avocado/Avocado_{i:03d}.jpg", "empty_file") for i in (1, 2, 3, 4)
    }
    assert str(info.value).endswith(
        f"; 4 input file(s) were not used (empty_file 4): {out / 'rejected.csv'} lists each "
        "with its reason"
    )


def test_a_failed_run_can_be_rerun_into_the_same_folder(grocery, tmp_path):
    victims = list((grocery / "dataset/train/Fruit/Avocado").iterdir())
    kept = {path: path.read_bytes() for path in victims}
    for path in victims:
        path.write_bytes(b"")
    out = tmp_path / "out"
    with pytest.raises(UserError, match="no usable training images"):
        _run(grocery, out)
    for path, data in kept.items():
        path.write_bytes(data)
    assert _run(grocery, out).written["train"] == 12  # no --overwrite needed for rejected.csv


def test_a_class_that_cannot_be_split_still_writes_rejected_csv(tmp_path):
    source = make_folders(tmp_path / "src", {"ant": 3, "bee": 2})
    (source / "bee" / "img_001.jpg").write_text("<html>not found</html>")
    out = tmp_path / "out"
    with pytest.raises(UserError, match="class 'bee' has 1 usable image") as info:
        _run(source, out)
    rows = [(row["path"], row["reason"]) for row in read_rejected(out / "rejected.csv")]
    assert rows == [("bee/img_001.jpg", "not_an_image")]
    assert "1 input file(s) were not used (not_an_image 1)" in str(info.value)


def test_an_empty_class_folder_still_writes_rejected_csv(tmp_path):
    source = make_folders(tmp_path / "src", {"ant": 3, "bee": 3})
    (source / "cow").mkdir()
    (source / "cow" / "notes.txt").write_text("photos to come")
    (source / "cow" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    out = tmp_path / "out"
    with pytest.raises(UserError, match=r"class folder .*cow has no \.jpg") as info:
        _run(source, out)
    assert sorted(p.name for p in out.iterdir()) == ["rejected.csv"]
    assert {(r["path"], r["reason"]) for r in read_rejected(out / "rejected.csv")} == {
        ("cow/notes.txt", "unsupported_extension"),
        ("cow/gone.jpg", "broken_symlink"),
    }
    assert f"{out / 'rejected.csv'} lists each with its reason" in str(info.value)


@pytest.mark.parametrize("layout", ["folders", "grocery"])
def test_a_single_class_is_refused_before_any_work(grocery, tmp_path, layout):
    if layout == "folders":
        source = make_folders(tmp_path / "src", {"ant": 5})
        message = rf"^{source} has a single class folder \('ant'\); .*needs at least 2 classes"
    else:
        source = grocery
        csv_path = grocery / "dataset" / "classes.csv"
        csv_path.write_bytes(b"\r\n".join(csv_path.read_bytes().split(b"\r\n")[:2]))
        for name in ("train.txt", "val.txt", "test.txt"):
            lst = grocery / "dataset" / name
            lst.write_text("".join(x for x in lst.read_text().splitlines(True) if ", 0, " in x))
        message = r"classes\.csv lists a single class \('Golden-Delicious'\); "
    out = tmp_path / "out"
    with pytest.raises(UserError, match=message) as info:
        _run(source, out)
    assert "num_classes >= 2" in str(info.value)
    assert "\n" not in str(info.value)
    if layout == "grocery":  # the other classes' files are not listed: say so
        assert "not_listed" in str(info.value)
        assert (out / "rejected.csv").is_file()
    else:
        assert not out.exists()


def test_leakage_between_train_and_validation_is_reported(grocery, tmp_path):
    dataset = grocery / "dataset"
    train_file = dataset / "train/Fruit/Avocado/Avocado_002.jpg"
    shutil.copyfile(train_file, dataset / "val/Fruit/Avocado/Avocado_001.jpg")
    out = tmp_path / "out"
    summary = _run(grocery, out)
    assert summary.leakage == {"train/validation": 1, "train/test": 0, "validation/test": 0}
    assert "leakage pairs 1 (train/validation 1)" in summary.line()
    groups = _manifest(out)["leakage"]["groups"]
    assert _manifest(out)["leakage"]["groups_total"] == 1
    assert len(groups) == 1
    assert groups[0]["train"] == ["train/Fruit/Avocado/Avocado_002.jpg"]
    assert groups[0]["validation"] == ["val/Fruit/Avocado/Avocado_001.jpg"]


def test_percentage_split_of_the_grocery_layout_pools_train_and_test(grocery, tmp_path):
    out = tmp_path / "out"
    summary = _run(grocery, out, split="80/20", seed=7)
    assert summary.written == {"train": 18, "validation": 3}  # 4 + 3 per class: 6 + 1
    assert not (out / "test").exists()
    assert not (out / "test_lst").exists()
    manifest = _manifest(out)
    assert manifest["split"]["pool"] == ["train", "test"]
    for name in manifest["labels"]:
        assert manifest["channels"]["train"]["per_class"][name] >= 1
        assert manifest["channels"]["validation"]["per_class"][name] >= 1
    excluded = [r for r in read_rejected(out / "rejected.csv") if r["reason"] == "not_in_pool"]
    assert len(excluded) == 4 == summary.excluded
    assert summary.rejected == 0


def test_pool_option(grocery, tmp_path):
    summary = _run(grocery, tmp_path / "out", split="80/20", pool=("train", "val", "test"))
    assert sum(summary.written.values()) == 25
    with pytest.raises(UserError, match="--pool"):
        _run(grocery, tmp_path / "o2", split="official", pool=("train",))
    with pytest.raises(UserError, match="subset of train,val,test"):
        _run(grocery, tmp_path / "o3", split="80/20", pool=("train", "extra"))


def test_folder_layout_percentage_split_reproducible(folders, tmp_path):
    first = _run(folders, tmp_path / "a", seed=1)
    _run(folders, tmp_path / "b", seed=1)
    _run(folders, tmp_path / "c", seed=2)
    assert first.split == "80/20"  # the default for the folder layout
    assert first.written == {"train": 18, "validation": 4}  # ant 4+1, bee 6+1 (1.4), cat 8+2
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    lst = "validation_lst/validation.lst"
    assert (tmp_path / "a" / lst).read_text() != (tmp_path / "c" / lst).read_text()
    rows = read_lst(tmp_path / "a" / "train_lst/train.lst")
    assert [label for _, label, _ in rows] == sorted(label for _, label, _ in rows)
    assert {rel.split("/")[0] for _, _, rel in rows} == {"ant", "bee", "cat"}


def test_process_pool_gives_the_same_output_as_one_process(tmp_path):
    source = make_folders(tmp_path / "src", {"x": 30, "y": 30})
    shutil.copyfile(DATA / "Golden-Delicious_007.jpg", source / "x" / "portrait.jpg")
    (source / "y" / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    one = _run(source, tmp_path / "one", workers=1)
    two = _run(source, tmp_path / "two", workers=2)
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")
    assert (one.copied, one.converted, one.rejected) == (two.copied, two.converted, two.rejected)
    assert (two.converted, two.rejected) == (1, 1)


def test_official_split_needs_the_grocery_layout(folders, tmp_path):
    with pytest.raises(UserError, match="--split official needs"):
        _run(folders, tmp_path / "out", split="official")


def test_output_folder_rules(grocery, tmp_path):
    out = tmp_path / "out"
    _run(grocery, out)
    with pytest.raises(UserError, match="not empty; pass --overwrite"):
        _run(grocery, out)
    summary = _run(grocery, out, overwrite=True)
    assert summary.written["train"] == 12
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(UserError, match="did not write"):
        _run(grocery, out, overwrite=True)
    assert (out / "mine.txt").exists()
    with pytest.raises(UserError, match="must not be inside the source"):
        _run(grocery, grocery / "prepared")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 10}, "--size 10 is out of range"),
        ({"size": 9000}, "--size 9000 is out of range"),
        ({"size": 256, "min_side": 300}, "--min-side 300"),
        ({"quality": 0}, "--quality 0"),
        ({"workers": 0}, "--workers 0"),
    ],
)
def test_bad_options(grocery, tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message):
        _run(grocery, tmp_path / "out", **kwargs)


def test_manifest_lists_a_bounded_number_of_leak_groups(grocery, tmp_path, monkeypatch):
    monkeypatch.setattr("preprocessing.prepare.MAX_LEAK_GROUPS", 2)
    dataset = grocery / "dataset"
    for train, val in [
        (
            "Fruit/Apple/Golden-Delicious/Golden-Delicious_001",
            "Fruit/Apple/Golden-Delicious/Golden-Delicious_001",
        ),
        (
            "Fruit/Apple/Golden-Delicious/Golden-Delicious_002",
            "Fruit/Apple/Golden-Delicious/Golden-Delicious_002",
        ),
        ("Fruit/Avocado/Avocado_001", "Fruit/Avocado/Avocado_001"),
    ]:
        shutil.copyfile(dataset / f"train/{train}.jpg", dataset / f"val/{val}.jpg")
    summary = _run(grocery, tmp_path / "out")
    leakage = _manifest(tmp_path / "out")["leakage"]
    assert summary.leakage["train/validation"] == 3
    assert leakage["groups_total"] == 3
    assert len(leakage["groups"]) == 2


def test_rejected_csv_that_cannot_be_written_is_said_in_the_error(tmp_path, monkeypatch):
    source = make_folders(tmp_path / "src", {"ant": 3})
    (source / "ant" / "notes.txt").write_text("x")

    def refuse(path, rows):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("preprocessing.manifest.write_rejected", refuse)
    with pytest.raises(
        UserError,
        match=r"single class folder .*; 1 input file\(s\) were not used, "
        r"but .*rejected\.csv could not be written: Permission denied",
    ):
        _run(source, tmp_path / "out")
