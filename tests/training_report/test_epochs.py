"""Per-epoch accuracy from the image-classification algorithm's log lines and metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from grocery.training_report.epochs import Epoch, History, from_log_messages, from_metric_series

PREFIX = "[11/28/2026 09:17:54 INFO 140377403373376] "


def test_epoch_lines_are_read_and_batch_lines_ignored():
    messages = [
        PREFIX + "Epoch[0] Batch [20]#011Speed: 221.20 samples/sec#011accuracy=0.520714",
        PREFIX + "Epoch[0] Train-accuracy=0.558519",
        PREFIX + "Epoch[0] Time cost=11.300",
        PREFIX + "Epoch[0] Validation-accuracy=0.560811",
        PREFIX + "Storing the best model with validation accuracy: 0.560811",
        PREFIX + "Epoch[1] Train-accuracy=7.5e-01",
        PREFIX + "Epoch[1] Validation-accuracy=0.662162",
    ]
    assert from_log_messages(messages) == (
        Epoch(1, 0.558519, 0.560811),
        Epoch(2, 0.75, 0.662162),
    )


def test_a_resumed_spot_job_keeps_the_later_values_of_a_repeated_epoch():
    first_run = [
        PREFIX + "Epoch[4] Train-accuracy=0.80",
        PREFIX + "Epoch[4] Validation-accuracy=0.70",
    ]
    resumed = [PREFIX + "Epoch[4] Train-accuracy=0.81", PREFIX + "Epoch[5] Train-accuracy=0.83"]
    epochs = from_log_messages(first_run + resumed)
    assert epochs == (Epoch(5, 0.81, 0.70), Epoch(6, 0.83, None))


def test_best_is_the_first_epoch_of_the_highest_validation_accuracy():
    history = History(
        (Epoch(1, 0.5, 0.6), Epoch(2, 0.7, 0.8), Epoch(3, 0.9, 0.8), Epoch(4, 0.95, None)),
        "logs",
        "",
    )
    assert history.best == Epoch(2, 0.7, 0.8)
    assert History((Epoch(1, 0.5, None),), "logs", "").best is None


def test_metric_points_are_numbered_in_time_order():
    start = datetime(2026, 11, 28, 9, 20, tzinfo=UTC)
    train = [(start, 0.81), (start + timedelta(minutes=5), 0.97)]
    validation = [(start, 0.74)]
    assert from_metric_series(train, validation) == (Epoch(1, 0.81, 0.74), Epoch(2, 0.97, None))
    assert from_metric_series([], []) == ()
