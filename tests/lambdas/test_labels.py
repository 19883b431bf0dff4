"""The shared decoder: probabilities -> grocery labels."""

from __future__ import annotations

import json

import pytest

from grocery_common.labels import LabelError, decode, parse_labels, parse_probabilities

LABELS = ["Golden-Delicious", "Banana", "Oatly-Oat-Milk", "Vine-Tomato"]


def test_argmax_and_top_k_best_first():
    prediction = decode([0.01, 0.971, 0.009, 0.01], LABELS, k=3)
    assert (prediction.label, prediction.class_id, prediction.confidence) == ("Banana", 1, 0.971)
    assert [g.class_id for g in prediction.top_k] == [1, 0, 3]


def test_sentence_of_the_original_write_up():
    prediction = decode([0.01, 0.971, 0.009, 0.01], LABELS)
    assert prediction.sentence() == "We are 97.1% confident this looks like a Banana."


def test_ties_go_to_the_lower_class_id():
    prediction = decode([0.25, 0.25, 0.25, 0.25], LABELS, k=4)
    assert [g.class_id for g in prediction.top_k] == [0, 1, 2, 3]
    assert decode([0.1, 0.4, 0.1, 0.4], LABELS, k=2).class_id == 1


def test_k_larger_than_the_classes_returns_all():
    assert len(decode([0.1, 0.2, 0.3, 0.4], LABELS, k=10).top_k) == 4


def test_to_dict_shape():
    assert decode([0.1, 0.2, 0.3, 0.4], LABELS, k=2).to_dict() == {
        "label": "Vine-Tomato",
        "class_id": 3,
        "confidence": 0.4,
        "top_k": [
            {"label": "Vine-Tomato", "class_id": 3, "confidence": 0.4},
            {"label": "Oatly-Oat-Milk", "class_id": 2, "confidence": 0.3},
        ],
    }


def test_label_count_mismatch_is_explained():
    with pytest.raises(
        LabelError, match="returned 3 probabilities but its label list has 4 labels"
    ):
        decode([0.2, 0.3, 0.5], LABELS)


def test_k_must_be_positive():
    with pytest.raises(LabelError, match="top_k must be at least 1"):
        decode([0.1, 0.2, 0.3, 0.4], LABELS, k=0)


class TestParseProbabilities:
    def test_real_time_response(self):
        body = json.dumps([0.5, 0.5]).encode()
        assert parse_probabilities(body) == [0.5, 0.5]

    def test_batch_out_file(self):
        assert parse_probabilities('{"prediction": [0.25, 0.75]}') == [0.25, 0.75]

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b"<html>", "not JSON"),
            ('{"scores": [1]}', "no 'prediction' key"),
            ("[]", "non-empty list"),
            ('[0.5, "x"]', "class id 1"),
            ("[0.5, NaN]", "class id 1"),
            ("[true, 0.5]", "class id 0"),
        ],
    )
    def test_bad_output_is_explained(self, body, message):
        with pytest.raises(LabelError, match=message):
            parse_probabilities(body)


class TestParseLabels:
    def test_json_array(self):
        assert parse_labels(json.dumps(LABELS)) == LABELS

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("{", "not valid JSON"),
            ("{}", "non-empty JSON array"),
            ("[]", "non-empty JSON array"),
            ('["Apple", ""]', "class id 1 has no name"),
            ('["Apple", 3]', "class id 1 has no name"),
            ('["Apple", "Apple"]', "distinct"),
        ],
    )
    def test_bad_label_files_are_explained(self, text, message):
        with pytest.raises(LabelError, match=message):
            parse_labels(text, source="s3://bucket/labels.json")
