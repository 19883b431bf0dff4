"""Retraining triggers: a dataset upload or the schedule starts the training state machine."""
