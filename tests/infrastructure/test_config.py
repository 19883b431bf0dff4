"""Configuration: defaults, overrides from context, and clear errors that name the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from stacks.config import DEFAULT_HYPERPARAMETERS, Config, ConfigError, config_from_context
from tests.infrastructure.conftest import build_app

REPO = Path(__file__).resolve().parents[2]


def _load(**context):
    return config_from_context(context.get)


class TestDefaults:
    def test_original_write_up_instances(self):
        config = Config()
        assert config.training_instance_type == "ml.p3.2xlarge"
        assert config.endpoint_instance_type == "ml.m4.xlarge"
        assert config.transform_instance_type == "ml.m4.xlarge"

    def test_data_is_retained_and_spot_is_on(self):
        config = Config()
        assert config.retain_data is True
        assert config.use_spot_training is True

    def test_no_checkpoint_per_epoch_in_the_model_file(self):
        # checkpoint_frequency stores every checkpoint inside model.tar.gz (GBs that each
        # endpoint start downloads); spot resume uses the job's CheckpointConfig.
        assert "checkpoint_frequency" not in Config().hyperparameters

    def test_early_stopping_is_sent_as_documented(self):
        assert Config().hyperparameters["early_stopping"] == "True"

    def test_transfer_learning_hyperparameters(self):
        hp = Config().hyperparameters
        assert hp["use_pretrained_model"] == "1"
        assert hp["image_shape"] == "3,224,224"
        assert int(hp["resize"]) > 224
        assert "num_classes" not in hp
        assert "num_training_samples" not in hp


class TestOverrides:
    def test_strings_from_dash_c_are_parsed_by_type(self):
        config = _load(
            retain_data="false",
            accuracy_threshold="0.9",
            endpoint_max_instances="4",
            training_instance_type="ml.g4dn.xlarge",
        )
        assert config.retain_data is False
        assert config.accuracy_threshold == 0.9
        assert config.endpoint_max_instances == 4
        assert config.training_instance_type == "ml.g4dn.xlarge"

    def test_json_types_from_cdk_json(self):
        config = _load(retain_data=False, accuracy_threshold=0.75, batch_max_images=100)
        assert (config.retain_data, config.accuracy_threshold, config.batch_max_images) == (
            False,
            0.75,
            100,
        )

    def test_hyperparameters_merge_onto_defaults(self):
        config = _load(hyperparameters='{"epochs": 5, "optimizer": "adam"}')
        assert config.hyperparameters["epochs"] == "5"
        assert config.hyperparameters["optimizer"] == "adam"
        assert config.hyperparameters["image_shape"] == DEFAULT_HYPERPARAMETERS["image_shape"]

    def test_override_changes_the_template(self):
        default = Template.from_stack(build_app().storage).to_json()
        changed = Template.from_stack(build_app({"prefix": "shop"}).storage).to_json()
        aliases = [
            r["Properties"]["AliasName"]
            for t in (default, changed)
            for r in t["Resources"].values()
            if r["Type"] == "AWS::KMS::Alias"
        ]
        assert aliases == ["alias/grocery-data", "alias/shop-data"]

    def test_explicit_region_is_used_for_the_stack(self):
        stacks = build_app({"region": "eu-west-1", "account": "123456789012"})
        assert stacks.storage.region == "eu-west-1"
        assert stacks.storage.account == "123456789012"


@pytest.mark.parametrize(
    ("context", "key"),
    [
        ({"training_instance_type": "ml.m5.xlarge"}, "training_instance_type"),
        ({"training_instance_type": "p3.2xlarge"}, "training_instance_type"),
        ({"endpoint_instance_type": "m4.xlarge"}, "endpoint_instance_type"),
        ({"hyperparameters": '{"epochs": 0}'}, "hyperparameters.epochs"),
        ({"hyperparameters": '{"epochs": "-3"}'}, "hyperparameters.epochs"),
        ({"hyperparameters": '{"resize": "200"}'}, "hyperparameters.resize"),
        ({"hyperparameters": '{"num_classes": "81"}'}, "hyperparameters.num_classes"),
        ({"hyperparameters": "not json"}, "hyperparameters"),
        ({"region": "mars-north-1"}, "region"),
        ({"region": "cn-north-1"}, "region"),
        ({"region": "us-gov-west-1"}, "region"),
        ({"hyperparameters": '{"early_stopping": "true"}'}, "hyperparameters.early_stopping"),
        ({"account": "12345"}, "account"),
        ({"accuracy_threshold": "1.5"}, "accuracy_threshold"),
        ({"accuracy_threshold": "high"}, "accuracy_threshold"),
        ({"retain_data": "maybe"}, "retain_data"),
        ({"prefix": "Grocery_App"}, "prefix"),
        ({"endpoint_min_instances": "3", "endpoint_max_instances": "2"}, "endpoint_max_instances"),
        ({"batch_window_seconds": "600"}, "batch_window_seconds"),
        ({"spot_max_wait_seconds": "60"}, "spot_max_wait_seconds"),
        ({"alarm_email": "not-an-address"}, "alarm_email"),
        ({"batch_max_images": "2.5"}, "batch_max_images"),
        ({"batch_window_seconds": "0", "batch_max_images": "11"}, "batch_window_seconds"),
        ({"test_accuracy_threshold": "1.5"}, "test_accuracy_threshold"),
        ({"test_accuracy_threshold": "-0.1"}, "test_accuracy_threshold"),
        ({"transform_instance_count": "0"}, "transform_instance_count"),
        ({"transform_instance_count": "21"}, "transform_instance_count"),
        ({"transform_max_concurrent": "17"}, "transform_max_concurrent"),
        ({"transform_max_concurrent": "-1"}, "transform_max_concurrent"),
    ],
)
def test_invalid_values_name_the_key(context, key):
    with pytest.raises(ConfigError, match=f"config key '{key}' has invalid value"):
        _load(**context)


class TestUnknownKeys:
    def test_misspelt_key_names_the_nearest_one(self):
        with pytest.raises(
            ConfigError,
            match="unknown config key 'accuracy_treshold': did you mean 'accuracy_threshold'",
        ):
            config_from_context({}.get, ["accuracy_treshold"])

    def test_unrelated_key_points_to_the_readme(self):
        with pytest.raises(ConfigError, match="unknown config key 'colour': see README"):
            config_from_context({}.get, ["colour"])

    def test_cdk_keys_and_feature_flags_pass(self):
        keys = [
            "@aws-cdk/aws-iam:minimizePolicies",
            "aws:cdk:enable-path-metadata",
            "availability-zones:account=1:region=us-east-1",
            "acknowledged-issue-numbers",
            "prefix",
        ]
        assert config_from_context({"prefix": "shop"}.get, keys).prefix == "shop"

    def test_the_app_refuses_them(self):
        with pytest.raises(ConfigError, match="accuracy_treshold"):
            build_app({"accuracy_treshold": "0.9"})


def test_synth_fails_with_a_clear_message_and_no_traceback():
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO,
        env={
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin:/usr/local/bin",
            "CDK_CONTEXT_JSON": '{"training_instance_type": "ml.c5.xlarge"}',
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert "config key 'training_instance_type' has invalid value 'ml.c5.xlarge'" in result.stderr
    assert "GPU" in result.stderr
    assert "Traceback" not in result.stderr


def test_test_accuracy_gate_is_off_by_default_and_parsed_from_context():
    assert _load().test_accuracy_threshold == 0.0
    assert _load(test_accuracy_threshold="0.75").test_accuracy_threshold == 0.75
