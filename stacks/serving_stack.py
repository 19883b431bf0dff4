"""Serving: the approved model's real-time endpoint and the classification API in front of it."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.config import Config
from stacks.monitoring.budget import DeploymentBudget, allow_budgets_to_notify
from stacks.serving.api import ClassifyApi
from stacks.serving.approved_model import ApprovedModel
from stacks.serving.classify_modes import ClassifyModes
from stacks.serving.endpoint import ClassifierEndpoint
from stacks.serving.mode_config import SERVERLESS
from stacks.serving.review_access import ClassifyReviewAccess
from stacks.storage_stack import StorageStack


class ServingStack(Stack):
    """Deployable before any model is approved: the API then answers 503 "no approved model".

    Updating this stack (the release workflow's UpdateStack, or `cdk deploy`) serves the
    model package version the release record in SSM names.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        storage: StorageStack,
        model_role: iam.IRole,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.model = ApprovedModel(
            self,
            "ApprovedModel",
            prefix=config.prefix,
            model_role=model_role,
            network_isolation=config.serving_mode != SERVERLESS,
        )
        self.classifier = ClassifierEndpoint(
            self,
            "Classifier",
            config=config,
            model=self.model,
            key=storage.key,
            topic=storage.topic,
            model_role=model_role,
            inference=storage.inference,
        )
        self.api = ClassifyApi(
            self,
            "ClassifyApi",
            config=config,
            model=self.model,
            endpoint=self.classifier,
            key=storage.key,
            topic=storage.topic,
        )
        # What the serving mode changes in the API: its environment, grants and routes.
        self.modes = ClassifyModes(
            self,
            "Modes",
            config=config,
            api=self.api,
            endpoint=self.classifier,
            inference=storage.inference,
            key=storage.key,
        )
        # The review loop: unsure answers queued under review/, confidence metrics (issue 13).
        self.review = ClassifyReviewAccess(
            self,
            "Review",
            config=config,
            function=self.api.function.function,
            inference=storage.inference,
            key=storage.key,
        )
        # The deployment's cost budget (monthly_budget_usd). Here for now; it belongs to the
        # monitoring stack once that stack is given the topic.
        self.budget = None
        if config.monthly_budget_usd > 0:
            allow_budgets_to_notify(storage.topic, storage.key)
            self.budget = DeploymentBudget(
                self,
                "Budget",
                prefix=config.prefix,
                amount_usd=config.monthly_budget_usd,
                topic=storage.topic,
            )
        # A plain string (not a token of the conditional endpoint): safe to use anywhere.
        self.endpoint_name: str = self.classifier.endpoint_name
        self.api_function = self.api.function.function

        CfnOutput(self, "ApiUrl", value=self.api.url, description="POST an image here (SigV4)")
        CfnOutput(
            self,
            "EndpointName",
            # The fixed name, not the conditional resource's attribute (outputs are only
            # visible once the deploy, which creates the endpoint, has finished).
            value=self.model.when_approved(self.endpoint_name),
            description=f"The {config.serving_mode} endpoint ('none' until a model is approved "
            "and released)",
        )
        CfnOutput(
            self,
            "ModelName",
            # The name the Model gets (no GetAtt of the conditional Model in an output).
            value=self.model.when_approved(self.model.resource_name),
            description="The model this deployment serves ('none' before the first release)",
        )
