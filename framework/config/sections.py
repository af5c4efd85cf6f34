"""The fixed sections of a study spec: training, sampler, pruner, objectives, search."""

from __future__ import annotations

from typing import Annotated
from typing import Literal

from pydantic import Field
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
    warmup_steps: int = Field(100, ge=0)
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
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto`` uses CUDA when present (with bf16 autocast where supported), else the CPU."""
    threads: int | None = Field(None, ge=1)
    """CPU threads for torch; default: the machine's cores shared among the local workers."""
    checkpoints: bool = True
    """Save the training state after every evaluation, so a retried trial resumes from it."""


class TPESpec(Section):
    name: Literal["tpe"]
    seed: int | None = None
    n_startup_trials: int = Field(10, ge=0)
    multivariate: bool = False


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


class NoPrunerSpec(Section):
    name: Literal["none"]


PrunerSpec = Annotated[
    MedianPrunerSpec | HyperbandPrunerSpec | SuccessiveHalvingPrunerSpec | NoPrunerSpec,
    Field(discriminator="name"),
]


class Objective(Section):
    """A final metric of a trial and whether to minimise or maximise it."""

    metric: str = "val_loss"
    """``val_*`` metrics are taken at the best checkpoint (lowest val loss)."""
    direction: Literal["minimize", "maximize"] = "minimize"


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
    """Seconds without a heartbeat before a trial counts as dead; default 2 x the interval."""
    max_retries: int = Field(2, ge=0)
    """How often a trial whose worker died is run again (resuming from its checkpoint)."""
    tracking_timeout: float = Field(600.0, gt=0)
    """Seconds a trial keeps training while the MLflow server is unreachable (metrics are kept
    and sent when it is back) before it fails with that reason."""

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
