"""Batch trigger: SQS upload events -> one batch -> one Step Functions execution."""
