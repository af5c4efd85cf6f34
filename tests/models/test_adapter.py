"""The ``module`` adapter: a plain PyTorch model's dropout becomes sites a strategy can drive."""

from __future__ import annotations

from collections.abc import Iterator
import importlib.util
from pathlib import Path
import sys
import textwrap

import pytest
import torch
from torch import nn

from framework import registry
from framework.config import load_spec
from framework.data.base import Batch
from framework.errors import SpecError
from framework.models import adapter_probe
from framework.models.adapter import RateAttributeSite
from framework.models.adapter import adapt_dropout
from framework.models.pruning import keep_layers
from framework.models.pruning import load_checkpoint
from framework.models.sites import StrategyIncompatible
from framework.models.sites import find_sites
from framework.strategies.stack import StrategyStack
from framework.testing.modules import TinyLM
from framework.training.run import run_training
from tests.conftest import invoke


STUDY = """
name: adapted
model:
  name: module
  factory: framework.testing.modules:{factory}
  kwargs: {{n_embd: 16, n_head: 2, n_layer: 3, p: 0.3}}
  layers: {layers}
  block_size: 16
data: {{name: shakespeare_char}}
train: {{max_steps: 2, batch_size: 4, eval_every: 2, eval_batches: 1, warmup_steps: 0}}
dropout: {dropout}
"""


def study(tmp_path: Path, factory: str = "MiniGPT", layers: str = "blocks",
          dropout: str = "[]") -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(textwrap.dedent(STUDY.format(factory=factory, layers=layers,
                                                 dropout=dropout)))
    return path


def build(spec_path: Path) -> tuple[nn.Module, StrategyStack]:
    spec = load_spec(spec_path).spec
    torch.manual_seed(0)
    model = registry.create_model(spec.model, {"vocab_size": 11})
    stack = StrategyStack.from_configs(spec.dropout)
    stack.attach(model, {"train_size": 1000})
    stack.on_step(0, 10)
    return model, stack


def batch() -> Batch:
    inputs = torch.randint(11, (4, 16), generator=torch.Generator().manual_seed(1))
    return Batch(inputs, inputs.roll(-1, dims=1))


def logits(model: nn.Module, train: bool) -> torch.Tensor:
    model.train(train)
    with torch.no_grad():
        return model(batch()).logits


def test_torch_layers_get_sites_of_the_right_kinds() -> None:
    net = TinyLM(vocab_size=11, block_size=16, n_embd=16, n_layer=2, p=0.2)
    found, left_alone = adapt_dropout(net, {})
    kinds = {site.name: (site.kind, site.reached, site.p) for site in found}
    assert kinds["emb_drop"] == ("embedding", "module", 0.2)
    assert kinds["layers.0.self_attn.dropout"] == ("attention", "attribute", 0.2)
    assert kinds["layers.0.dropout1"] == ("residual", "module", 0.2)
    assert kinds["layers.1.dropout"] == ("hidden", "module", 0.2)  # inside the feed-forward
    assert len(found) == 1 + 2 * 4 and left_alone == []
    assert not any(isinstance(m, nn.Dropout) for m in net.modules())


def test_the_specs_rules_come_first_glob_or_regex() -> None:
    net = TinyLM(vocab_size=11, block_size=16, n_embd=16, n_layer=2)
    rules = {"layers.1.*": "output", r"re:^layers\.0\.dropout\d$": "hidden"}
    kinds = {site.name: site.kind for site in adapt_dropout(net, rules)[0]}
    assert kinds["layers.0.dropout1"] == kinds["layers.0.dropout2"] == "hidden"
    assert kinds["layers.0.self_attn.dropout"] == "attention"
    assert {kinds[n] for n in kinds if n.startswith("layers.1.")} == {"output"}


def test_unclaimed_sites_keep_the_models_rate(tmp_path: Path) -> None:
    model, _ = build(study(tmp_path, dropout="[{name: standard, p: 0.0, sites: [attention]}]"))
    rates = {site.where: site.p for site in find_sites(model)}
    assert rates["blocks.0.attn.attn_drop"] == 0.0  # claimed
    assert rates["blocks.0.attn.resid_drop"] == rates["emb_drop"] == 0.3
    assert not torch.equal(logits(model, train=True), logits(model, train=True))


def test_a_claimed_site_changes_the_models_behaviour(tmp_path: Path) -> None:
    off, _ = build(study(tmp_path, dropout="[{name: standard, p: 0.0}]"))
    assert torch.equal(logits(off, train=True), logits(off, train=False))
    on, _ = build(study(tmp_path, dropout="[{name: standard, p: 0.2, sites: [attention]}, "
                                          "{name: none, sites: [embedding, residual]}]"))
    assert not torch.equal(logits(on, train=True), logits(on, train=True))


