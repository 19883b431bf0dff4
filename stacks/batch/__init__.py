"""Constructs of the batch stack: upload intake (EventBridge -> SQS -> trigger) and the workflow."""

# Batch records (manifest, record, status) live under this prefix of the inference bucket:
# no rule listens there. Equal to grocery_common.batch_layout.BATCHES_PREFIX (tested).
BATCHES_PREFIX = "batches/"
