"""Batch decode: transform outputs -> labelled results (.jsonl + .csv)."""
