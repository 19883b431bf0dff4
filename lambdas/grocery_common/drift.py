"""Prediction drift: what a version predicted lately against its baseline, as a
population stability index.

Two baselines, the better one first:
- "test split predictions" (TEST_BASELINE): the version's own top-1 predictions on the
  held-out test split, the `predicted_distribution` the test gate writes into the
  version's evaluation.json. It compares like with like (the model's predictions then and
  now), so only a change of what the model sees moves the score.
- "training split labels" (TRAINING_BASELINE), used when the version has no test report
  (the test gate is off by default: test_accuracy_threshold = 0) or the report has no
  `predicted_distribution`: the label mix of the dataset's train `.lst`, what the model
  was taught. A weaker baseline: it compares predictions with true labels, so it also
  moves when the model is biased towards some classes (its confusions shift the mix with
  an unchanged shop), and the shop's mix may never have matched the dataset's. Read its
  first scores as a level to watch for change rather than as drift; turn the test gate on
  for a baseline that compares like with like.

Why PSI: it compares two categorical distributions with one number that does not depend
on the order of the classes, is symmetric in its two arguments (it is the symmetrised
Kullback-Leibler or Jeffreys divergence, sum over classes of (a - e) * ln(a / e), with a
the recent share and e the baseline share of a class), and it comes with rules of thumb
engineers already know: below 0.1 stable, 0.1-0.25 a slight shift, above 0.25 a
significant one (the bands credit scoring has used since E. M. Lewis, "An Introduction
to Credit Scoring", 1994; e.g. http://manuge.com/population-stability-index/). The alarm
fires above 0.2, the "significant shift" line of many model-monitoring guides, a little
earlier than 0.25 because a shop's mix changes slowly. Cut-offs are folklore rather than
statistics (https://content.iospress.com/articles/data-science/ds240059 advises choosing
them per use case), hence the noise guard below; ALARM_THRESHOLD is one constant.

What PSI gets wrong, and what is done about it:
- An empty class makes ln(a / e) infinite: shares are floored at EPSILON (1e-4, about
  a quarter of one image in 2,485 test photos) before the sum.
- Sampling noise alone gives PSI ~ (K - 1) * (1/N + 1/M) for K classes, N recent and M
  baseline predictions (PSI ~ chi-square / sample size): with 81 classes and 100
  predictions that is ~0.8, far above any threshold, on an unchanged shop. So the score
  is computed only over a window holding at least `minimum_predictions(K)`
  predictions, (K - 1) / NOISE_BUDGET: 800 for 81 classes, where the recent side's
  noise is 0.1, half the alarm threshold. The window grows a day at a time (up to
  MAX_WINDOW_DAYS) until it has them; a quieter deployment gets no score (the alarm
  treats missing data as not breaching).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

EPSILON = 1e-4
NOISE_BUDGET = 0.1
MAX_WINDOW_DAYS = 14
ALARM_THRESHOLD = 0.2
BASELINE_FIELD = "predicted_distribution"
TEST_BASELINE = "test split predictions"
TRAINING_BASELINE = "training split labels"


class DriftError(ValueError):
    """A baseline is unusable; the message says where and why."""


def shares(counts: Mapping[str, float], labels: Sequence[str]) -> list[float]:
    """Each label's share of the total (labels missing from `counts` have 0)."""
    total = sum(counts.get(label, 0) for label in labels)
    if total <= 0:
        raise DriftError("no predictions to compare")
    return [counts.get(label, 0) / total for label in labels]


def population_stability_index(
    recent: Mapping[str, float], baseline: Mapping[str, float], labels: Sequence[str]
) -> float:
    """PSI of the recent counts against the baseline counts over `labels` (see above)."""
    score = 0.0
    for recent_share, baseline_share in zip(
        shares(recent, labels), shares(baseline, labels), strict=True
    ):
        a, e = max(recent_share, EPSILON), max(baseline_share, EPSILON)
        score += (a - e) * math.log(a / e)
    return score


def minimum_predictions(classes: int) -> int:
    return math.ceil((classes - 1) / NOISE_BUDGET)


def predicted_distribution(predicted: Sequence[int], labels: Sequence[str]) -> dict[str, Any]:
    """The baseline written into the test report: top-1 predictions counted per label."""
    counts = dict.fromkeys(labels, 0)
    for class_id in predicted:
        counts[labels[class_id]] += 1
    return {"images": len(predicted), "counts": counts}


def read_baseline(report: Mapping[str, Any], *, where: str) -> dict[str, int]:
    """{label: count} from a test report's `predicted_distribution`."""
    section = report.get(BASELINE_FIELD)
    counts = section.get("counts") if isinstance(section, Mapping) else None
    if not isinstance(counts, Mapping) or not counts:
        raise DriftError(
            f"{where} has no '{BASELINE_FIELD}' (a report written before the drift check "
            "existed): retrain with test_accuracy_threshold > 0 to get a baseline"
        )
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()):
        raise DriftError(f"{where}: '{BASELINE_FIELD}.counts' must hold counts >= 0")
    if not sum(counts.values()):
        raise DriftError(f"{where}: '{BASELINE_FIELD}' counts no prediction")
    return dict(counts)


def count_lst_labels(
    lines: Iterable[bytes | str], labels: Sequence[str], *, where: str
) -> dict[str, int]:
    """{label: images} of an algorithm `.lst` (`index<TAB>class id<TAB>path` lines), read
    line by line (a stream: only the counts are kept). A malformed line refuses the file."""
    counts = [0] * len(labels)
    for number, raw in enumerate(lines, start=1):
        line = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3 or not parts[1].strip().isdigit() or not parts[2].strip():
            raise DriftError(
                f"{where} line {number}: expected index<TAB>class id<TAB>path, got {line[:80]!r}"
            )
        class_id = int(parts[1])
        if class_id >= len(labels):
            raise DriftError(
                f"{where} line {number}: class id {class_id}, but labels.json has "
                f"{len(labels)} labels (0-{len(labels) - 1})"
            )
        counts[class_id] += 1
    if not sum(counts):
        raise DriftError(f"{where} lists no image")
    return dict(zip(labels, counts, strict=True))
