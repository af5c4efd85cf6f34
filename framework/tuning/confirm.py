"""Confirm a study's best configurations: re-train each, and the baseline, over fresh seeds.

A search picks the luckiest trial; confirmation asks whether its advantage survives new seeds.
The K best complete trials of the study (of each arm, when the study has arms) and the baseline
are frozen into a list of configurations, stored on an Optuna study ``<name>-confirm``. That study
is a grid over (configuration, seed): every pair is one trial, trained by the ordinary
:class:`~framework.tuning.objective.Objective`, so it is a child MLflow run of a confirmation run
with the same metrics and artifacts as a search trial. Running the command again continues the
grid (failed pairs are queued again) and several processes may work on it at once. Every
configuration uses the same seeds, so the comparison with the baseline is paired.

A confirmation trains with the settings the search used: a spec that differs from the search
study's stored settings (e.g. ``train.max_steps=100`` after a 400-step search) is refused unless
asked for explicitly, and the confirmation study keeps a label of the settings each study used,
which the comparison table prints.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
import datetime
from typing import Any

import optuna
from optuna.trial import FixedTrial
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from framework.config import LoadedSpec
from framework.config import StudySpec
from framework.config import validate
from framework.config.arms import arm_raw
from framework.config.arms import baseline_raw
from framework.config.loading import validate_variant
from framework.errors import SpecError
from framework.tracking import Locations
from framework.tracking import Tracker
from framework.tuning import fingerprint
from framework.tuning.objective import Objective
from framework.tuning.space import suggest
from framework.tuning.storage import fail_stale_trials
from framework.tuning.storage import load_if_exists
from framework.tuning.storage import make_storage
from framework.tuning.study import name_objectives
from framework.tuning.study import run_trial


BASELINE = "baseline"
CONFIGS_ATTR = "confirm_configs"
SETTINGS_ATTR = "settings"
"""``[[title, label], ...]``: the settings each study of the comparison was trained with."""
SEED_BASE = 1000
"""Fresh seeds start here and skip every seed the search used."""


@dataclass(frozen=True)
class Configuration:
    """One configuration to confirm: where it came from and its full plain spec."""

    label: str
    """``top1``.. (or ``<arm>/top1``..) and ``baseline``."""
    arm: str | None
    source_trial: int | None
    params: dict[str, Any]
    raw: dict[str, Any]
    chosen: dict[str, Any] = field(default_factory=dict)
    """How it was chosen: ``searched`` keys, finished ``trials``, ``sampler`` (empty: as
    written)."""
    drops: list[str] = field(default_factory=list)
    """What its dropout acts on (see :func:`dropped_units`)."""

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "arm": self.arm, "source_trial": self.source_trial,
                "params": self.params, "raw": self.raw, "chosen": self.chosen,
                "drops": self.drops}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Configuration:
        return cls(data["label"], data["arm"], data["source_trial"], data["params"], data["raw"],
                   data.get("chosen") or {}, data.get("drops") or [])


@dataclass
class Plan:
    """What a confirmation trains: configurations x seeds, plus arms that had nothing to confirm."""

    name: str
    configurations: list[Configuration]
    seeds: list[int]
    empty_arms: list[str]
    baseline_label: str | None
    settings: list[tuple[str, str]] = field(default_factory=list)
    """``(title, label)`` of the settings of each search study and of the confirmation."""
    changed: dict[str, fingerprint.Differences] = field(default_factory=dict)
    """Per search study, how this invocation's settings differ from the search's."""

    @property
    def n_trials(self) -> int:
        return len(self.configurations) * len(self.seeds)


@dataclass
class ConfirmOutcome:
    study: optuna.Study
    plan: Plan
    experiment_id: str
    parent_run_id: str


def confirm_name(study_name: str) -> str:
    return f"{study_name}-confirm"


def arm_loaded(loaded: LoadedSpec, arm: str) -> LoadedSpec:
    """One arm as a study of its own (``<name>.<arm>``), validated.

    Raises:
        SpecError: naming ``arms.<arm>`` when the arm makes the spec invalid.
    """
    raw = arm_raw(loaded.raw, arm)
    return LoadedSpec(spec=validate_variant(raw, f"arms.{arm}", loaded.source), raw=raw,
                      source=loaded.source, overrides=loaded.overrides)


def run_arms(loaded: LoadedSpec, locations: Locations, display_for: Any | None = None,
             continue_changed: bool = False) -> list[str]:
    """Run each arm's search (its own Optuna study ``<name>.<arm>``) until its budget is spent.

    Every arm is checked (its device, and its settings against its study's) before any runs.
    Several invocations of the same command share the arms: an arm whose last trials another
    invocation is running is passed over at first, and waited for only once every other arm is
    done (the wait is what lets a trial whose worker died be run again).

    Args:
        display_for: called with an arm's spec to get the progress display for it (or None).
        continue_changed: continue arms whose spec differs from their study's settings.

    Returns:
        The arms this invocation ran in which none of its trials finished while the arm's budget
        is still open (every trial failed): the run failed for them.

    Raises:
        SpecError: when an arm is invalid, cannot run on this machine, or was changed.
    """
    from framework.tuning.study import next_move
    from framework.tuning.study import run_study

    arms = check_arms(loaded, locations, continue_changed)

    def move(arm_spec: LoadedSpec) -> str:
        study = load_if_exists(arm_spec.spec.name, locations.storage)
        return "run" if study is None else next_move(study, arm_spec.spec.search.n_trials)

    failed: dict[str, bool] = {}  # arm -> whether its latest run here finished nothing

    def run(arm_spec: LoadedSpec, wait: bool) -> None:
        display = display_for(arm_spec.spec) if display_for is not None else None
        with display if display is not None else contextlib.nullcontext():
            outcome = run_study(arm_spec, locations, display, continue_changed=continue_changed,
                                wait=wait)
        failed[arm_spec.spec.name] = outcome.nothing_finished(arm_spec.spec.search.n_trials)

    for arm_spec in arms:
        # An arm whose last trials another invocation holds (found here, or once this one has
        # started it: two invocations may start one arm at the same moment) is left for later.
        if move(arm_spec) == "run":
            run(arm_spec, wait=False)
    for arm_spec in arms:  # then wait for those, so that a dead invocation's trial is run again
        if move(arm_spec) != "stop":
            run(arm_spec, wait=True)
    return [name for name, nothing in failed.items() if nothing]


def check_arms(loaded: LoadedSpec, locations: Locations,
               continue_changed: bool = False) -> list[LoadedSpec]:
    """Each arm's spec, once every arm is valid, can run here and matches its study's settings.

    Raises:
        SpecError: when an arm is invalid, cannot run on this machine, or was changed.
    """
    from framework.tuning.study import require_devices

    arms = [arm_loaded(loaded, arm) for arm in loaded.spec.arms]
    for arm_spec in arms:
        require_devices(arm_spec)
        study = load_if_exists(arm_spec.spec.name, locations.storage)
        if study is not None:
            fingerprint.check_continuation(study, arm_spec, continue_changed)
    return arms


def plan_confirmation(loaded: LoadedSpec, storage: str, top: int | None = None,
                      seeds: int | None = None, allow_changed: bool = False) -> Plan:
    """The configurations and seeds to confirm.

    The arms and the baseline are validated first, before the storage is read. A plan stored by
    an earlier invocation wins over ``top`` and ``seeds``, so that running again continues the
    same confirmation instead of mixing two.

    Args:
        allow_changed: confirm even when the spec differs from the settings the search used.

    Raises:
        SpecError: when an arm or the baseline makes the spec invalid, when the study (with
            arms: every arm) has no complete trial, when a device cannot run here, or when the
            spec differs from the search's settings and ``allow_changed`` is false.
    """
    from framework.tuning.study import require_devices

    spec = loaded.spec
    sources = [(arm, arm_loaded(loaded, arm)) for arm in spec.arms] or [(None, loaded)]
    for _, source in sources:
        require_devices(source)
    baseline_arm = next((a for a, s in spec.arms.items() if s.baseline), None)
    baseline: Configuration | None = None
    if baseline_arm is None:
        raw = baseline_raw(loaded.raw, spec.confirm)
        raw.pop("arms", None)
        baseline_spec = validate_variant(raw, "confirm.baseline", loaded.source)
        baseline = Configuration(BASELINE, None, None, {}, _plain(raw),
                                 drops=dropped_units(baseline_spec))
    settings, changed = _search_settings(loaded, [s for _, s in sources], storage, allow_changed)
    stored = _stored_plan(loaded, storage)
    if stored is not None:
        return replace(stored, changed=changed)
    configurations: list[Configuration] = []
    empty: list[str] = []
    used_seeds = {spec.seed}
    for arm, source in sources:
        trials = _complete_trials(source, storage)
        used_seeds |= {int(t.params["seed"]) for t in trials if "seed" in t.params}
        best = _best(trials, source)[:top or spec.confirm.top]
        if not best:
            empty.append(arm or spec.name)
        prefix = f"{arm}/" if arm else ""
        search = source.spec.search
        chosen = {"searched": list(search.space), "trials": len(trials),
                  "sampler": search.sampler.name}
        for rank, trial in enumerate(best, start=1):
            raw = copy.deepcopy(source.raw)
            suggest(FixedTrial(trial.params), search.space, raw)
            drops = dropped_units(validate(raw, loaded.source))
            configurations.append(Configuration(f"{prefix}top{rank}", arm, trial.number,
                                                dict(trial.params), _plain(raw), chosen, drops))
    if not configurations:
        where = f"arms {', '.join(empty)}" if spec.arms else f"study {spec.name!r}"
        raise SpecError(f"{where} has no complete trial to confirm; run the study first "
                        "(dropout-lab run)", source=loaded.source)
    if baseline is not None:
        configurations.append(baseline)
        baseline_label: str | None = BASELINE
    else:
        # The baseline arm's best is the baseline (None when that arm has no finished trial).
        baseline_label = f"{baseline_arm}/top1"
        if not any(c.label == baseline_label for c in configurations):
            baseline_label = None
    return Plan(confirm_name(spec.name), configurations,
                fresh_seeds(seeds or spec.confirm.seeds, used_seeds), empty, baseline_label,
                settings, changed)


def _search_settings(loaded: LoadedSpec, sources: list[LoadedSpec], storage: str,
                     allow_changed: bool
                     ) -> tuple[list[tuple[str, str]], dict[str, fingerprint.Differences]]:
    """Labels of the settings of each search study and of this confirmation, and the changes.

    Raises:
        SpecError: listing the changed keys when a source differs from the settings its search
            study was run with and ``allow_changed`` is false.
    """
    labels: list[tuple[str, str]] = []
    changed: dict[str, fingerprint.Differences] = {}
    for source in sources:
        current = fingerprint.settings(source.spec)
        study = load_if_exists(source.spec.name, storage)
        stored = None if study is None else fingerprint.stored_settings(study)
        labels.append((f"search {source.spec.name!r}",
                       fingerprint.label(current if stored is None else stored)))
        differences = fingerprint.differences(stored, current) if stored is not None else {}
        if differences:
            changed[source.spec.name] = differences
            labels.append((f"confirmation of {source.spec.name!r}",
                           f"{fingerprint.label(current)}; differs from the search in "
                           f"{fingerprint.describe(differences)}"))
    if changed and not allow_changed:
        listed = "; ".join(f"{name}: {fingerprint.describe(d)}" for name, d in changed.items())
        raise SpecError(f"these settings differ from the ones the search used ({listed}), so "
                        "the confirmation would not test what the search found. Confirm with "
                        "the search's settings, or pass --allow-changed to confirm with these "
                        "anyway (the table then labels each study with its settings)",
                        source=loaded.source)
    if not changed:
        labels.append(("confirmation", "the search's settings"))
    return labels, changed


def fresh_seeds(n: int, used: set[int]) -> list[int]:
    """``n`` seeds from :data:`SEED_BASE` on that the search did not use."""
    seeds: list[int] = []
    candidate = SEED_BASE
    while len(seeds) < n:
        if candidate not in used:
            seeds.append(candidate)
        candidate += 1
    return seeds


def run_confirmation(loaded: LoadedSpec, locations: Locations, top: int | None = None,
                     seeds: int | None = None, display: Any | None = None,
                     allow_changed: bool = False) -> ConfirmOutcome:
    """Train every (configuration, seed) pair of the plan that has no complete trial yet.

    Every pair is queued as an Optuna trial with fixed parameters; workers (this process, or
    the same command in other processes) take queued trials until none is left. Pairs whose
    trials failed are queued again by the next invocation.

    Args:
        allow_changed: confirm even when the spec differs from the search's settings (see
            :func:`plan_confirmation`); the difference is tagged on the confirmation run.
    """
    from framework.training.device import default_threads

    study, plan = open_confirmation(loaded, locations, top, seeds, allow_changed)
    tracker = Tracker(locations)
    experiment_id = tracker.experiment_id(loaded.spec.name)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    tags = {"dropout_lab.study": plan.name, "dropout_lab.role": "confirm",
            "dropout_lab.source_study": loaded.spec.name}
    if plan.changed:
        tags["dropout_lab.changed_from_search"] = "; ".join(
            f"{name}: {fingerprint.describe(d, len(d))}" for name, d in plan.changed.items()
        )[:5000]
    parent = tracker.start_run(experiment_id, f"{plan.name}-{stamp}", tags)
    tracker.log_params(parent, {"confirm.seeds": plan.seeds,
                                "confirm.configs": [c.label for c in plan.configurations]})
    tracker.log_text(parent, confirmation_spec(loaded, plan).to_yaml(), "study.yaml")
    objective = _ConfirmObjective(loaded, plan, tracker, experiment_id, parent, display,
                                  default_threads())
    callbacks = [] if display is None else [lambda _study, trial: display.trial_finished(trial)]
    status = "FAILED"
    try:
        while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            fail_stale_trials(study)  # before Optuna's own check, which records no reason
            run_trial(study, objective, callbacks)  # survives its pair being failed elsewhere
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracker.end_run(parent, status)
    return ConfirmOutcome(study, plan, experiment_id, parent)


def open_confirmation(loaded: LoadedSpec, locations: Locations, top: int | None = None,
                      seeds: int | None = None, allow_changed: bool = False
                      ) -> tuple[optuna.Study, Plan]:
    """The confirmation's Optuna study, with its plan stored and every missing pair queued.

    Processes that share a confirmation each call this; one that starts the others calls it
    first, so that they find the pairs queued instead of queuing them twice at the same moment.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan = plan_confirmation(loaded, locations.storage, top, seeds, allow_changed)
    study = optuna.create_study(
        study_name=plan.name,
        storage=make_storage(locations.storage, loaded.spec.search, locations),
        sampler=optuna.samplers.RandomSampler(seed=0), pruner=optuna.pruners.NopPruner(),
        directions=[o.direction for o in loaded.spec.search.objectives], load_if_exists=True,
    )
    name_objectives(study, [o.metric for o in loaded.spec.search.objectives])
    if CONFIGS_ATTR not in study.user_attrs:
        study.set_user_attr("seeds", plan.seeds)
        study.set_user_attr("source_study", loaded.spec.name)
        study.set_user_attr("baseline", plan.baseline_label)
        study.set_user_attr("empty_arms", plan.empty_arms)
        study.set_user_attr(SETTINGS_ATTR, [list(pair) for pair in plan.settings])
        study.set_user_attr(CONFIGS_ATTR, [c.to_json() for c in plan.configurations])
    # Every invocation: `confirm.metrics` and the claims may have grown since (they are not
    # part of the settings).
    study.set_user_attr("objectives", table_metrics(loaded.spec))
    fail_stale_trials(study)  # a dead worker's pair, with the reason, so that it is queued again
    queue_missing(study, plan)
    return study, plan


