"""The fixed sections of a study spec: training, sampler, pruner, objectives, search."""

from __future__ import annotations

from typing import Annotated
from typing import Literal

from pydantic import Field
from pydantic import ValidationInfo
from pydantic import field_validator
from pydantic import model_validator

from framework.config.base import Section
from framework.config.space import Param


class TrainSpec(Section):
    """The training loop: AdamW, linear warm-up then cosine decay, periodic evaluation."""

    max_steps: int = Field(1000, ge=1)
    """Optimizer steps per trial."""
    batch_size: int = Field(12, ge=1)
    lr: float = Field(1e-3, gt=0)
    """Peak learning rate, reached after the warm-up."""
    min_lr: float | None = Field(None, ge=0)
    """Learning rate at the end of the cosine decay; default lr / 10."""
    warmup_steps: int = Field(
        # A fixed 100 would be half of a 200-step trial; the validated max_steps is in ``data``
        # (declared above), absent only when it failed validation and the spec is refused anyway.
        default_factory=lambda data: min(100, data.get("max_steps", 0) // 10), ge=0)
    """Steps of linear warm-up to ``lr``; default a tenth of ``max_steps``, at most 100."""
    weight_decay: float = Field(0.1, ge=0)
    """Applied to matrices only (not to biases, norms or embeddings' positions)."""
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.99, ge=0, lt=1)
    grad_clip: float = Field(1.0, ge=0)
    """Clip the global gradient norm to this value; 0 disables clipping."""
    eval_every: int = Field(100, ge=1)
    """Evaluate (train and val loss) every this many steps, and after the last step."""
    eval_batches: int = Field(20, ge=1)
    """Batches per evaluation; the same batches every time, so evaluations are comparable."""
    target_val_loss: float | None = Field(None, gt=0)
    """A val loss to reach: the first evaluated step at or below it is the final metric
    ``steps_to_val_loss`` (``max_steps + 1`` when no evaluation reaches it)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto`` uses CUDA when present (with bf16 autocast where supported), else the CPU."""
    threads: int | None = Field(None, ge=1)
    """CPU threads for torch; default: the cores free when a worker starts (the cores it may
    use less the 1-minute load average, at least 1), shared among the local workers. Values
    repeat exactly only at the same thread count: each trial logs the count it used."""
    checkpoints: bool = True
    """Save the training state after every evaluation, so a retried trial resumes from it."""
    keep_last: bool = False
    """Keep the last training state (``checkpoint/last.pt``) in the trial's run once the trial
    has finished; by default it is deleted then, with those of the dead attempts it retried (only
    a retry of a dead trial needs one)."""
    compile: bool = False
    """Compile the model's forward pass with ``torch.compile`` (CPU and CUDA). Dropout rates are
    inputs of the compiled graph, so a schedule compiles it once (twice if the rate reaches 0);
    with LayerDrop, whose set of layers changes every step, the trial trains eagerly and says
    why. On the CPU compiled dropout draws its masks from torch's generator as eager dropout
    does; on a GPU from the compiler's own streams, so values differ from an eager run's."""
    measure_inference: bool = True
    """After training, time inference on the best checkpoint (``inference_tokens_per_sec``: a
    warm-up and 3 timed passes over up to 10 validation batches); false skips it."""


class TPESpec(Section):
    """Optuna's TPE with its own defaults; parallel workers use its constant-liar strategy."""

    name: Literal["tpe"]
    seed: int | None = None
    n_startup_trials: int = Field(10, ge=0)
    """Random trials before TPE starts modelling."""
    multivariate: bool | None = None
    """Model the parameters jointly; default: Optuna's (joint for one objective, independent
    for several)."""
    group: bool = False
    """Model each set of parameters that occur together jointly: for conditional spaces
    (``choice``), whose options have different parameters (needs ``multivariate`` not false)."""

    @model_validator(mode="after")
    def _check(self) -> TPESpec:
        if self.group and self.multivariate is False:
            raise ValueError("`group: true` needs the multivariate TPE; drop `multivariate: false`")
        return self


class RandomSpec(Section):
    name: Literal["random"]
    seed: int | None = None


class GridSpec(Section):
    """Every combination of the space (floats need a ``step``; no ``choice`` parameters)."""

    name: Literal["grid"]
    seed: int | None = None


class CmaEsSpec(Section):
    name: Literal["cmaes"]
    seed: int | None = None


class GPSpec(Section):
    name: Literal["gp"]
    seed: int | None = None


class NSGAIISpec(Section):
    name: Literal["nsgaii"]
    seed: int | None = None
    population_size: int = Field(50, ge=2)


SamplerSpec = Annotated[
    TPESpec | RandomSpec | GridSpec | CmaEsSpec | GPSpec | NSGAIISpec,
    Field(discriminator="name"),
]


class MedianPrunerSpec(Section):
    name: Literal["median"]
    n_startup_trials: int = Field(2, ge=0)
    n_warmup_steps: int = Field(0, ge=0)
    interval_steps: int = Field(1, ge=1)


class HyperbandPrunerSpec(Section):
    name: Literal["hyperband"]
    min_resource: int = Field(1, ge=1)
    reduction_factor: int = Field(3, ge=2)


class SuccessiveHalvingPrunerSpec(Section):
    name: Literal["successive_halving"]
    min_resource: int = Field(1, ge=1)
    reduction_factor: int = Field(4, ge=2)


class PercentilePrunerSpec(Section):
    """Prune a trial worse than this percentile of the others at the same step."""

    name: Literal["percentile"]
    percentile: float = Field(25.0, ge=0, le=100)
    """Keep trials within the best ``percentile`` percent (50 is the median pruner)."""
    n_startup_trials: int = Field(2, ge=0)
    n_warmup_steps: int = Field(0, ge=0)
    interval_steps: int = Field(1, ge=1)


class WilcoxonPrunerSpec(Section):
    """Prune by a Wilcoxon signed-rank test against the best trial, step by step.

    Meant for trials whose steps are instances rather than time: e.g. several seeds or tasks
    each reported as one step."""

    name: Literal["wilcoxon"]
    p_threshold: float = Field(0.1, ge=0, le=1)
    """Prune when the test's p-value (the trial no worse than the best) is below this."""
    n_startup_steps: int = Field(2, ge=0)


class ThresholdPrunerSpec(Section):
    """Prune a trial whose reported value leaves ``[lower, upper]`` (e.g. a diverging loss)."""

    name: Literal["threshold"]
    lower: float | None = None
    upper: float | None = None
    n_warmup_steps: int = Field(0, ge=0)
    interval_steps: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _check(self) -> ThresholdPrunerSpec:
        if self.lower is None and self.upper is None:
            raise ValueError("give `lower`, `upper` or both")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"lower ({self.lower}) must not be greater than upper ({self.upper})")
        return self


