"""Operator commands for a deployed grocery classifier: `python -m grocery --help`."""