def test_a_rate_attribute_follows_its_site_and_refuses_an_op(tmp_path: Path) -> None:
    path = study(tmp_path, factory="TinyLM", layers="layers",
                 dropout="[{name: standard, p: 0.0}]")
    model, _ = build(path)
    attention = [s for s in find_sites(model) if isinstance(s, RateAttributeSite)]
    assert [s.where for s in attention] == [f"layers.{i}.self_attn.dropout" for i in range(3)]
    assert torch.equal(logits(model, train=True), logits(model, train=True))
    for site in find_sites(model):
        site.p = 0.5 if site in attention else 0.0
    assert not torch.equal(logits(model, train=True), logits(model, train=True))
    with pytest.raises(StrategyIncompatible, match="can set its rate but not replace"):
        attention[0].op = nn.Identity()


def test_replacing_the_op_of_a_rate_attribute_is_refused_at_validation(tmp_path: Path) -> None:
    path = study(tmp_path, factory="TinyLM", layers="layers",
                 dropout="[{name: concrete, sites: [attention]}]")
    with pytest.raises(SpecError, match="sites are rates its own code reads") as info:
        load_spec(path)
    assert info.value.key == "dropout[0]"


def test_layerdrop_skips_layers_of_the_adapted_stack(tmp_path: Path) -> None:
    model, _ = build(study(tmp_path, dropout="[{name: layerdrop, p: 0.5}]"))
    keys = set(model.state_dict())
    assert model.net.blocks is model.layers and type(model.layers).__name__ == "LayerDropList"
    ran: list[int] = []
    for i, block in enumerate(model.net.blocks):
        block.register_forward_pre_hook(lambda *_, i=i: ran.append(i))
    patterns = set()
    for _ in range(20):
        ran.clear()
        out = model.train()(batch(), need_hidden=True)
        patterns.add(tuple(ran))
        assert out.layer_ids == ran and len(out.hidden_states) == len(ran)
    assert len(patterns) > 1 and any(len(p) < 3 for p in patterns)
    assert set(model.state_dict()) == keys  # the module's own keys: net.blocks.<i>...
    pruned = keep_layers(model, [0, 2])
    assert len(pruned.net.blocks) == 2 and pruned.eval()(batch()).logits.shape == (4, 16, 11)


def test_rdrop_on_an_adapted_model_has_a_nonzero_kl(tmp_path: Path) -> None:
    model, stack = build(study(tmp_path, dropout="[{name: standard, p: 0.1}, "
                                                  "{name: lr_drop, beta: 1.0, gamma: 0}]"))
    terms = stack.compute_loss(model.train(), batch()).terms
    assert terms["kl"] > 0 and terms["hidden"] > 0


@pytest.mark.parametrize(("change", "key", "message"), [
    ({"factory": "no_such_package.models:make"}, "model.factory", "cannot import"),
    ({"factory": "framework.testing.modules:Nothing"}, "model.factory", "has no 'Nothing'"),
    ({"layers": "blocks.attn"}, "model.layers", "blocks has no submodule 'attn'"),
    ({"layers": "emb_drop"}, "model.layers", "must be an nn.ModuleList"),
    ({"kwargs": "{width: 3}"}, "model.kwargs", "unexpected keyword argument 'width'"),
])
def test_a_model_that_cannot_be_adapted_is_refused_naming_the_key(
        tmp_path: Path, change: dict[str, str], key: str, message: str) -> None:
    text = study(tmp_path).read_text()
    for field, value in change.items():
        old = next(line for line in text.splitlines() if line.strip().startswith(f"{field}:"))
        text = text.replace(old, f"  {field}: {value}")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.key == key and message in caught.value.message
    assert str(path) in str(caught.value)


