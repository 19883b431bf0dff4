"""`python -m grocery training report` end to end on recorded responses (botocore Stubber:
moto has no recorded billing, spot or tuning fields to replay)."""

from __future__ import annotations

import re
import struct
from datetime import timedelta
from pathlib import Path

import pytest

import grocery.__main__ as cli
from grocery.training_report import command
from tests.training_report import scenarios as s
from tests.training_report.recorded import Stubs, load

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch):
    with Stubs() as stubs:
        monkeypatch.setattr(command, "aws_session", lambda: stubs)
        yield stubs
    stubs.assert_all_used()


def logged(prefix: str, split: str) -> list[float]:
    """The values of `Epoch[n] <split>-accuracy=` in the recorded log, in order."""
    values = []
    for page in (1, 2, 3):
        events = load(f"{prefix}.get_log_events.{page}.json", "logs", "GetLogEvents")["events"]
        for event in events:
            values += [float(v) for v in re.findall(rf"{split}-accuracy=(\S+)", event["message"])]
    return values


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return struct.unpack(">II", data[16:24])


def field(text: str, name: str) -> str:
    """The value of one `name  value` line of the printed summary."""
    found = re.search(rf"^{re.escape(name)}  +(.*)$", text, re.MULTILINE)
    assert found, f"no {name!r} line in:\n{text}"
    return found.group(1)


def epoch_lines(text: str) -> list[list[str]]:
    """Rows of the terminal epoch table: `<n>  <train>  <validation>  [best]`."""
    return [line.split() for line in text.splitlines() if re.match(r"^\d+\s+\d\.\d{3}\s", line)]


