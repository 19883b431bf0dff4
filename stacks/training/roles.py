"""Least-privilege roles of the training pipeline: the training job's, the model's, the state machine's.

Every statement is written out (no `*FullAccess` managed policy, no `grant_*` that widens
to `s3:*Object*`), so that a reviewer can read exactly what each principal may do.
"""

from __future__ import annotations

from aws_cdk import Aws, Fn
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constructs.acknowledge import acknowledge_nag
from stacks.constructs.nag_findings import iam5_findings
from stacks.names import INCOMING_PREFIX, PREDICTIONS_PREFIX
from stacks.training.names import CHECKPOINTS_PREFIX, TRAINING_JOBS_PREFIX

SAGEMAKER = "sagemaker.amazonaws.com"
# Managed rule that Step Functions creates to learn when a `.sync` training job ends.
SYNC_RULE = "StepFunctionsGetEventsForSageMakerTrainingJobsRule"


def _kms_use(
    key: kms.IKey, *, create_grant: bool, encrypt: bool = False
) -> list[iam.PolicyStatement]:
    """Decrypt and data keys (S3 SSE-KMS, SNS); `encrypt` for SageMaker's output encryption."""
    actions = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    if encrypt:
        actions.append("kms:Encrypt")  # required of the role for OutputDataConfig.KmsKeyId
    statements = [iam.PolicyStatement(sid="UseDataKey", actions=actions, resources=[key.key_arn])]
    if create_grant:
        # SageMaker encrypts the instance's ML storage volume (VolumeKmsKeyId) through a grant.
        statements.append(
            iam.PolicyStatement(
                sid="GrantDataKeyToSageMakerVolumes",
                actions=["kms:CreateGrant"],
                resources=[key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
    return statements


def _algorithm_image_pull(image_uri: str) -> list[iam.PolicyStatement]:
    """Pull the built-in algorithm image (`<account>.dkr.ecr.<region>.../image-classification:1`)."""
    account = Fn.select(0, Fn.split(".", image_uri))
    repository = f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{account}:repository/image-classification"
    return [
        iam.PolicyStatement(
            sid="PullAlgorithmImage",
            actions=[
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            resources=[repository],
        ),
        iam.PolicyStatement(
            sid="EcrLogin",
            actions=["ecr:GetAuthorizationToken"],
            resources=["*"],  # GetAuthorizationToken has no resource-level permissions
        ),
    ]


def _logs_and_metrics(kind: str, group_suffix: str = "") -> list[iam.PolicyStatement]:
    """CloudWatch Logs in /aws/sagemaker/<kind><group_suffix> and metrics in that namespace only.

    Training and transform jobs log to one group per kind; an endpoint logs to its own,
    /aws/sagemaker/Endpoints/<endpoint name>
    (https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html).
    """
    stack_logs = (
        f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:"
        f"/aws/sagemaker/{kind}{group_suffix}"
    )
    return [
        iam.PolicyStatement(
            sid=f"Write{kind}Logs",
            actions=[
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            resources=[stack_logs, f"{stack_logs}:*"],
        ),
        iam.PolicyStatement(
            sid=f"Put{kind}Metrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],  # PutMetricData has no resource-level permissions
            conditions={"StringEquals": {"cloudwatch:namespace": f"/aws/sagemaker/{kind}"}},
        ),
    ]


def _acknowledge_wildcards(role: iam.Role, what: str) -> None:
    policy = role.node.find_child("DefaultPolicy")
    acknowledge_nag(
        policy,
        "AwsSolutions-IAM5[Resource::*]",
        "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level "
        f"permissions; PutMetricData is limited to the {what} namespace by condition.",
    )


def _log_group_pattern(kind: str) -> str:
    return f"arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/{kind}:*"


def _acknowledge_prefixes(role: iam.Role, findings: list[tuple[str, object, str]]) -> None:
    """(resource pattern, the construct "{}" stands for or None, reason) per finding."""
    policy = role.node.find_child("DefaultPolicy")
    for resource, imported, reason in findings:
        for finding in iam5_findings(resource, imported):
            acknowledge_nag(policy, finding, f"Prefix-scoped wildcard: {reason}.")


def _sagemaker_role(scope: Construct, construct_id: str, *, description: str) -> iam.Role:
    """A role only SageMaker of this account may assume (confused-deputy guard)."""
    return iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal(
            SAGEMAKER, conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
        ),
        description=description,
    )


def training_role(
    scope: Construct,
    *,
    training_data: s3.IBucket,
    artifacts: s3.IBucket,
    key: kms.IKey,
    image_uri: str,
) -> iam.Role:
    """The training job's role: read the training data, write this pipeline's artifacts."""
    role = _sagemaker_role(
        scope,
        "TrainingJobRole",
        description="SageMaker training jobs of the grocery pipeline: read training data, write artifacts",
    )
    statements = [
        iam.PolicyStatement(
            sid="ReadTrainingData",
            actions=["s3:GetObject"],
            resources=[training_data.arn_for_objects("*")],
        ),
        iam.PolicyStatement(
            sid="ListTrainingData",
            actions=["s3:ListBucket", "s3:GetBucketLocation"],
            resources=[training_data.bucket_arn],
        ),
        iam.PolicyStatement(
            sid="WriteModelArtifactsAndCheckpoints",
            actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
            resources=[
                artifacts.arn_for_objects(f"{TRAINING_JOBS_PREFIX}*"),
                artifacts.arn_for_objects(f"{CHECKPOINTS_PREFIX}*"),
            ],
        ),
        iam.PolicyStatement(
            sid="ListCheckpoints",
            actions=["s3:ListBucket", "s3:GetBucketLocation"],
            resources=[artifacts.bucket_arn],
        ),
        *_kms_use(key, create_grant=True, encrypt=True),
        *_algorithm_image_pull(image_uri),
        *_logs_and_metrics("TrainingJobs"),
    ]
    for statement in statements:
        role.add_to_principal_policy(statement)
    _acknowledge_wildcards(role, "/aws/sagemaker/TrainingJobs")
    _acknowledge_prefixes(
        role,
        [
            (
                "{}/*",
                training_data,
                "training reads the dataset prefix chosen per execution, "
                "in the training-data bucket only",
            ),
            (
                f"{{}}/{TRAINING_JOBS_PREFIX}*",
                artifacts,
                "SageMaker writes "
                "<job name>/output/model.tar.gz; job names are computed per execution",
            ),
            (
                f"{{}}/{CHECKPOINTS_PREFIX}*",
                artifacts,
                "spot checkpoints of the job, under checkpoints/<job name>/",
            ),
            (
                _log_group_pattern("TrainingJobs"),
                None,
                "the log streams SageMaker names after each job",
            ),
        ],
    )
    return role


def model_role(
    scope: Construct,
    *,
    artifacts: s3.IBucket,
    inference: s3.IBucket,
    key: kms.IKey,
    image_uri: str,
    endpoint_name: str,
) -> iam.Role:
    """The SageMaker Model's role, used by the endpoint and by batch transform jobs.

    A transform job has no role of its own: it reads its input and writes its output
    with the model's role, hence the inference bucket's incoming/ and predictions/.
    """
    role = _sagemaker_role(
        scope,
        "ModelRole",
        description="SageMaker Models of the grocery pipeline: read artifacts; transform I/O",
    )
    statements = [
        iam.PolicyStatement(
            sid="ReadModelArtifacts",
            actions=["s3:GetObject"],
            resources=[artifacts.arn_for_objects(f"{TRAINING_JOBS_PREFIX}*")],
        ),
        iam.PolicyStatement(
            sid="ReadTransformInput",
            actions=["s3:GetObject"],
            resources=[inference.arn_for_objects(f"{INCOMING_PREFIX}*")],
        ),
        iam.PolicyStatement(
            sid="ListTransformInput",
            actions=["s3:ListBucket"],
            resources=[inference.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{INCOMING_PREFIX}*"]}},
        ),
        iam.PolicyStatement(
            sid="WriteTransformOutput",
            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
            resources=[inference.arn_for_objects(f"{PREDICTIONS_PREFIX}*")],
        ),
        *_kms_use(key, create_grant=True, encrypt=True),
        *_algorithm_image_pull(image_uri),
        *_logs_and_metrics("Endpoints", f"/{endpoint_name}"),
        *_logs_and_metrics("TransformJobs"),
    ]
    for statement in statements:
        role.add_to_principal_policy(statement)
    _acknowledge_wildcards(role, "/aws/sagemaker/Endpoints and /aws/sagemaker/TransformJobs")
    _acknowledge_prefixes(
        role,
        [
            (
                f"{{}}/{TRAINING_JOBS_PREFIX}*",
                artifacts,
                "the model.tar.gz of whichever training job passed the gate",
            ),
            (
                f"{{}}/{INCOMING_PREFIX}*",
                inference,
                "transform input: any image uploaded under incoming/",
            ),
            (
                f"{{}}/{PREDICTIONS_PREFIX}*",
                inference,
                "transform output, written under predictions/",
            ),
            (
                _log_group_pattern(f"Endpoints/{endpoint_name}"),
                None,
                "the log streams SageMaker names after each variant and instance",
            ),
            (
                _log_group_pattern("TransformJobs"),
                None,
                "the log streams SageMaker names after each job",
            ),
        ],
    )
    return role


def grant_state_machine(
    role: iam.IRole,
    *,
    job_prefix: str,
    training_role: iam.IRole,
    training_data: s3.IBucket,
    key: kms.IKey,
) -> None:
    """What the SageMaker tasks need (REFERENCE.md section 2 for the `.sync` part), plus KMS.

    The S3, SSM and SNS tasks grant their own calls (CallAwsService / SnsPublish, with the
    exact object and parameter ARNs given in definition.py).
    """
    sagemaker_arn = f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}"
    training_jobs = f"{sagemaker_arn}:training-job/{job_prefix}*"
    statements = [
        iam.PolicyStatement(
            sid="RunTrainingJobs",
            actions=[
                "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopTrainingJob",
            ],
            resources=[training_jobs],
        ),
        # Step Functions tags the jobs it starts; the definition tags them too.
        iam.PolicyStatement(
            sid="TagTrainingJobs",
            actions=["sagemaker:AddTags"],
            resources=[training_jobs],
        ),
        # In AWS's `.sync` policy (on "*"); ListTags takes the job as resource, so scoped to
        # the pipeline's jobs (https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html).
        iam.PolicyStatement(
            sid="ListTrainingJobTags",
            actions=["sagemaker:ListTags"],
            resources=[training_jobs],
        ),
        iam.PolicyStatement(
            sid="PassTrainingRoleToSageMaker",
            actions=["iam:PassRole"],
            resources=[training_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": SAGEMAKER}},
        ),
        iam.PolicyStatement(
            sid="SyncTrainingJobEvents",
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[
                f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/{SYNC_RULE}"
            ],
        ),
        # Without ListBucket, S3 answers a missing manifest with 403 instead of NoSuchKey.
        iam.PolicyStatement(
            sid="TellMissingDatasetFiles",
            actions=["s3:ListBucket"],
            resources=[training_data.bucket_arn],
        ),
        *_kms_use(key, create_grant=True),
        *_tuning_statements(job_prefix.removesuffix("train-") + "t-"),
    ]
    for statement in statements:
        role.add_to_principal_policy(statement)


TUNING_SYNC_RULE = "StepFunctionsGetEventsForSageMakerTuningJobsRule"


def _tuning_statements(tuning_prefix: str) -> list[iam.PolicyStatement]:
    """createHyperParameterTuningJob.sync (stacks/training/tuning.py): the `.sync` policy of
    https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html, scoped to the
    pipeline's tuning jobs (`<prefix>-t-<digits>`). The training jobs a tuning job starts
    are created by SageMaker itself (the tuning job passes the training role); the
    definition's DescribeTrainingJob of the best one grants itself."""
    tuning_jobs = (
        f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
        f"hyper-parameter-tuning-job/{tuning_prefix}*"
    )
    return [
        iam.PolicyStatement(
            sid="RunTuningJobs",
            actions=[
                "sagemaker:CreateHyperParameterTuningJob",
                "sagemaker:DescribeHyperParameterTuningJob",
                "sagemaker:StopHyperParameterTuningJob",
                "sagemaker:AddTags",
                "sagemaker:ListTags",
            ],
            resources=[tuning_jobs],
        ),
        iam.PolicyStatement(
            sid="SyncTuningJobEvents",
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[
                f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/{TUNING_SYNC_RULE}"
            ],
        ),
    ]


TRANSFORM_SYNC_RULE = "StepFunctionsGetEventsForSageMakerTransformJobsRule"
TEST_PREDICTIONS = "test-predictions/"


def grant_test_gate(
    *,
    state_machine_role: iam.IRole,
    model_role: iam.Role,
    function_role: iam.Role,
    job_prefix: str,
    training_data: s3.IBucket,
    artifacts: s3.IBucket,
    key: kms.IKey,
) -> None:
    """The optional test-set gate: a temporary Model (created, then deleted by the
    definition's DeleteModel task, which grants that itself), a transform job on
    <dataset>test/ and its scoring Lambda."""
    sagemaker_arn = f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}"
    # The gate names its Model and transform job after the training job: <prefix>-train-*,
    # or, for a tuning run's best job, <prefix>-t-* (stacks/training/tuning.py).
    tuning_prefix = job_prefix.removesuffix("train-") + "t-"
    transform_jobs = [
        f"{sagemaker_arn}:transform-job/{prefix}*" for prefix in (job_prefix, tuning_prefix)
    ]
    models = [f"{sagemaker_arn}:model/{prefix}*" for prefix in (job_prefix, tuning_prefix)]
    for statement in (
        iam.PolicyStatement(
            sid="CreateTestModels",
            actions=["sagemaker:CreateModel", "sagemaker:AddTags"],
            resources=models,
        ),
        iam.PolicyStatement(
            sid="PassModelRoleToSageMaker",
            actions=["iam:PassRole"],
            resources=[model_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": SAGEMAKER}},
        ),
        iam.PolicyStatement(
            sid="RunTestTransformJobs",
            actions=[
                "sagemaker:CreateTransformJob",
                "sagemaker:DescribeTransformJob",
                "sagemaker:StopTransformJob",
                "sagemaker:AddTags",
                "sagemaker:ListTags",  # in AWS's `.sync` policy (sagemaker-iam page)
            ],
            resources=transform_jobs,
        ),
        iam.PolicyStatement(
            sid="SyncTransformJobEvents",
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[
                f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/{TRANSFORM_SYNC_RULE}"
            ],
        ),
    ):
        state_machine_role.add_to_principal_policy(statement)
    # The transform job runs with the model's role: read test/ images, write predictions.
    for statement in (
        iam.PolicyStatement(
            sid="ReadTestChannel",
            actions=["s3:GetObject"],
            resources=[training_data.arn_for_objects("*/test/*")],
        ),
        iam.PolicyStatement(
            sid="ListTestChannel",
            actions=["s3:ListBucket"],
            resources=[training_data.bucket_arn],
            conditions={"StringLike": {"s3:prefix": ["*/test/*"]}},
        ),
        iam.PolicyStatement(
            sid="WriteTestPredictions",
            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
            resources=[artifacts.arn_for_objects(f"{TRAINING_JOBS_PREFIX}*/{TEST_PREDICTIONS}*")],
        ),
    ):
        model_role.add_to_principal_policy(statement)
    for statement in (
        iam.PolicyStatement(
            sid="ReadTestTruth",
            actions=["s3:GetObject"],
            resources=[
                training_data.arn_for_objects("*/test_lst/*"),
                training_data.arn_for_objects("*/labels.json"),
            ],
        ),
        iam.PolicyStatement(
            sid="ReadTestPredictions",
            actions=["s3:GetObject"],
            resources=[artifacts.arn_for_objects(f"{TRAINING_JOBS_PREFIX}*/{TEST_PREDICTIONS}*")],
        ),
        # Without ListBucket a missing prediction is a 403, not NoSuchKey.
        iam.PolicyStatement(
            sid="TellMissingPredictions",
            actions=["s3:ListBucket"],
            resources=[artifacts.bucket_arn],
        ),
        iam.PolicyStatement(
            sid="WriteEvaluationReport",
            actions=["s3:PutObject"],
            resources=[artifacts.arn_for_objects(f"{TRAINING_JOBS_PREFIX}*/evaluation.json")],
        ),
        iam.PolicyStatement(
            sid="UseDataKey",
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=[key.key_arn],
        ),
    ):
        function_role.add_to_principal_policy(statement)
    _acknowledge_prefixes(
        model_role,
        [
            (
                "{}/*/test/*",
                training_data,
                "the transform job reads the test/ images of the "
                "dataset prefix chosen per execution",
            ),
            (
                f"{{}}/{TRAINING_JOBS_PREFIX}*/{TEST_PREDICTIONS}*",
                artifacts,
                "the transform job writes its predictions beside the model it evaluates",
            ),
        ],
    )
    _acknowledge_prefixes(
        function_role,
        [
            (
                "{}/*/test_lst/*",
                training_data,
                "the scoring Lambda reads the test .lst of the dataset prefix chosen per execution",
            ),
            ("{}/*/labels.json", training_data, "the scoring Lambda reads the dataset's labels"),
            (
                f"{{}}/{TRAINING_JOBS_PREFIX}*/{TEST_PREDICTIONS}*",
                artifacts,
                "the predictions of the model under evaluation",
            ),
            (
                f"{{}}/{TRAINING_JOBS_PREFIX}*/evaluation.json",
                artifacts,
                "the report beside the model under evaluation",
            ),
        ],
    )
