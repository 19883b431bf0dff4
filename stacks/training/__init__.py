"""Constructs of the training stack: IAM roles and the state machine definition."""
