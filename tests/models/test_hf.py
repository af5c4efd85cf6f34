"""Hugging Face models (the `hf` extra): tiny configs on the CPU, nothing downloaded.

Every model is built from an inline config, or saved with ``save_pretrained`` into the test's
folder and loaded from there (``HF_HUB_OFFLINE`` is set for the whole suite in conftest).
"""

from __future__ import annotations

from pathlib import Path
import textwrap

import pytest


transformers = pytest.importorskip(
    "transformers", reason="the optional `hf` extra is not installed (pip install -e '.[hf]')")

import torch  # noqa: E402

from framework import registry  # noqa: E402
from framework.config import load_spec  # noqa: E402
from framework.errors import SpecError  # noqa: E402
from framework.models.hf import hf_config  # noqa: E402
from framework.models.sites import find_sites  # noqa: E402
from framework.strategies.stack import StrategyStack  # noqa: E402
from framework.training.run import load_dataset  # noqa: E402
from framework.training.run import run_training  # noqa: E402
from tests.plugins.test_r_drop import labelled_file  # noqa: E402


BERT = ("{name: hf_classifier, block_size: 24, config: {model_type: bert, hidden_size: 16, "
        "num_hidden_layers: 3, num_attention_heads: 2, intermediate_size: 32, "
        "max_position_embeddings: 32}}")
GPT2 = ("{name: hf_causal_lm, block_size: 16, config: {model_type: gpt2, n_embd: 16, "
        "n_layer: 3, n_head: 2, n_positions: 32}}")
LLAMA = ("{name: hf_causal_lm, block_size: 16, config: {model_type: llama, hidden_size: 16, "
         "intermediate_size: 32, num_hidden_layers: 3, num_attention_heads: 2, "
         "num_key_value_heads: 1, max_position_embeddings: 32, attention_dropout: 0.1}}")
SST2 = "{{name: sst2, train_path: {path}, test_path: {path}, val_size: 8, min_count: 1}}"
"""A small labelled file for train (val carved from it) and test (the bundled test split is
scored whole, 872 lines)."""
CHARS = "{name: shakespeare_char}"
WORDS = ["good", "great", "fine", "bad", "awful", "dull", "film", "plot", "the", "a"]
STUDY = """
name: hf
model: {model}
data: {data}
train: {{max_steps: 2, batch_size: 4, eval_every: 2, eval_batches: 1, warmup_steps: 0}}
dropout: {dropout}
"""


def spec_of(tmp_path: Path, model: str, data: str, dropout: str = "[]") -> object:
    if data == SST2:
        data = SST2.format(path=labelled_file(tmp_path, n=24))
    path = tmp_path / "study.yaml"
    path.write_text(textwrap.dedent(STUDY.format(model=model, data=data, dropout=dropout)))
    return load_spec(path).spec


def attached(spec: object) -> tuple[torch.nn.Module, StrategyStack, object]:
    torch.manual_seed(0)
    dataset = load_dataset(spec)
    model = registry.create_model(spec.model, dataset.info)
    stack = StrategyStack.from_configs(spec.dropout)
    stack.attach(model, dataset.info)
    stack.on_step(0, 10)
    return model, stack, dataset.train_batch(4, torch.Generator().manual_seed(0))


def logits(model: torch.nn.Module, batch: object, train: bool) -> torch.Tensor:
    model.train(train)
    with torch.no_grad():
        return model(batch).logits


@pytest.mark.slow
@pytest.mark.parametrize(("model", "data", "stack"), [
    (BERT, SST2, "bert.encoder.layer"),
    (GPT2, CHARS, "transformer.h"),
    (LLAMA, CHARS, "model.layers"),
], ids=["bert", "gpt2", "llama"])
def test_trains_with_a_schedule_rdrop_and_layerdrop(tmp_path: Path, model: str, data: str,
                                                     stack: str) -> None:
    spec = spec_of(tmp_path, model, data, dropout=(
        "[{name: linear_decay, p_start: 0.3}, {name: r_drop, alpha: 1.0}, "
        "{name: layerdrop, p: 0.3, throughput_repeats: 0}]"))
    result = run_training(spec, tmp_path)
    last = result.history[-1]
    assert last["loss/kl"] > 0 and last["rate/attention"] == pytest.approx(0.0)  # decayed
    assert 0 < last["layerdrop/kept_fraction"] <= 1
    assert result.model.stack_path == stack and len(result.model.layers) == 3
    assert {"val_loss_depth_1", "val_loss_half_depth"} <= set(result.final)
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "depth_sweep.csv").is_file()


