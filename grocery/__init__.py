"""Operator commands for a deployed grocery classifier: `python -m grocery --help`."""

import sys
from pathlib import Path

# The commands share `grocery_common` (labels, metrics) with the Lambdas, whose asset is the
# `lambdas/` folder: make it importable the same way as in Lambda and in the tests.
_LAMBDAS = str(Path(__file__).resolve().parents[1] / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.append(_LAMBDAS)
