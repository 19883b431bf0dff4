"""Every input is used or listed in rejected.csv: symlinks, loops, FIFOs, unlistable folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from preprocessing import sources, walk
from preprocessing.errors import UserError
from preprocessing.manifest import read_rejected
from preprocessing.prepare import Options, prepare
from preprocessing.sources import load_source

from .conftest import make_folders, write_jpeg


def _rejected(root: Path) -> dict[str, str]:
    return {r.rel: r.reason for r in load_source(root).rejected}


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return make_folders(tmp_path / "photos", {"ant": 3, "bee": 3})


def test_broken_symlinks_are_rejected_not_dropped(photos):
    (photos / "ant" / "gone.jpg").symlink_to(photos / "nowhere.jpg")
    (photos / "stray.jpg").symlink_to("/nonexistent/stray.jpg")  # directly in SOURCE
    rows = {r.rel: r for r in load_source(photos).rejected}
    assert rows["ant/gone.jpg"].reason == walk.BROKEN_SYMLINK
    assert (
        f"points to {photos / 'nowhere.jpg'}, which does not exist" in rows["ant/gone.jpg"].detail
    )
    assert rows["stray.jpg"].reason == walk.BROKEN_SYMLINK


def test_symlink_loops_are_rejected_not_dropped(photos):
    (photos / "ant" / "self.jpg").symlink_to("self.jpg")
    (photos / "ant" / "a.jpg").symlink_to("b.jpg")
    (photos / "ant" / "b.jpg").symlink_to("a.jpg")
    assert _rejected(photos) == {
        "ant/self.jpg": walk.SYMLINK_LOOP,
        "ant/a.jpg": walk.SYMLINK_LOOP,
        "ant/b.jpg": walk.SYMLINK_LOOP,
    }


def test_a_symlinked_sub_folder_is_followed_like_a_symlinked_class_folder(photos, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    write_jpeg(elsewhere / "more" / "x.jpg")
    write_jpeg(elsewhere / "y.jpg")
    (photos / "ant" / "linked").symlink_to(elsewhere / "more")  # sub-folder of a class
    (photos / "cow").symlink_to(elsewhere)  # a class folder
    source = load_source(photos)
    assert source.labels == ["ant", "bee", "cow"]
    rels = {i.rel: (i.label, i.out_name) for i in source.items}
    assert rels["ant/linked/x.jpg"] == (0, "ant/linked_x.jpg")
    assert rels["cow/more/x.jpg"] == (2, "cow/more_x.jpg")
    assert rels["cow/y.jpg"] == (2, "cow/y.jpg")
    assert source.rejected == []


def test_a_folder_symlink_back_up_the_tree_is_a_loop_not_followed(photos):
    (photos / "ant" / "up").symlink_to(photos)  # SOURCE itself
    (photos / "ant" / "here").symlink_to(photos / "ant")
    (photos / "ant" / "root").symlink_to("/")
    (photos / "bee" / "deep").mkdir()
    (photos / "bee" / "deep" / "back").symlink_to(photos / "bee")
    (photos / "again").symlink_to(photos)  # would make SOURCE a class of itself
    rows = {r.rel: r for r in load_source(photos).rejected}
    assert {rel: row.reason for rel, row in rows.items()} == {
        "ant/up": walk.SYMLINK_LOOP,
        "ant/here": walk.SYMLINK_LOOP,
        "ant/root": walk.SYMLINK_LOOP,
        "bee/deep/back": walk.SYMLINK_LOOP,
        "again": walk.SYMLINK_LOOP,
    }
    assert f"links to {photos.resolve()}, a folder that contains it" in rows["ant/up"].detail
    assert load_source(photos).labels == ["ant", "bee"]


def test_a_fifo_is_rejected_not_dropped(photos):
    os.mkfifo(photos / "bee" / "camera.jpg")
    assert _rejected(photos) == {"bee/camera.jpg": walk.NOT_A_REGULAR_FILE}


def test_walk_reports_a_folder_it_cannot_list(tmp_path, monkeypatch):
    folder = tmp_path / "class"
    write_jpeg(folder / "ok.jpg")
    write_jpeg(folder / "sub" / "x.jpg")
    real_iterdir = Path.iterdir

    def iterdir(self: Path):
        if self.name == "sub":
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    files, skipped = walk.walk(folder)
    assert files == [folder / "ok.jpg"]
    assert skipped == [
        walk.Skipped(folder / "sub", walk.UNREADABLE, "cannot list the folder: Permission denied")
    ]


def test_grocery_layout_symlinks_are_reported(grocery):
    dataset = grocery / "dataset"
    (dataset / "train/Fruit/Avocado/Stray_001.jpg").symlink_to("/nonexistent.jpg")  # unlisted
    listed = dataset / "train/Fruit/Avocado/Avocado_001.jpg"
    listed.unlink()
    listed.symlink_to("/nonexistent.jpg")  # listed in train.txt
    loop = dataset / "train/Fruit/Avocado/Avocado_002.jpg"
    loop.unlink()
    loop.symlink_to(loop.name)
    (dataset / "train/Fruit/Avocado/up").symlink_to(dataset / "train")
    rows = {r.rel: r for r in load_source(grocery).rejected}
    assert {rel: row.reason for rel, row in rows.items()} == {
        "train/Fruit/Avocado/Stray_001.jpg": walk.BROKEN_SYMLINK,
        "train/Fruit/Avocado/Avocado_001.jpg": walk.BROKEN_SYMLINK,
        "train/Fruit/Avocado/Avocado_002.jpg": walk.SYMLINK_LOOP,
        "train/Fruit/Avocado/up": walk.SYMLINK_LOOP,
    }
    assert rows["train/Fruit/Avocado/Avocado_001.jpg"].detail.startswith("train.txt line 5: ")


def test_grocery_listed_folder_or_missing_file_is_missing_file(grocery):
    dataset = grocery / "dataset"
    with (dataset / "train.txt").open("a") as handle:
        handle.write("train/Fruit/Avocado, 1, 1\n")
        handle.write("train/Fruit/Avocado/Gone.jpg, 1, 1\n")
    rows = {r.rel: r for r in load_source(grocery).rejected}
    assert rows["train/Fruit/Avocado"].reason == sources.MISSING_FILE
    assert rows["train/Fruit/Avocado"].detail.endswith("a folder, not an image file")
    assert rows["train/Fruit/Avocado/Gone.jpg"].detail.endswith("file not found")


def test_every_input_is_used_or_in_rejected_csv(photos, tmp_path):
    (photos / "ant" / "gone.jpg").symlink_to(photos / "nowhere.jpg")
    (photos / "ant" / "self.jpg").symlink_to("self.jpg")
    write_jpeg(tmp_path / "elsewhere" / "x.jpg")
    (photos / "bee" / "linked").symlink_to(tmp_path / "elsewhere")
    out = tmp_path / "out"
    summary = prepare(Options(source=photos, out=out, workers=1, progress=False))
    assert summary.images == 7  # 3 + 3 + the one behind the symlinked sub-folder
    assert summary.rejected == 2
    rows = {row["path"]: row["reason"] for row in read_rejected(out / "rejected.csv")}
    assert rows == {"ant/gone.jpg": walk.BROKEN_SYMLINK, "ant/self.jpg": walk.SYMLINK_LOOP}


def test_an_unlistable_source_folder_is_one_clear_error(photos, monkeypatch):
    real_iterdir = Path.iterdir

    def iterdir(self: Path):
        if self == photos:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(UserError, match=f"cannot list the source folder {photos}: Permission"):
        load_source(photos)
