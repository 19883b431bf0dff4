"""The account's API Gateway CloudWatch Logs role, which REST API access logging needs.

A stage with access logging fails to deploy ("CloudWatch Logs role ARN must be set in
account settings to enable logging") until the account names a role that API Gateway may
assume to write logs, once per account and region:
https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html

This construct creates that role and sets it (`AWS::ApiGateway::Account`). It lives in the
storage stack, which is destroyed last and rarely, so deploying and destroying the serving
stack (to stop the endpoint's cost) never touches an account-wide setting. Deleting the
stack leaves the setting naming a deleted role; CloudFormation does not reset it:
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigateway-account.html
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.constructs.acknowledge import acknowledge_nag

# The actions of AWS's AmazonAPIGatewayPushToCloudWatchLogs managed policy, spelled out:
# the role is the account's, so it serves every REST API of this region.
PUSH_TO_LOGS_ACTIONS = (
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
)


class ApiGatewayAccountLogging(Construct):
    """`role` (assumed by apigateway.amazonaws.com) and `account` (the regional setting)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway writes REST API logs of this account and region with it",
            inline_policies={
                "PushToCloudWatchLogs": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=list(PUSH_TO_LOGS_ACTIONS),
                            resources=[
                                f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                            ],
                        )
                    ]
                )
            },
        )
        acknowledge_nag(
            self.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*]",
            "The account-level API Gateway logging role writes the log groups of every REST "
            "API in this account and region (the scope of AWS's managed policy, narrowed to "
            "this account and region); the log groups are not known to this stack.",
        )
        self.account = apigw.CfnAccount(self, "Account", cloud_watch_role_arn=self.role.role_arn)
