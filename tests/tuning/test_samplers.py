import copy
import inspect
import warnings

import optuna
import pytest

from framework.config import load_spec
from framework.errors import SpecError
from framework.tuning.samplers import make_pruner
from framework.tuning.samplers import make_sampler
from framework.tuning.samplers import sampler_seed
from framework.tuning.space import suggest
from tests.conftest import ROOT


SAMPLERS = ["tpe", "random", "grid", "cmaes", "gp", "nsgaii"]


def test_parallel_workers_of_a_grid_study_run_each_point_once() -> None:
    loaded = load_spec(ROOT / "studies" / "quickstart.yaml", [
        "search.space={dropout.0.p: {type: categorical, choices: [0.0, 0.1, 0.2, 0.3]}}",
        "search.sampler={name: grid, seed: 0}", "search.n_trials=4"])
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(study_name="grid", storage=storage)
    # Four workers join the fresh study at once, each with its own sampler seed, as
    # `run --workers 4` makes them; each starts one trial before any finishes.
    workers = [optuna.load_study(study_name="grid", storage=storage, sampler=make_sampler(
        loaded.spec.search, sampler_seed(0, 0, worker))) for worker in range(4)]
    trials = [study.ask() for study in workers]
    for trial in trials:
        suggest(trial, loaded.spec.search.space, copy.deepcopy(loaded.raw))
    assert sorted(trial.params["dropout.0.p"] for trial in trials) == [0.0, 0.1, 0.2, 0.3]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_searches_the_spec_space(sampler: str) -> None:
    space = ("search.space={dropout.0.p: {type: float, low: 0.0, high: 0.2, step: 0.1}, "
             "train.batch_size: {type: int, low: 8, high: 16, step: 8}}")
    loaded = load_spec(ROOT / "studies" / "quickstart.yaml",
                       [space, f"search.sampler={{name: {sampler}, seed: 1}}"])
    study = optuna.create_study(sampler=make_sampler(loaded.spec.search))

    def objective(trial: optuna.Trial) -> float:
        raw = copy.deepcopy(loaded.raw)
        suggest(trial, loaded.spec.search.space, raw)
        assert raw["dropout"][0]["p"] in (0.0, 0.1, 0.2)
        return raw["dropout"][0]["p"] + raw["train"]["batch_size"] / 100

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study.optimize(objective, n_trials=6)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 6
    if sampler == "grid":  # 3 x 2 points: a grid visits each exactly once
        assert len({tuple(t.params.values()) for t in study.trials}) == 6


PRUNERS = {
    "median": ("{name: median}", optuna.pruners.MedianPruner),
    "percentile": ("{name: percentile, percentile: 40}", optuna.pruners.PercentilePruner),
    "hyperband": ("{name: hyperband}", optuna.pruners.HyperbandPruner),
    "successive_halving": ("{name: successive_halving}", optuna.pruners.SuccessiveHalvingPruner),
    "wilcoxon": ("{name: wilcoxon, p_threshold: 0.05}", optuna.pruners.WilcoxonPruner),
    "threshold": ("{name: threshold, upper: 3.0}", optuna.pruners.ThresholdPruner),
    "patient": ("{name: patient, patience: 2, wrapped: {name: median}}",
                optuna.pruners.PatientPruner),
    "none": ("{name: none}", optuna.pruners.NopPruner),
}


@pytest.mark.parametrize("pruner", list(PRUNERS))
def test_every_pruner_is_fed_intermediate_values(pruner: str) -> None:
    text, cls = PRUNERS[pruner]
    loaded = load_spec(ROOT / "studies" / "quickstart.yaml",
                       [f"search.pruner={text}", "train.max_steps=100"])
    built = make_pruner(loaded.spec.search, 100)
    assert type(built) is cls
    # A fixed name: Hyperband assigns trials to brackets by hashing the study name.
    study = optuna.create_study(study_name="pruners", pruner=built)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    pruned = []
    for good in [True, True, True, False, False, False]:
        trial = study.ask()
        for step in range(10, 101, 10):
            # Bad trials get worse (diverge): the patient pruner acts only on no improvement.
            trial.report(1.0 if good else 5.0 + step / 100, step)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                pruned.append(good)
                break
        else:
            study.tell(trial, 1.0 if good else 5.0)
    assert (not pruned) == (pruner == "none")
    assert not any(pruned), "only the bad trials may be pruned"