class PatientPrunerSpec(Section):
    """Let ``wrapped`` prune only after the trial has not improved for ``patience`` steps."""

    name: Literal["patient"]
    wrapped: PrunerSpec | None = None
    """The pruner to consult; none: prune on lack of improvement alone."""
    patience: int = Field(ge=0)
    """Reported steps without an improvement of more than ``min_delta`` before pruning."""
    min_delta: float = Field(0.0, ge=0)


class NoPrunerSpec(Section):
    name: Literal["none"]


PrunerSpec = Annotated[
    MedianPrunerSpec | HyperbandPrunerSpec | SuccessiveHalvingPrunerSpec | PercentilePrunerSpec
    | WilcoxonPrunerSpec | ThresholdPrunerSpec | PatientPrunerSpec | NoPrunerSpec,
    Field(discriminator="name"),
]
PatientPrunerSpec.model_rebuild()


class Objective(Section):
    """A final metric of a trial and whether to minimise or maximise it."""

    metric: str = "val_loss"
    """``val_*`` metrics are taken at the best checkpoint (lowest val loss)."""
    direction: Literal["minimize", "maximize"] = "minimize"


GRACE_INTERVALS = 2
"""An unset ``search.grace_period`` is this many heartbeat intervals (Optuna's own default)."""


class SearchSpec(Section):
    """The Optuna study: budget, sampler, pruner, objectives and the space to search."""

    n_trials: int = Field(1, ge=1)
    """Total budget of finished trials for the study, across invocations."""
    sampler: SamplerSpec = Field(default_factory=lambda: TPESpec(name="tpe"))
    pruner: PrunerSpec = Field(default_factory=lambda: NoPrunerSpec(name="none"))
    objectives: list[Objective] = Field(default_factory=lambda: [Objective()], min_length=1)
    space: dict[str, Param] = Field(default_factory=dict)
    heartbeat_interval: int = Field(30, ge=1)
    """Seconds between a running trial's heartbeats; a trial silent for longer than the grace
    period (a killed worker) is marked failed by the next worker that looks."""
    grace_period: int | None = Field(None, ge=1)
    """Seconds without a heartbeat before a trial counts as dead; longer than the interval
    (better several); default ``GRACE_INTERVALS`` x the interval."""
    max_retries: int = Field(2, ge=0)
    """How often a trial whose worker died is run again (resuming from its checkpoint)."""
    tracking_timeout: float = Field(600.0, gt=0)
    """Seconds a trial keeps training while the MLflow server is unreachable (metrics are kept
    and sent when it is back) before it fails with that reason."""

    @field_validator("grace_period")
    @classmethod
    def _outlasts_heartbeats(cls, grace_period: int | None, info: ValidationInfo) -> int | None:
        # A grace period within one interval declares a live worker's trial dead between two of
        # its heartbeats. The interval is absent from ``data`` only when it failed validation.
        interval = info.data.get("heartbeat_interval")
        if grace_period is not None and interval is not None and grace_period <= interval:
            raise ValueError(
                f"{grace_period} s is not longer than search.heartbeat_interval ({interval} s): "
                "a grace period must exceed the interval, or a live trial is declared dead "
                "between two of its heartbeats; give several intervals, or leave it unset for "
                f"{GRACE_INTERVALS} x the interval ({GRACE_INTERVALS * interval} s)")
        return grace_period

    @property
    def stale_after(self) -> int:
        """The grace period in force: as written, else ``GRACE_INTERVALS`` heartbeat intervals."""
        return self.grace_period or GRACE_INTERVALS * self.heartbeat_interval

    @model_validator(mode="after")
    def _check(self) -> SearchSpec:
        metrics = [o.metric for o in self.objectives]
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"objectives name a metric twice: {metrics}")
        if self.multi_objective and self.pruner.name != "none":
            raise ValueError("pruning needs a single objective; use `pruner: {name: none}`")
        return self

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1
