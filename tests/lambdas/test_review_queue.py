"""The review queue's contract: keys, the unsure rule, and round trips with clear errors."""

from __future__ import annotations

import json

import pytest

from grocery_common import review_queue as rq


def _item(**overrides) -> rq.ReviewItem:
    fields = {
        "id": "20261201T120000Z-abc",
        "bucket": "inference",
        "key": "review/images/2026/12/01/20261201T120000Z-abc.jpg",
        "top_k": rq.top_k_of([("Banana", 0.41), ("Plantain", 0.30)]),
        "model_version": "3",
        "time": "2026-12-01T12:00:00Z",
        "source": "api",
    }
    fields.update(overrides)
    return rq.ReviewItem(**fields)


class TestKeys:
    def test_layout(self):
        assert rq.queue_key("a1") == "review/queue/a1.json"
        assert rq.claim_key("a1") == "review/claims/a1.json"
        assert rq.decision_key("a1") == "review/decisions/a1.json"

    def test_id_back_from_any_key(self):
        assert rq.item_id_of("review/decisions/a1.json") == "a1"

    @pytest.mark.parametrize("bad", ["", "../x", "a/b", "a b", "-lead"])
    def test_unsafe_ids_are_refused(self, bad):
        with pytest.raises(rq.ReviewQueueError, match="review item id"):
            rq.queue_key(bad)

    def test_non_json_key_is_refused(self):
        with pytest.raises(rq.ReviewQueueError, match=r"expected <id>\.json"):
            rq.item_id_of("review/queue/a1.txt")


def test_unsure_is_strictly_below_the_threshold():
    assert rq.is_unsure(0.59, 0.6)
    assert not rq.is_unsure(0.6, 0.6)


class TestItem:
    def test_round_trip(self):
        item = _item()
        assert rq.ReviewItem.from_json(item.to_json()) == item
        assert item.confidence == pytest.approx(0.41)

    def test_missing_field_is_named(self):
        data = json.loads(_item().to_json())
        del data["model_version"]
        with pytest.raises(rq.ReviewQueueError, match="'model_version' is missing"):
            rq.ReviewItem.from_json(json.dumps(data), where="review/queue/x.json")

    def test_unknown_source_is_refused(self):
        data = json.loads(_item().to_json())
        data["source"] = "email"
        with pytest.raises(rq.ReviewQueueError, match="source 'email'"):
            rq.ReviewItem.from_json(json.dumps(data))

    @pytest.mark.parametrize("text", ["not json", "[1]"])
    def test_not_an_object(self, text):
        with pytest.raises(rq.ReviewQueueError, match="review item"):
            rq.ReviewItem.from_json(text)

    def test_empty_top_k_and_wrong_types(self):
        data = json.loads(_item().to_json())
        data["top_k"] = []
        with pytest.raises(rq.ReviewQueueError, match="'top_k' is empty"):
            rq.ReviewItem.from_json(json.dumps(data))
        data["top_k"] = [{"label": "Banana", "confidence": True}]
        with pytest.raises(rq.ReviewQueueError, match="wrong type"):
            rq.ReviewItem.from_json(json.dumps(data))


class TestDecision:
    def _decision(self, **overrides) -> rq.Decision:
        fields = {
            "id": "20261201T120000Z-abc",
            "verdict": rq.LABELLED,
            "label": "Banana",
            "reviewer": "ana",
            "time": "2026-12-01T12:05:00Z",
            "item": _item(),
        }
        fields.update(overrides)
        return rq.Decision(**fields)

    def test_round_trip_and_agreement(self):
        decision = self._decision()
        assert rq.Decision.from_json(decision.to_json()) == decision
        assert decision.agrees_with_model
        assert not self._decision(label="Plantain").agrees_with_model
        assert not self._decision(verdict=rq.SKIPPED, label=None).agrees_with_model

    def test_label_only_with_the_label_verdict(self):
        with pytest.raises(rq.ReviewQueueError, match="exactly when"):
            self._decision(verdict=rq.NOT_GROCERY, label="Banana")
        with pytest.raises(rq.ReviewQueueError, match="exactly when"):
            self._decision(label=None)

    def test_unknown_verdict(self):
        with pytest.raises(rq.ReviewQueueError, match="verdict 'maybe'"):
            self._decision(verdict="maybe", label=None)

    def test_malformed_decisions(self):
        with pytest.raises(rq.ReviewQueueError, match="not JSON"):
            rq.Decision.from_json("{")
        with pytest.raises(rq.ReviewQueueError, match="JSON object"):
            rq.Decision.from_json("[]")
        data = json.loads(self._decision().to_json())
        data["label"] = 3
        with pytest.raises(rq.ReviewQueueError, match="'label' must be text"):
            rq.Decision.from_json(json.dumps(data))


def test_exported_photo_names_keep_the_photo_format():
    def decision(key: str) -> rq.Decision:
        return rq.Decision("a1", rq.SKIPPED, None, "r", "2026-12-01T12:00:00Z", _item(key=key))

    assert rq.exported_photo_name(decision("review/images/2026/12/01/a1.PNG")) == "a1.png"
    assert rq.exported_photo_name(decision("incoming/b/shelf.jpeg")) == "a1.jpeg"
    assert rq.exported_photo_name(decision("incoming/b/no-suffix")) == "a1.jpg"