def test_job_report_prints_the_table_and_writes_markdown_and_png(stubs, tmp_path, capsys):
    s.training_job(stubs, "job.describe_training_job.json", s.JOB)
    s.job_logs(stubs, "job", s.JOB)
    out = tmp_path / "reports" / "run-1"  # missing: created

    assert cli.main(["training", "report", s.JOB, "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    train, validation = logged("job", "Train"), logged("job", "Validation")
    rows = epoch_lines(printed)
    assert [int(r[0]) for r in rows] == list(range(1, len(validation) + 1)) == list(range(1, 31))
    assert [float(r[1]) for r in rows] == [round(v, 3) for v in train]
    assert [float(r[2]) for r in rows] == [round(v, 3) for v in validation]
    best = validation.index(max(validation)) + 1
    assert [int(r[0]) for r in rows if r[-1] == "best"] == [best]

    job = load("job.describe_training_job.json", "sagemaker", "DescribeTrainingJob")
    billable, training = job["BillableTimeInSeconds"], job["TrainingTimeInSeconds"]
    assert field(printed, "billable time") == f"{billable} s"
    assert field(printed, "training time") == f"{training} s"
    assert field(printed, "spot savings") == f"{(1 - billable / training) * 100:.1f} %"
    assert field(printed, "cost") == (
        f"${billable / 3600 * 3.825:.2f} (us-east-1 on-demand list price, 2026-11-25 "
        "(docs/costs.md))"
    )
    assert field(printed, "instances") == "ml.p3.2xlarge x 1, managed spot"
    assert field(printed, "best epoch") == f"{best} (validation {max(validation):.3f})"
    wall = job["TrainingEndTime"] - job["TrainingStartTime"]
    minutes, seconds = divmod(int(wall.total_seconds()), 60)
    assert field(printed, "duration").startswith(f"{minutes} min {seconds} s")

    markdown = (out / "report.md").read_text()
    table = [line for line in markdown.splitlines() if re.match(r"^\| \d+ \| ", line)]
    assert len(table) == 30
    assert table[best - 1] == f"| {best} | {train[best - 1]:.3f} | {max(validation):.3f} | best |"
    assert "![learning curve](learning-curve.png)" in markdown
    assert "| num_classes | 81 |" in markdown
    assert png_size(out / "learning-curve.png") == (800, 450)
    assert f"wrote {out / 'report.md'}, {out / 'learning-curve.png'}" in printed


def test_unknown_job_says_so_and_exits_1(stubs, tmp_path, capsys):
    name = "grocery-train-doesnotexist"
    stubs.error("sagemaker", "describe_training_job", "ValidationException", s.NOT_FOUND)
    stubs.error(
        "sagemaker",
        "describe_hyper_parameter_tuning_job",
        "ResourceNotFound",
        f"Amazon SageMaker can't find a tuning job with name {name}",
    )

    assert cli.main(["training", "report", name, "--out", str(tmp_path / "r")]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(
        f"error: no training job or hyperparameter tuning job named '{name}' in us-east-1"
    )
    assert not (tmp_path / "r" / "report.md").exists()


def test_other_aws_errors_are_not_taken_for_a_missing_job(stubs, tmp_path, capsys):
    stubs.error("sagemaker", "describe_training_job", "ThrottlingException", "Rate exceeded")

    assert cli.main(["training", "report", s.JOB, "--out", str(tmp_path)]) == 1

    assert "AWS refused the request" in capsys.readouterr().err


@pytest.mark.parametrize("group_exists", [True, False])
def test_job_without_logs_or_metrics_says_so_and_writes_the_rest(
    stubs, tmp_path, capsys, group_exists
):
    s.training_job(stubs, "job.describe_training_job.json", s.JOB)
    s.no_logs(stubs, s.JOB, group_exists=group_exists)
    s.metrics(stubs, {"MetricDataResults": [{"Id": "train", "Timestamps": [], "Values": []}]})

    assert cli.main(["training", "report", s.JOB, "--out", str(tmp_path)]) == 0

    printed = capsys.readouterr().out
    assert (
        f"no per-epoch values: no log streams {s.JOB}/* in /aws/sagemaker/TrainingJobs" in printed
    )
    assert "no train:accuracy / validation:accuracy data points" in printed
    assert "no learning curve" in printed
    job = load("job.describe_training_job.json", "sagemaker", "DescribeTrainingJob")
    assert field(printed, "billable time") == f"{job['BillableTimeInSeconds']} s"
    markdown = (tmp_path / "report.md").read_text()
    assert "No per-epoch values: no log streams" in markdown
    final = job["FinalMetricDataList"][1]
    assert f"| final {final['MetricName']} | {final['Value']:.3f} |" in markdown
    assert not (tmp_path / "learning-curve.png").exists()


def test_expired_logs_fall_back_to_the_metrics(stubs, tmp_path, capsys):
    job = load("job.describe_training_job.json", "sagemaker", "DescribeTrainingJob")
    s.training_job(stubs, "job.describe_training_job.json", s.JOB)
    s.no_logs(stubs, s.JOB)
    s.metrics(stubs, "job.get_metric_data.json")
    recorded = load("job.get_metric_data.json", "cloudwatch", "GetMetricData")["MetricDataResults"]
    args = cli.build_parser().parse_args(["training", "report", s.JOB, "--out", str(tmp_path)])

    now = job["TrainingEndTime"] + timedelta(days=20)  # 5-minute data by then
    assert command.run_report(args, now=now) == 0

    printed = capsys.readouterr().out
    rows = epoch_lines(printed)
    assert [float(r[1]) for r in rows] == [round(v, 3) for v in recorded[0]["Values"]]
    assert [float(r[2]) for r in rows] == [round(v, 3) for v in recorded[1]["Values"]]
    assert (
        "values from CloudWatch metrics /aws/sagemaker/TrainingJobs (one 300-s average" in printed
    )
    assert png_size(tmp_path / "learning-curve.png") == (800, 450)


def test_tuning_job_reports_its_training_jobs_and_the_best_ones_epochs(stubs, tmp_path, capsys):
    stubs.error("sagemaker", "describe_training_job", "ValidationException", s.NOT_FOUND)
    s.tuning_run(stubs)
    s.training_job(stubs, "trial2.describe_training_job.json", s.BEST)
    s.job_logs(stubs, "trial2", s.BEST)

    assert cli.main(["training", "report", s.TUNING, "--out", str(tmp_path)]) == 0

    printed = capsys.readouterr().out
    assert printed.startswith(f"hyperparameter tuning job {s.TUNING}\n")
    assert len(epoch_lines(printed)) == len(logged("trial2", "Validation"))
    trials = [line.split() for line in printed.splitlines() if line.startswith(f"{s.TUNING}-")]
    assert [t[0] for t in trials] == list(s.TRIALS)
    summaries = [
        summary
        for page in (1, 2)
        for summary in load(
            f"tuning.list_training_jobs_for_hyper_parameter_tuning_job.{page}.json",
            "sagemaker",
            "ListTrainingJobsForHyperParameterTuningJob",
        )["TrainingJobSummaries"]
    ]
    billed = []
    for trial, summary, index in zip(trials, summaries, range(1, 5), strict=True):
        described = load(
            f"trial{index}.describe_training_job.json", "sagemaker", "DescribeTrainingJob"
        )
        billed.append(described["BillableTimeInSeconds"])
        hyper = summary["TunedHyperParameters"]
        assert trial[1] == summary["TrainingJobStatus"]
        assert float(trial[2]) == round(
            summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], 3
        )
        assert trial[3:6] == [f"{k}={hyper[k]}" for k in sorted(hyper)]
        assert trial[6:8] == [str(described["BillableTimeInSeconds"]), "s"]
        assert (trial[-1] == "best") == (summary["TrainingJobName"] == s.BEST)
    assert f"billable time, all jobs  {sum(billed)} s" in printed
    assert f"cost, all jobs           ${sum(billed) / 3600 * 3.825:.2f}" in printed
    assert "objective                validation:accuracy (Maximize)" in printed
    markdown = (tmp_path / "report.md").read_text()
    assert f"## Hyperparameter tuning job `{s.TUNING}`" in markdown
    assert f"## Training job `{s.BEST}`" in markdown


def test_version_trained_by_a_tuning_run_reports_the_run_too(stubs, tmp_path, capsys):
    s.version_3(stubs)
    s.training_job(stubs, "trial2.describe_training_job.json", s.BEST)
    s.job_logs(stubs, "trial2", s.BEST)
    s.tuning_run(stubs)

    assert cli.main(["training", "report", "3", "--out", str(tmp_path)]) == 0

    printed = capsys.readouterr().out
    assert printed.startswith("model version 3 of grocery-classifier\n")
    assert f"\ntraining job {s.BEST}\n" in printed
    assert f"\nhyperparameter tuning job {s.TUNING}\n" in printed
    assert len(epoch_lines(printed)) == 30
    assert (tmp_path / "learning-curve.png").exists()


def test_unknown_version_exits_1(stubs, tmp_path, capsys):
    stubs.respond("sagemaker", "list_model_packages", "version.list_model_packages.json")

    assert cli.main(["training", "report", "9", "--out", str(tmp_path)]) == 1

    assert "model package group grocery-classifier has no version 9" in capsys.readouterr().err


def test_out_that_is_a_file_is_refused_before_any_aws_call(stubs, tmp_path, capsys):
    (tmp_path / "taken").write_text("x")

    assert cli.main(["training", "report", s.JOB, "--out", str(tmp_path / "taken")]) == 2

    assert "is a file: name a folder" in capsys.readouterr().err


@pytest.mark.parametrize("price", ["-1", "nan", "cheap"])
def test_bad_price_is_a_usage_error(price, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["training", "report", s.JOB, "--out", "x", "--price-per-hour", price])
    assert exit_info.value.code == 2
    assert "--price-per-hour must be a number >= 0" in capsys.readouterr().err


def test_price_override_and_unknown_instance_type(stubs, tmp_path, capsys):
    job = load("job.describe_training_job.json", "sagemaker", "DescribeTrainingJob")
    job["ResourceConfig"] = {
        "InstanceType": "ml.p4d.24xlarge",
        "InstanceCount": 2,
        "VolumeSizeInGB": 30,
    }
    for _ in range(2):
        stubs.respond("sagemaker", "describe_training_job", job, {"TrainingJobName": s.JOB})
        s.no_logs(stubs, s.JOB)
        s.metrics(stubs, {"MetricDataResults": []})

    assert cli.main(["training", "report", s.JOB, "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert (
        field(printed, "cost")
        == "- (no price for ml.p4d.24xlarge in docs/costs.md: pass --price-per-hour)"
    )
    assert field(printed, "instances") == "ml.p4d.24xlarge x 2, managed spot"

    argv = ["training", "report", s.JOB, "--out", str(tmp_path), "--price-per-hour", "37.688"]
    assert cli.main(argv) == 0
    billed = job["BillableTimeInSeconds"] * 2  # billable seconds x instance count
    assert (
        field(capsys.readouterr().out, "cost")
        == f"${billed / 3600 * 37.688:.2f} (--price-per-hour)"
    )


def test_failed_job_that_never_started(stubs, tmp_path, capsys):
    job = load("job.describe_training_job.json", "sagemaker", "DescribeTrainingJob")
    for key in (
        "TrainingStartTime",
        "TrainingEndTime",
        "TrainingTimeInSeconds",
        "BillableTimeInSeconds",
        "FinalMetricDataList",
    ):
        del job[key]
    reason = "CapacityError: Unable to provision requested ML compute capacity."
    job.update(TrainingJobStatus="Failed", SecondaryStatus="Failed", FailureReason=reason)
    stubs.respond("sagemaker", "describe_training_job", job, {"TrainingJobName": s.JOB})
    s.no_logs(stubs, s.JOB)

    assert cli.main(["training", "report", s.JOB, "--out", str(tmp_path)]) == 0

    printed = capsys.readouterr().out
    assert field(printed, "status") == f"Failed ({reason})"
    assert field(printed, "billable time") == "-"
    assert field(printed, "cost").startswith("- (")
    assert "the job never started training" in printed


def test_version_whose_job_is_gone_or_unnamed(stubs, tmp_path, capsys):
    s.version_3(stubs)
    stubs.error("sagemaker", "describe_training_job", "ValidationException", s.NOT_FOUND)
    assert cli.main(["training", "report", "3", "--out", str(tmp_path)]) == 1
    assert f"was trained by {s.BEST}, which SageMaker no longer knows" in capsys.readouterr().err

    package = load("version.describe_model_package.json", "sagemaker", "DescribeModelPackage")
    del package["CustomerMetadataProperties"]["training_job"]
    stubs.respond("sagemaker", "list_model_packages", "version.list_model_packages.json")
    stubs.respond("sagemaker", "describe_model_package", package)
    assert cli.main(["training", "report", "3", "--out", str(tmp_path)]) == 1
    assert "has no training_job metadata" in capsys.readouterr().err


def test_pages_of_streams_and_metrics_are_all_read(stubs, tmp_path, capsys):
    s.training_job(stubs, "job.describe_training_job.json", s.JOB)
    request = {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamNamePrefix": f"{s.JOB}/"}
    stubs.respond("logs", "describe_log_streams", {"logStreams": [], "nextToken": "n1"}, request)
    stubs.respond(
        "logs", "describe_log_streams", {"logStreams": []}, {**request, "nextToken": "n1"}
    )
    recorded = load("job.get_metric_data.json", "cloudwatch", "GetMetricData")
    first, second = (dict(recorded), dict(recorded))
    first["NextToken"] = "m1"
    first["MetricDataResults"] = [
        {**r, "Timestamps": r["Timestamps"][:1], "Values": r["Values"][:1]}
        for r in recorded["MetricDataResults"]
    ]
    second["MetricDataResults"] = [
        {**r, "Timestamps": r["Timestamps"][1:], "Values": r["Values"][1:]}
        for r in recorded["MetricDataResults"]
    ]
    s.metrics(stubs, first)
    s.metrics(stubs, second, token="m1")

    assert cli.main(["training", "report", s.JOB, "--out", str(tmp_path)]) == 0

    rows = epoch_lines(capsys.readouterr().out)
    assert [float(r[2]) for r in rows] == [
        round(v, 3) for v in recorded["MetricDataResults"][1]["Values"]
    ]


@pytest.mark.parametrize("service", ["logs", "tuning"])
def test_access_denied_is_reported_not_taken_for_missing_data(stubs, tmp_path, capsys, service):
    if service == "logs":
        s.training_job(stubs, "job.describe_training_job.json", s.JOB)
        stubs.error("logs", "describe_log_streams", "AccessDeniedException", "not authorized")
    else:
        stubs.error("sagemaker", "describe_training_job", "ValidationException", s.NOT_FOUND)
        stubs.error(
            "sagemaker", "describe_hyper_parameter_tuning_job", "ThrottlingException", "slow down"
        )

    assert cli.main(["training", "report", s.JOB, "--out", str(tmp_path)]) != 0

    assert capsys.readouterr().err.startswith("error: ")