@pytest.mark.parametrize(("model", "attention"), [
    (BERT.replace("name: hf_classifier,", "name: hf_classifier, attention: eager,"), "eager"),
    (BERT, "sdpa"),
    (LLAMA, "sdpa"),
], ids=["bert-eager", "bert-sdpa", "llama-sdpa"])
def test_attention_dropout_is_reached_eager_and_fused(tmp_path: Path, model: str,
                                                      attention: str) -> None:
    data = SST2 if "classifier" in model else CHARS
    off = spec_of(tmp_path, model, data, "[{name: standard, p: 0.0}]")
    net, _, batch = attached(off)
    assert net.net.config._attn_implementation == attention
    assert torch.equal(logits(net, batch, True), logits(net, batch, False))
    silence = ", {name: none, sites: [embedding, residual, output]}" if data == SST2 else ""
    on = spec_of(tmp_path, model, data, f"[{{name: standard, p: 0.5, sites: [attention]}}"
                 f"{silence}]")
    net, _, batch = attached(on)
    assert {s.p for s in find_sites(net) if s.kind != "attention"} <= {0.0}  # only attention
    assert not torch.equal(logits(net, batch, True), logits(net, batch, True))


def test_lr_drop_takes_attention_maps_with_eager_attention_only_for_that_call(
        tmp_path: Path) -> None:
    spec = spec_of(tmp_path, BERT, SST2, "[{name: standard, p: 0.1}, "
                   "{name: lr_drop, beta: 1.0, gamma: 1.0}]")
    model, stack, batch = attached(spec)
    terms = stack.compute_loss(model.train(), batch).terms
    assert terms["kl"] > 0 and terms["hidden"] > 0 and terms["attention"] > 0
    assert model.net.config._attn_implementation == "sdpa"


def test_an_op_on_attention_runs_through_the_sites_attention(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, GPT2, CHARS, "[{name: none}]")
    model, _, batch = attached(spec)
    reference = logits(model, batch, True)

    class Zero(torch.nn.Module):  # no attention at all: every output position sees no value
        def forward(self, x: torch.Tensor, **context: torch.Tensor) -> torch.Tensor:
            return torch.zeros_like(x)

    for site in model.attention_sites:
        site.op = Zero()
    changed = logits(model, batch, True)
    assert not torch.allclose(changed, reference)
    assert torch.equal(logits(model, batch, False), logits(model, batch, False))
    assert model.net.config._attn_implementation == "sdpa"


def tiny_bert_folder(folder: Path, words: list[str]) -> tuple[object, object]:
    """A BERT classifier and its WordPiece tokenizer, saved into ``folder``."""
    from transformers import BertConfig
    from transformers import BertForSequenceClassification
    from transformers import BertTokenizerFast

    vocab = folder.parent / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    torch.manual_seed(3)
    model = BertForSequenceClassification(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer


def test_fine_tunes_a_saved_folder_with_its_own_tokenizer(tmp_path: Path) -> None:
    saved, tokenizer = tiny_bert_folder(tmp_path / "bert", WORDS)
    model = f"{{name: hf_classifier, block_size: 24, pretrained: {tmp_path / 'bert'}}}"
    spec = spec_of(tmp_path, model, SST2, "[{name: standard, p: 0.1}]")
    net, stack, batch = attached(spec)
    assert torch.equal(net.net.bert.embeddings.word_embeddings.weight,
                       saved.bert.embeddings.word_embeddings.weight)
    assert load_dataset(spec).info["vocab_size"] == len(tokenizer)
    assert (batch.inputs[:, 0] == tokenizer.cls_token_id).all()
    assert torch.isfinite(stack.compute_loss(net.train(), batch).loss)


def test_a_missing_or_incomplete_folder_is_refused_naming_the_key(tmp_path: Path) -> None:
    model = f"{{name: hf_causal_lm, pretrained: {tmp_path / 'nowhere'}}}"
    with pytest.raises(SpecError, match="is not a folder .nothing is downloaded") as caught:
        spec_of(tmp_path, model, CHARS)
    assert caught.value.key == "model.pretrained"
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    model = f"{{name: hf_causal_lm, pretrained: {tmp_path / 'half'}}}"
    with pytest.raises(SpecError, match="has no tokenizer_config.json") as caught:
        spec_of(tmp_path, model, CHARS)


@pytest.mark.parametrize(("model", "key", "hint"), [
    (GPT2.replace("n_layer: 3", "n_layr: 3"), "model.config.n_layr",
     "not a field of GPT2Config; did you mean n_layer?"),
    (GPT2.replace("model_type: gpt2", "model_type: gtp2"), "model.config.model_type",
     "'gtp2' is not a model type of transformers; did you mean gpt2"),
])
def test_a_misspelt_config_field_or_model_type_says_did_you_mean(
        tmp_path: Path, model: str, key: str, hint: str) -> None:
    with pytest.raises(SpecError) as caught:
        spec_of(tmp_path, model, CHARS)
    assert caught.value.key == key and hint in caught.value.message
    assert len(caught.value.message) < 200  # the closest names, not every model type


def test_config_aliases_and_settable_properties_are_fields(tmp_path: Path) -> None:
    """GPT-2's ``hidden_size`` is an alias of ``n_embd``; ``num_labels`` is a property."""
    spec = spec_of(tmp_path, GPT2.replace("n_embd: 16", "hidden_size: 16, num_labels: 3"),
                   CHARS)
    config = hf_config(spec.model, {"vocab_size": 65})
    assert config.n_embd == 16 and config.num_labels == 3
