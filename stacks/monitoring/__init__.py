"""The operations dashboard of the whole system (see docs/operations.md)."""
