"""The training pipeline's optional test-set gate: score a transform job's predictions."""