def table_metrics(spec: StudySpec) -> list[dict[str, str]]:
    """The confirmation table's metrics: the objectives, ``confirm.metrics``, then each
    claim's metric (minimised when the claim wants it lower)."""
    metrics = [o.model_dump() for o in (*spec.search.objectives, *spec.confirm.metrics)]
    for claim in spec.claims:
        if all(m["metric"] != claim.metric for m in metrics):
            direction = "minimize" if claim.direction == "lower" else "maximize"
            metrics.append({"metric": claim.metric, "direction": direction})
    return metrics


def dropped_units(spec: StudySpec) -> list[str]:
    """The kinds of unit a spec's dropout acts on: site kinds, ``recurrent`` (LSTM cells),
    ``layers`` (skipped layers), ``residual branches``; empty when it drops nothing (``none``
    and strategies that only measure, such as MC dropout)."""
    from framework.config.study import model_capabilities
    from framework.config.study import strategy_needs

    offered = model_capabilities(spec.model)
    units: set[str] = set()
    for strategy in spec.dropout:
        needs = strategy_needs(strategy)
        whole = {"recurrent": needs.recurrent_cells, "layers": needs.skip_layers,
                 "residual branches": needs.residual_branches}
        if needs.masks != "none":  # only the kinds the model has sites of
            kinds = set(needs.site_kinds)
            units |= kinds & offered.site_kinds if offered is not None else kinds
        units |= {name for name, present in whole.items() if present}
    return sorted(units)


