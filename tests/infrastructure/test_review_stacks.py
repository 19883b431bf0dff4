"""The review loop in the templates: photo expiry, the classify function's grants and
environment (issue 13)."""

from __future__ import annotations

from aws_cdk import App, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from grocery_common import confidence_metrics, review_queue
from stacks import prediction_metrics as pm
from stacks.config import Config
from stacks.serving.review_access import ClassifyReviewAccess


def test_stack_names_equal_the_lambdas_names():
    assert pm.REVIEW_IMAGES_PREFIX == review_queue.IMAGES_PREFIX
    assert pm.REVIEW_QUEUE_PREFIX == review_queue.QUEUE_PREFIX
    assert pm.REVIEW_DECISIONS_PREFIX == review_queue.DECISIONS_PREFIX
    assert pm.SOURCES == review_queue.SOURCES
    for name in (
        "PREDICTIONS",
        "TOP1_CONFIDENCE",
        "BELOW_REVIEW_THRESHOLD",
        "QUEUED_FOR_REVIEW",
        "REVIEW_QUEUE_FAILURES",
        "CLASS_PREDICTIONS",
        "MODEL_VERSION",
        "SOURCE",
        "LABEL",
    ):
        assert getattr(pm, name) == getattr(confidence_metrics, name), name
    assert pm.prediction_metrics_namespace("grocery") == confidence_metrics.DEFAULT_NAMESPACE


def test_kept_api_photos_expire(template_of):
    buckets = template_of("storage").find_resources(
        "AWS::S3::Bucket",
        {
            "Properties": {
                "NotificationConfiguration": {"EventBridgeConfiguration": Match.any_value()}
            }
        },
    )
    ((_, inference),) = buckets.items()
    rules = {r["Id"]: r for r in inference["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-review-images"] == {
        "Id": "expire-review-images",
        "Prefix": "review/images/",
        "ExpirationInDays": 30,
        "Status": "Enabled",
    }


def _classify_template(**config) -> Template:
    stack = Stack(App(), "Test")
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Inference", encryption_key=key)
    function = lambda_.Function(
        stack,
        "Classify",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(e, c): return e"),
    )
    ClassifyReviewAccess(
        stack, "Review", config=Config(**config), function=function, inference=bucket, key=key
    )
    return Template.from_stack(stack)


def _statements(template: Template) -> list[dict]:
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_classify_writes_only_the_two_review_prefixes_and_encrypts_with_the_key():
    template = _classify_template(review_threshold=0.45)
    statements = _statements(template)
    (put,) = [s for s in statements if s["Action"] == "s3:PutObject"]
    suffixes = [part["Fn::Join"][1][-1] for part in put["Resource"]]
    assert suffixes == ["/review/images/*", "/review/queue/*"]
    (kms_statement,) = [s for s in statements if s["Action"] == "kms:GenerateDataKey"]
    assert kms_statement["Resource"]["Fn::GetAtt"][1] == "Arn"
    # Nothing else of S3: no reads, no deletes, no other prefix.
    assert [s["Action"] for s in statements if str(s["Action"]).startswith("s3:")] == [
        "s3:PutObject"
    ]
    variables = template.find_resources("AWS::Lambda::Function")
    ((_, function),) = variables.items()
    env = function["Properties"]["Environment"]["Variables"]
    assert env["REVIEW_THRESHOLD"] == "0.45"
    assert env["REVIEW_KEEP_IMAGES"] == "true"
    assert env["PREDICTION_METRICS_NAMESPACE"] == "Grocery-Predictions"
    assert env["REVIEW_BUCKET"]["Ref"].startswith("Inference")


def test_without_keeping_photos_nothing_is_granted_and_no_bucket_is_set():
    template = _classify_template(review_keep_api_images=False)
    assert not [s for s in _statements(template) if s["Action"] == "s3:PutObject"]
    ((_, function),) = template.find_resources("AWS::Lambda::Function").items()
    env = function["Properties"]["Environment"]["Variables"]
    assert env["REVIEW_KEEP_IMAGES"] == "false"
    assert "REVIEW_BUCKET" not in env
