"""Code shared by every Lambda of the product (bundled with each function's asset)."""
