"""sources: the Grocery Store Dataset layout and the generic folder layout."""

from __future__ import annotations

import pytest

from preprocessing import sources
from preprocessing.errors import UserError
from preprocessing.sources import load_source

from .conftest import make_folders, write_jpeg


def test_grocery_ids_follow_classes_csv_not_folder_names(grocery):
    source = load_source(grocery)  # the parent of dataset/ is accepted
    assert source.layout == "grocery"
    assert source.labels == ["Golden-Delicious", "Avocado", "Brown-Cap-Mushroom"]
    assert sorted(source.labels) != source.labels
    assert source.coarse_labels == ["Apple", "Avocado", "Mushroom"]
    assert source.coarse_label_ids == [0, 1, 2]
    assert source.rejected == []
    assert len(source.items) == 12 + 4 + 9


def test_grocery_dataset_folder_itself_is_accepted(grocery):
    assert load_source(grocery / "dataset").layout == "grocery"


def test_grocery_mushroom_test_path_quirk_keeps_its_class(grocery):
    items = [i for i in load_source(grocery).items if "Mushroom" in i.rel]
    test_items = [i for i in items if i.origin == "test"]
    assert next(i.rel for i in test_items) == (
        "test/Vegetables/Mushroom/Brown-Cap-Mushroom/Brown-Cap-Mushroom_001.jpg"
    )
    assert {i.label for i in items} == {2}
    assert {i.out_name.split("/")[0] for i in items} == {"Brown-Cap-Mushroom"}


def test_grocery_output_names_are_unique_across_lists(grocery):
    names = [i.out_name for i in load_source(grocery).items]
    assert len(names) == len(set(names))
    assert "Golden-Delicious/test_Golden-Delicious_001.jpg" in names
    assert "Golden-Delicious/train_Golden-Delicious_001.jpg" in names


def test_grocery_list_problems_are_reported_per_file(grocery):
    dataset = grocery / "dataset"
    write_jpeg(dataset / "train/Fruit/Avocado/Stray_001.jpg")  # on disk, in no list
    with (dataset / "train.txt").open("a") as handle:
        handle.write("train/Fruit/Avocado/Gone_001.jpg, 1, 1\n")  # listed, missing
        handle.write("train/Fruit/Avocado/Avocado_001.jpg, 1, 1\n")  # listed twice
        handle.write("\n")
    write_jpeg(dataset / "train/Fruit/Avocado/Odd_001.jpg")
    with (dataset / "val.txt").open("a") as handle:
        handle.write("train/Fruit/Avocado/Odd_001.jpg, 99, 1\n")  # unknown class id
    rejected = {(r.rel, r.reason) for r in load_source(grocery).rejected}
    assert rejected == {
        ("train/Fruit/Avocado/Stray_001.jpg", sources.NOT_LISTED),
        ("train/Fruit/Avocado/Gone_001.jpg", sources.MISSING_FILE),
        ("train/Fruit/Avocado/Avocado_001.jpg", sources.LISTED_TWICE),
        ("train/Fruit/Avocado/Odd_001.jpg", sources.UNKNOWN_CLASS),
    }


def test_grocery_malformed_list_line_is_a_user_error(grocery):
    (grocery / "dataset" / "val.txt").write_text("val/x.jpg; 0; 0\n")
    with pytest.raises(UserError, match=r"val\.txt line 1"):
        load_source(grocery)


def test_grocery_classes_with_gaps_is_a_user_error(grocery):
    path = grocery / "dataset" / "classes.csv"
    path.write_text(path.read_text().replace("Avocado,1,", "Avocado,7,"))
    with pytest.raises(UserError, match=r"classes\.csv.*without gaps"):
        load_source(grocery)


def test_folder_ids_are_sorted_class_names(folders):
    source = load_source(folders)
    assert source.layout == "folders"
    assert source.labels == ["ant", "bee", "cat"]
    assert source.coarse_labels is None
    counts = [sum(1 for i in source.items if i.label == k) for k in range(3)]
    assert counts == [5, 7, 10]
    assert all(i.out_name.startswith(f"{source.labels[i.label]}/") for i in source.items)


def test_folder_layout_reports_unusable_files_and_ignores_dotfiles(folders):
    (folders / "ant" / "notes.txt").write_text("x")
    (folders / "README.md").write_text("x")
    (folders / "ant" / ".DS_Store").write_bytes(b"\0")
    write_jpeg(folders / ".hidden" / "x.jpg")
    write_jpeg(folders / "ant" / "nested" / "deep.JPEG")
    source = load_source(folders)
    assert {(r.rel, r.reason) for r in source.rejected} == {
        ("ant/notes.txt", sources.UNSUPPORTED_EXTENSION),
        ("README.md", sources.NOT_IN_CLASS_FOLDER),
    }
    assert "ant" in source.labels
    assert ".hidden" not in source.labels
    assert "ant/nested_deep.jpg" in {i.out_name for i in source.items}


def test_folder_name_collisions_get_distinct_outputs(tmp_path):
    root = make_folders(tmp_path / "src", {"a": 1, "b": 1})
    write_jpeg(tmp_path / "src" / "a" / "img_000.jpeg")
    (tmp_path / "src" / "a" / "img_000.png").write_bytes(b"")
    names = sorted(i.out_name for i in load_source(root).items if i.label == 0)
    assert names == ["a/img_000.jpg", "a/img_000_jpeg.jpg", "a/img_000_png.jpg"]


def test_empty_class_folder_is_a_user_error(folders):
    (folders / "empty").mkdir()
    (folders / "empty" / "readme.txt").write_text("no photos")
    with pytest.raises(UserError, match=r"class folder .*empty has no \.jpg/\.jpeg/\.png images"):
        load_source(folders)


def test_missing_and_non_folder_sources(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_source(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is not a folder"):
        load_source(tmp_path / "file")
    (tmp_path / "bare").mkdir()
    with pytest.raises(UserError, match="has no class folders"):
        load_source(tmp_path / "bare")


def test_pre_split_folders_are_not_taken_for_classes(tmp_path):
    root = make_folders(tmp_path / "src", {"train": 3, "test": 2})
    with pytest.raises(UserError, match=r"holds split folders \(test, train\), not class folders"):
        load_source(root)


def test_a_folder_inside_the_grocery_dataset_is_not_taken_for_the_folder_layout(grocery):
    with pytest.raises(UserError, match=r"is inside the Grocery Store Dataset at .*dataset; pass"):
        load_source(grocery / "dataset" / "train")
