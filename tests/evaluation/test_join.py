"""The join rule (grocery/evaluation/join.py): path suffix first, then a file name with one candidate."""

from __future__ import annotations

import json

from grocery.__main__ import main
from grocery.evaluation.inputs import ResultEntry, TruthEntry
from grocery.evaluation.join import BY_FILE_NAME, BY_PATH, join


def _truth(*paths: str) -> list[TruthEntry]:
    return [TruthEntry(path=p, class_id=0, line=i) for i, p in enumerate(paths, start=1)]


def _result(key: str, number: int = 1) -> ResultEntry:
    return ResultEntry(key=key, location=f"r.jsonl line {number}", ranking=(0,), confidence=0.9)


def test_a_file_name_with_one_candidate_matches_it():
    truth = _truth("Apple/Granny-Smith/gs_1.jpg", "Milk/om_1.jpg")
    joined = join(truth, [_result("incoming/elsewhere/gs_1.jpg")])
    (match,) = joined.matches
    assert (match.truth.path, match.rule) == ("Apple/Granny-Smith/gs_1.jpg", BY_FILE_NAME)
    assert joined.results_only == ()


def test_a_file_name_with_two_candidates_matches_neither():
    # Two truth lines are called img_1.jpg: guessing would score against a coin toss.
    truth = _truth("Apple/img_1.jpg", "Pear/img_1.jpg", "Pear/img_2.jpg")
    result = _result("incoming/elsewhere/img_1.jpg")
    joined = join(truth, [result])
    assert joined.matches == ()
    assert joined.results_only == (result,)
    assert {t.path for t in joined.truth_only} == {
        "Apple/img_1.jpg",
        "Pear/img_1.jpg",
        "Pear/img_2.jpg",
    }


def test_a_path_suffix_decides_between_candidates_of_the_same_name():
    truth = _truth("Apple/img_1.jpg", "Pear/img_1.jpg")
    (match,) = join(truth, [_result("incoming/b1/Pear/img_1.jpg")]).matches
    assert (match.truth.path, match.rule) == ("Pear/img_1.jpg", BY_PATH)


def test_the_longest_path_suffix_wins():
    truth = _truth("img_1.jpg", "Pear/img_1.jpg")
    (match,) = join(truth, [_result("incoming/Pear/img_1.jpg")]).matches
    assert (match.truth.path, match.rule) == ("Pear/img_1.jpg", BY_PATH)


def test_a_second_row_reaching_the_one_candidate_is_a_duplicate():
    truth = _truth("Apple/gs_1.jpg")
    first, second = _result("a/gs_1.jpg", 1), _result("b/gs_1.jpg", 2)
    joined = join(truth, [first, second])
    assert [m.result for m in joined.matches] == [first]
    assert [m.result for m in joined.duplicates] == [second]


def test_both_sides_of_the_rule_in_the_counts(dataset, tmp_path):
    """A name shared by two truth lines stays results-only; a unique one matches by name."""
    truth = tmp_path / "two.lst"
    truth.write_text("0\t0\tApple/img_1.jpg\n1\t1\tPear/img_1.jpg\n2\t2\tMilk/om_1.jpg\n")
    rows = [
        {"image": "s3://b/other/img_1.jpg", "class_id": 0},  # two candidates: results-only
        {"image": "s3://b/other/om_1.jpg", "class_id": 2},  # one candidate: matched
    ]
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "report"
    args = ["evaluate", "--results", str(results), "--truth", str(truth)]
    assert main([*args, "--labels", str(dataset.labels), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["counts"]["matched_by_file_name"] == 1
    assert metrics["counts"]["results_only"] == 1
    assert [r["image"] for r in metrics["results_only"]] == ["other/img_1.jpg"]
    assert {t["path"] for t in metrics["truth_only"]} == {"Apple/img_1.jpg", "Pear/img_1.jpg"}
