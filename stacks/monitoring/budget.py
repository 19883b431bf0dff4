"""An AWS Budgets cost budget for the deployment (config monthly_budget_usd; 0 = none).

Alerts on the deployment's topic at 80 % of the amount spent (ACTUAL) and when the month is
forecast to exceed it (FORECASTED, 100 %). The cost filter is the `project=<prefix>` tag
every stack puts on its resources; Budgets sees a tag only once it is activated as a cost
allocation tag (Billing console, Cost allocation tags; up to 24 h), before that the budget
shows 0 (docs/costs.md).
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-budgets-budget.html
https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-sns-policy.html
"""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

ACTUAL_PERCENT = 80.0
FORECAST_PERCENT = 100.0
PROJECT_TAG = "project"


def budget_name(prefix: str) -> str:
    return f"{prefix}-monthly"


def allow_budgets_to_notify(topic: sns.ITopic, key: kms.IKey) -> None:
    """The topic policy admits Budgets of this account only (the AWS statement, with
    aws:SourceAccount and aws:SourceArn); the topic's key lets it encrypt the message."""
    account = Stack.of(topic).account
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowThisAccountsBudgets",
            principals=[iam.ServicePrincipal("budgets.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:budgets::{account}:*"},
            },
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowBudgetsToUseEncryptedTopic",
            principals=[iam.ServicePrincipal("budgets.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"],  # in a key policy, "*" means this key
            conditions={"StringEquals": {"aws:SourceAccount": account}},
        )
    )


class DeploymentBudget(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        amount_usd: float,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        subscribers = [
            budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=topic.topic_arn)
        ]

        def alert(
            kind: str, percent: float
        ) -> budgets.CfnBudget.NotificationWithSubscribersProperty:
            return budgets.CfnBudget.NotificationWithSubscribersProperty(
                notification=budgets.CfnBudget.NotificationProperty(
                    notification_type=kind,
                    comparison_operator="GREATER_THAN",
                    threshold=percent,
                    threshold_type="PERCENTAGE",
                ),
                subscribers=subscribers,
            )

        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=budget_name(prefix),
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=amount_usd, unit="USD"),
                # A user tag is filtered as "user:<key>$<value>".
                cost_filters={"TagKeyValue": [f"user:{PROJECT_TAG}${prefix}"]},
            ),
            notifications_with_subscribers=[
                alert("ACTUAL", ACTUAL_PERCENT),
                alert("FORECASTED", FORECAST_PERCENT),
            ],
        )