def test_patient_pruner_wraps_the_pruner_it_names() -> None:
    loaded = load_spec(ROOT / "studies" / "quickstart.yaml", [
        "search.pruner={name: patient, patience: 1, wrapped: {name: patient, patience: 3, "
        "wrapped: {name: threshold, lower: 0.5}}}"])
    built = make_pruner(loaded.spec.search, 400)
    inner = built._wrapped_pruner
    assert isinstance(inner, optuna.pruners.PatientPruner) and inner._patience == 3
    assert isinstance(inner._wrapped_pruner, optuna.pruners.ThresholdPruner)


@pytest.mark.parametrize(
    ("pruner", "key"),
    [("{name: threshold}", "search.pruner"),
     ("{name: threshold, lower: 2.0, upper: 1.0}", "search.pruner"),
     ("{name: percentile, percentile: 120}", "search.pruner.percentile"),
     ("{name: patient, patience: 1, wrapped: {name: medain}}", "search.pruner.wrapped")],
)
def test_bad_pruner_specs_name_the_key(pruner: str, key: str) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(ROOT / "studies" / "quickstart.yaml", [f"search.pruner={pruner}"])
    assert error.value.key is not None and error.value.key.startswith(key), error.value


def test_tpe_follows_optunas_multivariate_default() -> None:
    loaded = load_spec(ROOT / "studies" / "quickstart.yaml")
    default = inspect.signature(optuna.samplers.TPESampler).parameters["multivariate"].default
    assert loaded.spec.search.sampler.multivariate == default
    sampler = make_sampler(loaded.spec.search)
    study = optuna.create_study(sampler=sampler)
    assert sampler._is_multivariate(study), "Optuna 5: multivariate for one objective"


def test_group_tpe_searches_a_conditional_space() -> None:
    space = ("search.space={dropout.0: {type: choice, options: {"
             "fixed: {value: {name: standard}, space: {p: {type: float, low: 0.0, high: 0.3}}}, "
             "without: {value: {name: none}}}}, "
             "train.lr: {type: float, low: 1.0e-3, high: 1.0e-2}}")
    loaded = load_spec(ROOT / "studies" / "quickstart.yaml", [
        space, "search.sampler={name: tpe, seed: 0, group: true, n_startup_trials: 4}"])
    sampler = make_sampler(loaded.spec.search)
    assert sampler._group
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        raw = copy.deepcopy(loaded.raw)
        suggest(trial, loaded.spec.search.space, raw)
        p = raw["dropout"][0].get("p", 0.5)
        return (p - 0.1) ** 2 + raw["train"]["lr"]

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "falls back to independent sampling"
        study.optimize(objective, n_trials=14)
    options = {t.params["dropout.0"] for t in study.trials}
    assert options == {"fixed", "without"}
    for trial in study.trials:  # each option's sub-space only when it is chosen
        assert ("dropout.0/fixed/p" in trial.params) == (trial.params["dropout.0"] == "fixed")


def test_group_needs_the_multivariate_tpe() -> None:
    with pytest.raises(SpecError) as error:
        load_spec(ROOT / "studies" / "quickstart.yaml",
                  ["search.sampler={name: tpe, group: true, multivariate: false}"])
    assert error.value.key == "search.sampler" and "multivariate" in error.value.message


def test_sampler_seeds_differ_per_invocation_and_worker_and_repeat() -> None:
    seeds = {(n, w): sampler_seed(7, n, w) for n in range(4) for w in range(3)}
    assert seeds[(0, 0)] == 7, "a fresh study's first worker keeps the seed as written"
    assert len(set(seeds.values())) == len(seeds)
    assert seeds == {(n, w): sampler_seed(7, n, w) for n in range(4) for w in range(3)}
    assert sampler_seed(None, 3, 1) is None
    assert sampler_seed(-5, 2, 0) != sampler_seed(5, 2, 0)


@pytest.mark.slow
def test_a_real_study_prunes_with_the_threshold_pruner(tiny_study, locations) -> None:
    """An untrained GPT's val loss (about ln 65 = 4.17) is above 1.0: every trial is pruned at
    its first evaluation, and its MLflow run says so."""
    from mlflow import MlflowClient

    from framework.tuning.study import run_study

    outcome = run_study(load_spec(tiny_study, ["search.pruner={name: threshold, upper: 1.0}"]),
                        locations)
    trials = outcome.study.trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.PRUNED] * 2
    assert all(t.last_step == 3 for t in trials), "pruned at the first evaluation (step 3)"
    client = MlflowClient(locations.tracking_uri)
    for trial in trials:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.info.status == "KILLED" and run.data.tags["dropout_lab.state"] == "pruned"
