"""Run a study: open (or continue) the Optuna study and optimise until its budget is spent.

``search.n_trials`` is the study's total budget across invocations and workers: finished trials
(complete or pruned) count, and no worker starts a trial once finished + running trials reach
it. Failed trials (an exception, a NaN, Ctrl-C, a killed worker) do not use up the budget and are
recorded with their reason; a killed worker's trial is retried and resumes from its checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
import datetime
import logging
import os
import time
from typing import Any
import warnings

import optuna
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from framework.config import LoadedSpec
from framework.config.paths import flatten
from framework.errors import SpecError
from framework.tracking import Locations
from framework.tracking import Tracker
from framework.tracking.tracker import TrackingUnavailable
from framework.tuning import fingerprint
from framework.tuning.abandoned import OWNER_TAG
from framework.tuning.abandoned import close_abandoned_runs
from framework.tuning.objective import Objective
from framework.tuning.samplers import make_pruner
from framework.tuning.samplers import make_sampler
from framework.tuning.samplers import sampler_seed
from framework.tuning.storage import fail_stale_trials
from framework.tuning.storage import make_storage


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
PARENT_RUN_ATTR = "mlflow_parent_run_id"

_log = logging.getLogger(__name__)


@dataclass
class StudyOutcome:
    study: optuna.Study
    experiment_id: str
    parent_run_id: str
    locations: Locations
    worker_errors: list[int] = field(default_factory=list)
    """Exit codes of local worker processes that failed (e.g. -9 for a killed one)."""
    left_to_others: bool = False
    """This invocation returned without waiting while others held the last trials."""

    def count(self, *states: TrialState) -> int:
        return len(self.study.get_trials(deepcopy=False, states=states))

    def budget_met(self, n_trials: int) -> bool:
        return self.count(*FINISHED) >= n_trials

    def finished_here(self) -> int:
        """Trials of this invocation (nested under its parent run) that finished."""
        return sum(t.user_attrs.get(PARENT_RUN_ATTR) == self.parent_run_id
                   for t in self.study.get_trials(deepcopy=False, states=FINISHED))

    def nothing_finished(self, n_trials: int) -> bool:
        """True when the budget is still open and none of this invocation's trials finished:
        the run failed, whatever its trials' reasons (a study already at its budget did not, nor
        one whose last trials this invocation left to others)."""
        return (not self.budget_met(n_trials) and self.finished_here() == 0
                and not self.left_to_others)


def open_study(loaded: LoadedSpec, locations: Locations, worker: int = 0) -> optuna.Study:
    """The study, created on first use, with a sampler seeded for this invocation and worker.

    The seed mixes the spec's seed with the trials already in the study and ``worker`` (see
    :func:`~framework.tuning.samplers.sampler_seed`): a continued, parallel or restarted run
    draws new parameters instead of repeating the first ones.
    """
    search = loaded.spec.search
    study = optuna.create_study(
        study_name=loaded.spec.name,
        storage=make_storage(locations.storage, search, locations),
        sampler=make_sampler(search),
        pruner=make_pruner(search, loaded.spec.train.max_steps),
        directions=[o.direction for o in search.objectives],
        load_if_exists=True,
    )
    seed = sampler_seed(search.sampler.seed, len(study.get_trials(deepcopy=False)), worker)
    if seed != search.sampler.seed:
        study.sampler = make_sampler(search, seed)
    name_objectives(study, [o.metric for o in search.objectives])
    return study


def name_objectives(study: optuna.Study, metrics: list[str]) -> None:
    """Name the study's values after its objectives' metrics, so that optuna-dashboard, Optuna's
    plots and the report say ``val_loss`` instead of "Objective 0" (written once)."""
    if study.metric_names != metrics:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(metrics)


def require_devices(loaded: LoadedSpec) -> None:
    """Refuse a spec whose ``train.device`` (as written or searched) this machine cannot run.

    Raises:
        SpecError: naming the file and ``train.device``, before any store or trial exists.
    """
    from framework.training.device import device_problem

    devices = {loaded.spec.train.device}
    searched = loaded.spec.search.space.get("train.device")
    devices |= set(getattr(searched, "choices", ()))
    for device in sorted(map(str, devices)):
        problem = device_problem(device)
        if problem:
            raise SpecError(f"{device!r} cannot run here: {problem}; use `auto` (CUDA when "
                            "present, else the CPU) or `cpu`", source=loaded.source,
                            key="train.device")


def with_threads(loaded: LoadedSpec, threads: int | None = None) -> LoadedSpec:
    """``loaded`` with ``train.threads`` set when the spec leaves it unset.

    The count is written into the spec that trials start from, so it is applied by the
    training and logged as the ``train.threads`` param of every trial (values repeat exactly
    only at the same thread count).

    Args:
        threads: the count to use; default: the cores free now (``default_threads``).
    """
    if loaded.spec.train.threads:
        return loaded
    from framework.training.device import default_threads

    count = threads or default_threads()
    raw = {**loaded.raw, "train": {**(loaded.raw.get("train") or {}), "threads": count}}
    train = loaded.spec.train.model_copy(update={"threads": count})
    return replace(loaded, raw=raw, spec=loaded.spec.model_copy(update={"train": train}))


def next_move(study: optuna.Study, n_trials: int) -> str:
    """``"run"`` a trial, ``"wait"`` for others' last trials, or ``"stop"``.

    A worker waits rather than stops while other workers hold the last trials of the budget:
    if one of them dies, its trial is failed by heartbeat and queued again, and someone must run
    it. Dead workers' trials are looked for first.
    """
    fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state in FINISHED for t in trials)
    if finished >= n_trials:
        return "stop"
    if any(t.state == TrialState.WAITING for t in trials):
        return "run"
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return "wait" if finished + running >= n_trials else "run"


def run_study(loaded: LoadedSpec, locations: Locations, display: Any | None = None,
              workers: int = 1, plugin_paths: tuple[str, ...] = (),
              continue_changed: bool = False, gpus: list[str] | None = None,
              wait: bool = True) -> StudyOutcome:
    """Optimise ``loaded`` until ``search.n_trials`` trials have finished.

    With ``workers > 1`` that many worker processes share the study (see ``workers.py``); all
    their trials nest under this invocation's parent run in MLflow.

    Args:
        continue_changed: continue the study even when ``loaded`` differs from the settings it
            was run with (the change is recorded on the study and tagged on the parent run).
        gpus: the GPUs the local workers share out, one each (default: every visible one).
        wait: wait while other invocations hold the last trials of the budget (False: return
            then, so that an invocation of a study with arms can go on to another arm).

    Raises:
        SpecError: before anything is created, when the device cannot run here or the spec
            differs from the study's and ``continue_changed`` is false.
    """
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    require_devices(loaded)
    tracker = Tracker(locations, timeout=loaded.spec.search.tracking_timeout)
    tracker.check_reachable()  # a tracking server that does not answer: stop, creating nothing
    locations.prepare()
    spec = loaded.spec
    study = open_study(loaded, locations)
    # Before any run is created: a changed spec must not start a parent run of the old study.
    changed = fingerprint.check_continuation(study, loaded, continue_changed)
    fingerprint.record(study, loaded, changed)
    _show_finished(display, study, spec.search.n_trials)
    experiment_id = tracker.experiment_id(spec.name)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    tags = {"dropout_lab.study": spec.name, "dropout_lab.role": "study", OWNER_TAG: worker_id()}
    if changed:
        tags["dropout_lab.continued_changed"] = fingerprint.describe(changed, len(changed))[:5000]
    parent = tracker.start_run(experiment_id, f"{spec.name}-{stamp}", tags)
    tracker.log_params(parent, flatten(spec.model_dump(mode="json")))
    tracker.log_text(parent, loaded.to_yaml(), "study.yaml")
    study.set_user_attr("mlflow_experiment_id", experiment_id)
    study.set_user_attr(PARENT_RUN_ATTR, parent)
    study.set_user_attr("objective", spec.search.objectives[0].metric)
    outcome = StudyOutcome(study, experiment_id, parent, locations)
    status = "FAILED"
    try:
        if workers > 1:
            from framework.tuning.workers import run_workers

            outcome.worker_errors = run_workers(loaded, locations, parent, workers, plugin_paths,
                                                gpus)
        else:
            run_worker(loaded, locations, parent, display, tracker=tracker, wait=wait)
            outcome.left_to_others = not wait and next_move(study, spec.search.n_trials) == "wait"
        met = outcome.budget_met(spec.search.n_trials)
        status = "FINISHED" if met or not outcome.worker_errors else "FAILED"
        if outcome.nothing_finished(spec.search.n_trials):
            status = "FAILED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        _end_parent(tracker, parent, outcome, status)
    return outcome


def run_worker(loaded: LoadedSpec, locations: Locations, parent_run_id: str,
               display: Any | None = None, threads: int | None = None,
               worker: int = 0, continue_changed: bool = False,
               tracker: Tracker | None = None, wait: bool = True) -> int:
    """Run trials of the study in this process until the budget is spent; return how many of
    them finished (complete or pruned).

    A worker also stops after as many failed trials as the budget (a spec that cannot train
    would otherwise fail forever, since failures do not use up the budget).

    Args:
        threads: torch threads when ``train.threads`` is unset; default: the cores free now.
        worker: this worker's index (or another number unique among the study's workers),
            mixed into the sampler seed.
        continue_changed: join even if the spec differs from the study's settings.
        tracker: the caller's tracker (``run_study``'s), which then ends what this leaves open.
        wait: wait while others hold the last trials (see ``next_move``); False returns then.

    Raises:
        SpecError: when the device cannot run here, or the spec differs from the study's.
        TrackingUnavailable: when the tracking store does not answer at the start, or a trial
            failed because it stayed unreachable (no further trial is started).
    """
    require_devices(loaded)
    loaded = with_threads(loaded, threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    search = loaded.spec.search
    study = open_study(loaded, locations, worker)
    fingerprint.record(study, loaded, fingerprint.check_continuation(study, loaded,
                                                                      continue_changed))
    own_tracker = tracker is None
    tracker = tracker or Tracker(locations, timeout=search.tracking_timeout)
    experiment_id = tracker.experiment_id(loaded.spec.name)
    fail_stale_trials(study)  # first: a dead worker's trial must not keep its parent open
    close_abandoned_runs(study, tracker, experiment_id)
    objective = Objective(loaded, tracker, experiment_id, parent_run_id, display)
    callbacks = [] if display is None else [lambda _study, trial: display.trial_finished(trial)]
    failures = 0
    while failures < max(3, search.n_trials):
        move = next_move(study, search.n_trials)
        if move == "stop":
            break
        if move == "wait":
            if not wait:
                break
            time.sleep(min(5.0, search.heartbeat_interval))
            continue
        objective.budget_reached = False
        run_trial(study, objective, callbacks)
        if tracker.failure is not None:  # the store stayed away: the next trials would too
            raise tracker.unavailable() if own_tracker else tracker.failure
        failures += objective.last_failed and not objective.budget_reached
    mine = {"worker": worker_id(), PARENT_RUN_ATTR: parent_run_id}
    return sum(all(t.user_attrs.get(k) == v for k, v in mine.items())
               for t in study.get_trials(deepcopy=False, states=FINISHED))


def run_trial(study: optuna.Study, objective: Callable[[optuna.Trial], float | list[float]],
              callbacks: list[Callable[[optuna.Study, FrozenTrial], None]]) -> None:
    """Ask for a trial, run ``objective`` on it while Optuna records its heartbeats, tell how
    it ended and call ``callbacks``; an exception of the objective fails the trial only (as
    ``study.optimize(catch=(Exception,))`` would), Ctrl-C fails it and is raised again.

    Another worker may have failed the trial meanwhile, finding no heartbeat within the grace
    period (a stalled machine or database): ``study.optimize`` then raises "Cannot tell a FAIL
    trial" and would end this worker. Here the result is discarded with one warning line; the
    trial was queued again by the worker that failed it.
    """
    with warnings.catch_warnings():
        # Optuna warns that heartbeats are meant for study.optimize: this runs them as it does.
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed", UserWarning)
        trial = study.ask()
    values: float | list[float] | None = None
    interrupt: KeyboardInterrupt | None = None
    # Optuna's heartbeat thread, started as study.optimize starts it (there is no public form).
    with get_heartbeat_thread(trial._trial_id, study._storage):
        try:
            values, state = objective(trial), TrialState.COMPLETE
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except Exception:  # the objective recorded why on the trial
            state = TrialState.FAIL
        except KeyboardInterrupt as stop:
            state, interrupt = TrialState.FAIL, stop
    if _failed_elsewhere(study, trial):
        _log.warning("trial %d was marked failed by another worker (no heartbeat within the "
                     "grace period); its result is discarded", trial.number)
    else:
        with warnings.catch_warnings():
            # A value Optuna cannot take (NaN) fails the trial: optimize says so only in its log.
            warnings.simplefilter("ignore", UserWarning)
            # skip_if_finished: the trial may still be failed elsewhere since the check above.
            try:
                frozen = study.tell(trial, values, state, skip_if_finished=True)
            except RuntimeError as stop:
                # GridSampler ends a study whose grid is used up with `study.stop()`, which
                # only works inside `study.optimize`. Optuna stores the trial before that
                # raises, and the budget check then ends this worker.
                if "Study.stop" not in str(stop):
                    raise
                frozen = next(t for t in study.get_trials(deepcopy=False)
                              if t.number == trial.number)
        for callback in callbacks:
            callback(study, frozen)
    if interrupt is not None:
        raise interrupt


def _failed_elsewhere(study: optuna.Study, trial: optuna.Trial) -> bool:
    """True when the trial this worker runs is no longer RUNNING in the storage."""
    # One trial's state: the storage (private, as in Optuna's own fail_stale_trials) has it
    # without loading every trial of the study.
    return study._storage.get_trial(trial._trial_id).state != TrialState.RUNNING


def _show_finished(display: Any | None, study: optuna.Study, n_trials: int) -> None:
    """Tell a display that shows the budget how many trials earlier invocations finished."""
    resume = getattr(display, "resume", None)  # the tuning layer's displays need not have it
    if resume is not None:
        resume(len(study.get_trials(deepcopy=False, states=FINISHED)), n_trials)


def worker_id() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def _end_parent(tracker: Tracker, parent: str, outcome: StudyOutcome, status: str) -> None:
    """Log the best value and end the parent run.

    Raises:
        TrackingUnavailable: naming the runs left open, when the store does not answer.
    """
    try:
        _log_best(tracker, parent, outcome)
        tracker.end_run(parent, status)
    except TrackingUnavailable:
        raise tracker.unavailable() from None


def _log_best(tracker: Tracker, parent: str, outcome: StudyOutcome) -> None:
    study = outcome.study
    if study._is_multi_objective() or outcome.count(TrialState.COMPLETE) == 0:
        return
    metric = outcome.study.user_attrs["objective"]
    tracker.log_metrics(parent, {f"best/{metric}": study.best_value,
                                 "best/trial": study.best_trial.number}, step=0)
