"""`python -m grocery training report JOB|VERSION --out DIR`: the per-epoch training report.

- sources.py: the AWS reads (SageMaker, CloudWatch Logs, CloudWatch metrics)
- epochs.py: per-epoch train/validation accuracy from the algorithm's log lines (or metrics)
- cost.py and prices.py: duration, billable seconds, spot savings, cost
- collect.py: one report from a training job, a tuning job or a model version
- render.py: the terminal table, report.md and the learning-curve PNG
- command.py: the argparse command
"""