def queue_missing(study: optuna.Study, plan: Plan) -> int:
    """Queue every (configuration, seed) pair that is not complete, running or queued.

    Seeds are the outer loop, so an interrupted confirmation has every configuration on the
    first seeds. Returns how many pairs were queued.
    """
    taken = set()
    for trial in study.get_trials(deepcopy=False):
        if trial.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING):
            params = trial.system_attrs.get("fixed_params") or trial.params
            taken.add((params.get("config"), params.get("seed")))
    queued = 0
    for seed in plan.seeds:
        for configuration in plan.configurations:
            if (configuration.label, seed) not in taken:
                study.enqueue_trial({"config": configuration.label, "seed": seed})
                queued += 1
    return queued


def results(study: optuna.Study, metrics: list[str]) -> dict[str, dict[str, dict[int, float]]]:
    """``{label: {metric: {seed: value}}}`` from the complete trials of a confirmation study."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        by_metric = out.setdefault(trial.params["config"], {m: {} for m in metrics})
        for metric in metrics:
            if metric in trial.user_attrs:
                by_metric[metric][int(trial.params["seed"])] = float(trial.user_attrs[metric])
    return out


def stored_configurations(study: optuna.Study) -> list[Configuration]:
    return [Configuration.from_json(c) for c in study.user_attrs.get(CONFIGS_ATTR, [])]


def dropout_labels(study: optuna.Study) -> dict[str, str]:
    """Each configuration of confirmation ``study`` by label: its dropout as its spec writes
    it, short (``none``, ``standard (p=0.1)``), for the comparison table."""
    return {c.label: describe_dropout(c.raw) for c in stored_configurations(study)}


def describe_dropout(raw: dict[str, Any]) -> str:
    """The ``dropout`` list of a plain spec in one phrase; ``none`` when it is empty."""
    strategies = raw.get("dropout") or []
    return " + ".join(map(_describe_strategy, strategies)) or "none"


def _describe_strategy(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    settings = ", ".join(f"{key}={_short(value)}" for key, value in entry.items()
                         if key != "name")
    name = str(entry.get("name", "?"))
    return f"{name} ({settings})" if settings else name


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"  # a searched rate has every digit of the sampler's draw
    if isinstance(value, list):
        return f"[{', '.join(map(_short, value))}]"
    return str(value)


def run_name(label: str, seed: int) -> str:
    """The MLflow run name of a confirmation trial: apart from the search's ``trial-<n>`` runs
    of the same experiment (``confirm-top1-seed-1000``, ``confirm-plain/top1-seed-1000``)."""
    return f"confirm-{label}-seed-{seed}"


class NothingQueued(optuna.exceptions.OptunaError):
    """A worker started a trial after the queue of pairs ran empty; it does not train."""


class _ConfirmObjective:
    """Picks the trial's (configuration, seed) from the grid, then trains it as any trial."""

    def __init__(self, loaded: LoadedSpec, plan: Plan, tracker: Tracker, experiment_id: str,
                 parent_run_id: str, display: Any | None, threads: int):
        self.loaded, self.plan, self.tracker, self.threads = loaded, plan, tracker, threads
        self.experiment_id, self.parent_run_id, self.display = (experiment_id, parent_run_id,
                                                                display)
        self.by_label = {c.label: c for c in plan.configurations}

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        if not _queued(trial):
            # Another worker took the last queued pair between our check and this trial.
            trial.set_user_attr("fail_reason", "not run: every pair was taken by other workers")
            raise NothingQueued("every (configuration, seed) pair is taken")
        label = trial.suggest_categorical("config", list(self.by_label))
        seed = trial.suggest_categorical("seed", self.plan.seeds)
        configuration = self.by_label[label]
        raw = copy.deepcopy(configuration.raw)
        raw["seed"] = seed
        raw["name"] = self.plan.name
        # Unset threads are chosen from the free cores, and logged with the trial's params.
        raw["train"] = {**(raw.get("train") or {})}
        raw["train"]["threads"] = raw["train"].get("threads") or self.threads
        # The objective checks the budget against this spec: the budget is the whole grid.
        raw["search"] = {**raw.get("search", {}), "space": {}, "pruner": {"name": "none"},
                         "n_trials": self.plan.n_trials}
        loaded = LoadedSpec(spec=validate(raw, self.loaded.source), raw=raw,
                            source=self.loaded.source, overrides=self.loaded.overrides)
        trial.set_user_attr("config", label)
        if configuration.source_trial is not None:
            trial.set_user_attr("source_trial", configuration.source_trial)
        objective = Objective(loaded, self.tracker, self.experiment_id, self.parent_run_id,
                              self.display, score_test=True, run_name=run_name(label, seed))
        try:
            return objective(trial)
        finally:
            run_id = trial.user_attrs.get("mlflow_run_id")
            if run_id:
                self.tracker.set_tags(run_id, {"dropout_lab.config": label,
                                               "dropout_lab.seed": str(seed),
                                               "dropout_lab.role": "confirm-trial"})


