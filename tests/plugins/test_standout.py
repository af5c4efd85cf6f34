import math

import pytest
import torch
import torch.nn.functional as F

from framework.config.sections import TrainSpec
from framework.data.base import Batch
from framework.models.mlp import MLP
from framework.models.specs import MLPSpec
from framework.training.optim import make_optimizer
from plugins.standout import Standout
from plugins.standout import StandoutConfig


def mlp(width: int = 32, layers: int = 2, inputs: int = 10) -> MLP:
    torch.manual_seed(0)
    return MLP(MLPSpec(hidden=[width] * layers), {"input_dim": inputs, "num_classes": 3})


def attached(**config) -> tuple[MLP, Standout]:
    model = mlp(**config.pop("shape", {}))
    strategy = Standout(StandoutConfig(**config))
    strategy.attach(model)
    return model, strategy


def data(n: int = 64, inputs: int = 10) -> Batch:
    generator = torch.Generator().manual_seed(3)
    return Batch(torch.randn(n, inputs, generator=generator),
                 torch.randint(0, 3, (n,), generator=generator))


def first_layer(model: MLP, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-activation z and activation g(z) of the first hidden layer, with no dropout."""
    z = model.layers[0].linear(batch.inputs)
    return z, F.relu(z)


@pytest.mark.parametrize("beta", [1.0, -0.5])
def test_alpha_zero_is_dropout_with_keep_probability_sigmoid_beta(beta: float) -> None:
    model, strategy = attached(alpha=0.0, beta=beta, shape={"width": 512, "layers": 1})
    batch = data(n=400)
    torch.manual_seed(0)
    z, g = first_layer(model, batch)
    out = model.layers[0](batch.inputs)
    active = g > 0
    kept = out[active] != 0
    keep = math.exp(beta) / (1 + math.exp(beta))
    n = int(active.sum())
    assert kept.float().mean().item() == pytest.approx(keep, abs=4 * math.sqrt(keep / n))
    # kept units pass unscaled (not inverted dropout)
    assert torch.allclose(out[active][kept], g[active][kept])
    # the keep rate does not depend on the unit's pre-activation when alpha = 0
    large = z[active] > z[active].median()
    rate_large = kept[large].float().mean().item()
    rate_small = kept[~large].float().mean().item()
    assert abs(rate_large - rate_small) < 8 * math.sqrt(keep / n)
    assert strategy.log_values()["keep/hidden.0"] == pytest.approx(keep, abs=1e-6)


def test_larger_pre_activations_are_kept_more_often_as_sigmoid_predicts() -> None:
    model, _ = attached(alpha=1.0, beta=-1.0, shape={"width": 512, "layers": 1})
    batch = data(n=400)
    torch.manual_seed(0)
    z, g = first_layer(model, batch)
    out = model.layers[0](batch.inputs)
    active = g > 0
    kept = (out[active] != 0).float()
    predicted = torch.sigmoid(z[active] - 1.0).detach()
    edges = torch.quantile(z[active], torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    rates = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        band = (z[active] >= low) & (z[active] <= high)
        rates.append(kept[band].mean().item())
        assert rates[-1] == pytest.approx(predicted[band].mean().item(), abs=0.03)
    assert rates == sorted(rates) and rates[-1] - rates[0] > 0.2


def test_evaluation_uses_the_expectation_and_is_deterministic() -> None:
    model, strategy = attached(alpha=0.7, beta=0.3)
    batch = data()
    model.eval()
    with torch.no_grad():
        first, second = model(batch).logits, model(batch).logits
        z, g = first_layer(model, batch)
        a = torch.sigmoid(0.7 * z + 0.3) * g
        z2 = model.layers[1].linear(a)
        expected = model.head(torch.sigmoid(0.7 * z2 + 0.3) * F.relu(z2))
    assert torch.equal(first, second)
    assert torch.allclose(first, expected, atol=1e-6)
    model.train()
    with torch.no_grad():
        assert not torch.allclose(model(batch).logits, first)
    assert strategy.log_values()  # one training pass was recorded


def test_shift_through_the_weights_adds_beta_times_the_input_sum() -> None:
    model, _ = attached(alpha=0.5, beta=0.02, shift="weights")
    batch = data()
    gate = model.layers[0].drop.op
    z, _ = first_layer(model, batch)
    pi = gate.keep_probability(z, batch.inputs)
    linear = model.layers[0].linear
    # the belief weights alpha W + beta applied to a (gngdb's form): no bias term
    expected = torch.sigmoid(batch.inputs @ (0.5 * linear.weight + 0.02).T)
    assert torch.allclose(pi, expected, atol=1e-6)
    tied = Standout(StandoutConfig(alpha=0.5, beta=0.02))
    other = mlp()
    tied.attach(other)
    assert not torch.allclose(other.layers[0].drop.op.keep_probability(z, batch.inputs), pi)


def test_learnable_alpha_beta_get_gradients_and_reach_the_optimizer() -> None:
    model, _ = attached(learn=True)
    gates = [layer.drop.op for layer in model.layers]
    optimizer_params = {id(p) for group in make_optimizer(model, TrainSpec()).param_groups
                        for p in group["params"]}
    assert all(id(g.alpha) in optimizer_params and id(g.beta) in optimizer_params for g in gates)
    torch.manual_seed(0)
    model.train()(data()).loss.backward()
    for gate in gates:
        assert gate.alpha.grad is not None and gate.alpha.grad.abs() > 0
        assert gate.beta.grad is not None and gate.beta.grad.abs() > 0


def test_fixed_tied_form_adds_no_parameters_and_no_mask_gradient() -> None:
    plain = mlp()
    model, _ = attached(alpha=2.0, beta=0.0)
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in plain.parameters())
    assert set(model.state_dict()) == set(plain.state_dict())
    # With the mask fixed, W's gradient is that of the masked activations only.
    batch = data()
    torch.manual_seed(5)
    model.train()(batch).loss.backward()
    gate = model.layers[0].drop.op
    torch.manual_seed(5)
    z = model.layers[0].linear(batch.inputs)
    keep = torch.sigmoid(2.0 * z.detach())
    mask = (torch.rand_like(keep) < keep).float()
    assert torch.allclose(gate.last_keep, keep)
    grad = model.layers[0].linear.weight.grad.clone()
    model.zero_grad()
    hidden = mask * F.relu(z)
    z2 = model.layers[1].linear(hidden)
    keep2 = torch.sigmoid(2.0 * z2.detach())
    mask2 = (torch.rand_like(keep2) < keep2).float()
    F.cross_entropy(model.head(mask2 * F.relu(z2)), batch.targets).backward()
    assert torch.allclose(model.layers[0].linear.weight.grad, grad, atol=1e-6)


def test_belief_form_starts_tied_and_learns_its_own_weights() -> None:
    model, _ = attached(alpha=0.5, beta=1.0, form="belief")
    tied, _ = attached(alpha=0.5, beta=1.0)
    batch = data()
    model.eval(), tied.eval()
    with torch.no_grad():
        assert torch.allclose(model(batch).logits, tied(batch).logits, atol=1e-5)
    gate = model.layers[0].drop.op
    names = {name for name, _ in model.named_parameters()}
    assert {"layers.0.drop.op.weight", "layers.0.drop.op.bias"} <= names
    assert "layers.0.drop.op._tied" not in str(names)
    torch.manual_seed(0)
    model.train()(batch).loss.backward()
    assert gate.weight.grad is not None and gate.weight.grad.abs().sum() > 0
    assert gate.bias.grad.abs().sum() > 0


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        StandoutConfig(alpha=-1.0)
    with pytest.raises(ValueError, match="form 'belief'"):
        StandoutConfig(form="belief", learn=True)
    with pytest.raises(ValueError, match="Input should be 'pre_activation' or 'weights'"):
        StandoutConfig(shift="bias")


def test_sites_without_a_pre_activation_are_refused() -> None:
    model, _ = attached(sites=["embedding"])
    with pytest.raises(ValueError, match="pre-activation"):
        model(data())
    with pytest.raises(ValueError, match="no `linear`"):
        Standout(StandoutConfig(sites=["embedding"], form="belief")).attach(mlp())


@pytest.mark.slow
def test_digits_study_runs_end_to_end_in_a_short_configuration(locations) -> None:
    from mlflow import MlflowClient
    import optuna

    from framework.config import load_spec
    from framework.tuning.confirm import run_arms
    from tests.conftest import ROOT

    loaded = load_spec(ROOT / "studies" / "standout_digits.yaml", [
        "model.hidden=[64]", "train.max_steps=120", "train.warmup_steps=5", "train.eval_every=40",
        "arms.standout.search.n_trials=1", "arms.standard.search.n_trials=1"])
    run_arms(loaded, locations)  # one trial of each arm: standout, standard dropout, none
    trials = {arm: optuna.load_study(study_name=f"standout_digits.{arm}",
                                     storage=locations.storage).get_trials()
              for arm in ("standout", "standard", "none")}
    for arm_trials in trials.values():
        (trial,) = arm_trials
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert 0.0 <= trial.user_attrs["val_error"] < 0.4  # 10 classes: chance is 0.9
        assert trial.user_attrs["val_error"] == pytest.approx(
            1 - trial.user_attrs["val_accuracy"])
        # The test split is scored by the confirmation only: a search never sees it.
        assert not [key for key in trial.user_attrs if "test_" in key]
    standout = trials["standout"][0]
    run = MlflowClient(locations.tracking_uri).get_run(standout.user_attrs["mlflow_run_id"])
    assert 0.0 < run.data.metrics["keep/hidden.0"] < 1.0
    assert "final/val_error" in run.data.metrics and "final/test_error" not in run.data.metrics
