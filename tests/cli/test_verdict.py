"""Claims on a real study: the search never sees the test split, the confirmation scores it once
per run, exports what the verdicts rest on, and ``dropout-lab verdict`` re-derives them."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient
import numpy as np
import optuna
from optuna.trial import TrialState
import pytest

from framework.reporting.evidence import load
from framework.tracking import Locations
from tests.cli.test_cli import cli
from tests.conftest import write_study


STUDY = """
name: claims
seed: 0
model: {name: mlp, hidden: [32]}
data: {name: digits}
train: {max_steps: 60, batch_size: 32, eval_every: 30, lr: 0.01, warmup_steps: 5}
dropout:
  - {name: standard, p: 0.1}
search:
  n_trials: 2
  sampler: {name: random, seed: 0}
  space:
    dropout.0.p: {type: float, low: 0.0, high: 0.3}
confirm: {top: 1, seeds: 3, baseline: {dropout: [{name: none}]}}
claims:
  - {id: error, text: Dropout lowers the test error., candidate: top1, metric: test_error,
     direction: lower}
  - {id: loss, text: Dropout costs at most 0.5 nats of test loss., candidate: top1,
     metric: test_loss, direction: lower, margin: 0.5}
"""


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("claims")
    study = write_study(folder, STUDY)
    home = folder / "mlruns"
    ran = cli("run", str(study), "--home", str(home), cwd=folder)
    assert ran.returncode == 0, ran.stderr
    result = cli("confirm", str(study), "--home", str(home), "--export", "evidence",
                 "--markdown", "page.md", cwd=folder)
    return folder, home, Locations.resolve(home), result


@pytest.mark.slow
def test_the_search_never_sees_the_test_split(confirmed) -> None:
    _, _, locations, _ = confirmed
    search = optuna.load_study(study_name="claims", storage=locations.storage)
    trials = search.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2
    client = MlflowClient(locations.tracking_uri)
    for trial in trials:
        assert not [k for k in trial.user_attrs if "test_" in k], trial.user_attrs
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert not [k for k in run.data.metrics if "test_" in k]
        assert "test_examples.npz" not in {a.path for a in client.list_artifacts(run.info.run_id)}


@pytest.mark.slow
def test_each_confirmation_run_scores_every_test_example_once(confirmed) -> None:
    folder, _, locations, result = confirmed
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="claims-confirm", storage=locations.storage)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 6
    evidence = load(folder / "evidence")
    for trial in trials:
        scores = evidence.examples[(trial.params["config"], trial.params["seed"])]
        assert len(scores["test_accuracy"]) == 360  # the digits' test split, every image
        # The run's test accuracy is the mean of its examples' (one batch of the whole split).
        assert np.mean(scores["test_accuracy"]) == pytest.approx(
            trial.user_attrs["test_accuracy"], abs=1e-6)
        np.testing.assert_allclose(scores["test_error"], 1 - scores["test_accuracy"])


@pytest.mark.slow
def test_confirm_prints_one_verdict_per_claim_and_verdict_re_derives_them(confirmed) -> None:
    folder, home, _, result = confirmed
    lines = result.stdout.splitlines()
    claims = [line for line in lines if line.startswith("Claim ")]
    assert [line.split(":")[0] for line in claims] == ["Claim error", "Claim loss"]
    assert "x 360 test examples" in claims[0]
    assert any(line.startswith("Verdict: ") for line in lines)
    again = cli("verdict", "evidence", "--markdown", "again.md", cwd=folder)
    assert again.returncode == 0, again.stderr
    page = (folder / "page.md").read_text()
    assert (folder / "again.md").read_text() == page
    assert again.stdout.startswith(page)
    assert page == (home / "reports" / "claims-confirm.md").read_text()
    assert page.count("\nClaim ") == 2


def test_verdict_on_a_folder_without_evidence_exits_2(tmp_path: Path) -> None:
    result = cli("verdict", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "confirmation.json is missing" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_confirm_refuses_an_export_path_that_is_a_file_before_training(tmp_path: Path) -> None:
    study = write_study(tmp_path, STUDY)
    (tmp_path / "taken").write_text("")
    result = cli("confirm", str(study), "--home", str(tmp_path / "home"), "--export", "taken",
                 cwd=tmp_path)
    assert result.returncode == 2 and "--export: " in result.stderr and "is a file" in result.stderr
    assert not (tmp_path / "home").exists()