def _queued(trial: optuna.Trial) -> bool:
    """Whether ``trial`` was taken from the queue (it has fixed parameters)."""
    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    return "fixed_params" in frozen.system_attrs


def _stored_plan(loaded: LoadedSpec, storage: str) -> Plan | None:
    study = load_if_exists(confirm_name(loaded.spec.name), storage)
    if study is None:
        return None
    configurations = stored_configurations(study)
    if not configurations:
        return None
    return Plan(study.study_name, configurations, list(study.user_attrs["seeds"]),
                list(study.user_attrs.get("empty_arms", [])), study.user_attrs.get("baseline"))


def _complete_trials(loaded: LoadedSpec, storage: str) -> list[FrozenTrial]:
    study = load_if_exists(loaded.spec.name, storage)
    return [] if study is None else study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _best(trials: list[FrozenTrial], loaded: LoadedSpec) -> list[FrozenTrial]:
    """Trials ranked by the first objective (for several objectives, a trade-off is a choice
    the researcher makes; the first objective is the one the study names first)."""
    sign = 1.0 if loaded.spec.search.objectives[0].direction == "minimize" else -1.0
    return sorted(trials, key=lambda t: (sign * t.values[0], t.number))


def confirmation_spec(loaded: LoadedSpec, plan: Plan) -> LoadedSpec:
    """The confirmation as a study spec (logged with the confirmation run)."""
    raw = copy.deepcopy(loaded.raw)
    raw.pop("arms", None)
    # The claims name arms, and are judged from the study's own spec (``loaded.spec.claims``).
    raw.pop("claims", None)
    raw["name"] = plan.name
    raw["search"] = {**raw.get("search", {}), "n_trials": plan.n_trials, "space": {},
                     "sampler": {"name": "grid"}, "pruner": {"name": "none"}}
    return LoadedSpec(spec=validate_variant(raw, "confirm", loaded.source), raw=raw,
                      source=loaded.source, overrides=loaded.overrides)


def _plain(raw: dict[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy (Optuna user attributes are stored as JSON)."""
    import json

    return json.loads(json.dumps(raw, default=str))