def test_a_hugging_face_model_without_the_extra_names_the_install_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "transformers" else real(name, *args))
    path = tmp_path / "hf.yaml"
    path.write_text("name: hf\nmodel: {name: hf_causal_lm, config: {model_type: gpt2}}\n"
                    "data: {name: shakespeare_char}\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.key == "model" and "pip install -e '.[hf]'" in caught.value.message


OWN_NETS = """
from torch import nn


class Net(nn.Module):
    def __init__(self, vocab, n_in=None, out=None, width=8):
        super().__init__()
        self.emb = None if n_in else nn.Embedding(vocab, width)
        self.inp = nn.Linear(n_in, width) if n_in else None
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(width, out)

    def forward(self, x):
        return self.head(self.drop(self.emb(x) if self.emb is not None else self.inp(x)))


def lm_under_another_name(vocab, out=None):
    return Net(vocab, out=out or vocab)


def lm(vocab_size, out=None):
    return Net(vocab_size, out=out or vocab_size)


def classifier(input_dim, num_classes, out=None):
    return Net(0, n_in=input_dim, out=out or num_classes)
"""
OWN_STUDY = """
name: own
model: {{name: module, factory: "{factory}", kwargs: {kwargs}, block_size: 16}}
data: {{name: {data}}}
train: {{max_steps: 2, batch_size: 4, eval_every: 2, eval_batches: 1, warmup_steps: 0}}
dropout: {dropout}
"""


@pytest.fixture
def own_nets(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The name of a module of factories written into ``tmp_path/models`` (a study's folder),
    unique to the test, forgotten by ``sys.modules`` afterwards."""
    name = f"own_nets_{request.node.name.split('[')[0].removeprefix('test_')[:40]}"
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / f"{name}.py").write_text(OWN_NETS)
    yield name
    sys.modules.pop(name, None)


def own_study(tmp_path: Path, factory: str, kwargs: str = "{}", data: str = "shakespeare_char",
              dropout: str = "[]") -> Path:
    path = tmp_path / "models" / "study.yaml"
    path.write_text(textwrap.dedent(OWN_STUDY.format(factory=factory, kwargs=kwargs, data=data,
                                                     dropout=dropout)))
    return path


def test_a_vocabulary_under_another_name_is_refused_before_anything_exists(
        tmp_path: Path, own_nets: str) -> None:
    study_file = own_study(tmp_path, f"{own_nets}:lm_under_another_name", "{vocab: 50}")
    home = tmp_path / "home"
    result = invoke("run", str(study_file), "--home", str(home))
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(f"error: {study_file}: model.kwargs: ")
    assert "embedding has 50 rows but the data has a vocabulary of 65" in message
    assert "`vocab_size`" in message and "model.kwargs.vocab: 65" in message
    assert not home.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        ["models", "study.yaml", f"{own_nets}.py"]), "nothing may be created"


@pytest.mark.parametrize(("factory", "data", "wanted"), [
    ("lm", "shakespeare_char", "the data's vocabulary of 65"),
    ("classifier", "digits", "the data's 10 classes"),
])
def test_logits_narrower_than_the_task_are_refused_naming_the_argument(
        tmp_path: Path, own_nets: str, factory: str, data: str, wanted: str) -> None:
    load_spec(own_study(tmp_path, f"{own_nets}:{factory}", data=data))  # the right width
    with pytest.raises(SpecError) as caught:
        load_spec(own_study(tmp_path, f"{own_nets}:{factory}", "{out: 3}", data=data))
    assert caught.value.key == "model.kwargs"
    assert f"logits have 3 in their last dimension, but the task needs {wanted}" in str(
        caught.value) and "model.kwargs.out: " in str(caught.value)


def test_a_large_module_is_probed_on_the_meta_device(
        tmp_path: Path, own_nets: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shapes only: the output width, and the embedding that gets the batch's ids as they are."""
    monkeypatch.setattr(adapter_probe, "CPU_MAX_PARAMETERS", 0)
    built_on: list[str] = []
    monkeypatch.setattr(adapter_probe, "call_module", lambda net, call, batch: (
        built_on.append(batch.inputs.device.type), net(batch.inputs))[1])
    with pytest.raises(SpecError, match="embedding has 50 rows"):
        load_spec(own_study(tmp_path, f"{own_nets}:lm_under_another_name", "{vocab: 50}"))
    with pytest.raises(SpecError, match="logits have 3 in their last dimension"):
        load_spec(own_study(tmp_path, f"{own_nets}:lm", "{out: 3}"))
    assert built_on == ["meta", "meta"]


@pytest.mark.parametrize("form", ["{name}:lm", "{name}.py:lm"])
def test_a_factory_next_to_the_study_is_found_from_another_folder(
        tmp_path: Path, own_nets: str, monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path_before = list(sys.path)
    spec = load_spec(own_study(tmp_path, form.format(name=own_nets))).spec
    assert sys.path == path_before  # the study's folder was searched for that import only
    model = registry.create_model(spec.model, {"vocab_size": 65})
    assert model(Batch(torch.zeros(2, 16, dtype=torch.long))).logits.shape == (2, 16, 65)


def test_a_factory_module_that_is_nowhere_says_where_it_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    with pytest.raises(SpecError) as caught:
        load_spec(own_study(tmp_path, "no_such_nets:lm"))
    assert caught.value.key == "model.factory"
    assert f"looked in {tmp_path / 'models'}, the current folder" in caught.value.message


@pytest.mark.parametrize(("dropout", "hint"), [
    ("[{name: layerdrop, p: 0.2}]", "set `model.layers: <dotted path of the model's nn.ModuleList"),
    ("[{name: standout}]", "offers none"),
])
def test_a_refusal_on_an_own_model_says_what_would_make_it_eligible(
        tmp_path: Path, dropout: str, hint: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(study(tmp_path, layers="null", dropout=dropout))
    assert caught.value.key == "dropout[0]" and hint in caught.value.message


@pytest.mark.slow
def test_a_pruned_checkpoint_of_an_adapted_model_loads_at_its_depth(tmp_path: Path) -> None:
    spec = load_spec(study(tmp_path, dropout="[{name: layerdrop, p: 0.3, inference_depth: 2, "
                                             "throughput_repeats: 0}]")).spec
    result = run_training(spec, tmp_path)
    pruned = load_checkpoint(tmp_path / "pruned.pt")
    assert pruned.spec.keep_layers == [0, 1] and len(pruned.net.blocks) == 2  # every_other of 3
    assert torch.equal(pruned(batch()).logits, result.model.eval()(batch()).logits)
