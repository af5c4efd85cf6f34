import pytest
import torch

from framework.data.base import Batch
from framework.models.encoder import Encoder
from framework.models.sites import find_sites
from framework.models.specs import EncoderSpec


def tiny_encoder(**overrides) -> Encoder:
    torch.manual_seed(0)
    spec = EncoderSpec(**{"n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": 12, **overrides})
    return Encoder(spec, {"vocab_size": 20, "num_classes": 3})


def padded_batch() -> Batch:
    inputs = torch.tensor([[2, 5, 6, 7, 8, 0, 0], [2, 9, 4, 0, 0, 0, 0]])
    return Batch(inputs, torch.tensor([0, 2]), inputs != 0)


def test_shapes_and_per_layer_outputs_on_request() -> None:
    model = tiny_encoder()
    out = model(padded_batch(), need_hidden=True, need_attention=True)
    assert out.logits.shape == (2, 3) and out.loss.ndim == 0
    assert len(out.hidden_states) == 2 and out.hidden_states[1].shape == (2, 7, 16)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (2, 2, 7, 7)
    rows = out.attentions[0].sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows))
    assert torch.all(out.attentions[1][1, :, :, 3:] == 0), "pads must get no attention"
    plain = model(padded_batch())
    assert plain.hidden_states == [] and plain.attentions == []


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_more_padding_changes_nothing(pooling: str) -> None:
    model = tiny_encoder(pooling=pooling).eval()
    batch = padded_batch()
    longer = torch.cat([batch.inputs, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    more = Batch(longer, batch.targets, longer != 0)
    assert torch.allclose(model(batch).logits, model(more).logits, atol=1e-5)


def test_explicit_attention_path_matches_sdpa() -> None:
    model = tiny_encoder().eval()
    fused = model(padded_batch()).logits
    explicit = model(padded_batch(), need_attention=True).logits
    assert torch.allclose(fused, explicit, atol=1e-5)


def test_attention_is_bidirectional() -> None:
    model = tiny_encoder().eval()
    out = model(padded_batch(), need_attention=True)
    assert out.attentions[0][0, :, 0, 1:5].min() > 0, "the first token sees later tokens"


def test_declares_sites_of_each_kind_and_its_layer_stack() -> None:
    model = tiny_encoder()
    kinds = [site.kind for site in find_sites(model)]
    assert kinds.count("embedding") == 1 and kinds.count("output") == 1
    assert kinds.count("attention") == 2 and kinds.count("residual") == 4
    assert model.layer_stack() is model.layers and len(model.layers) == 2


def test_rejects_sequences_longer_than_block_size() -> None:
    with pytest.raises(ValueError, match="block_size 4"):
        tiny_encoder(block_size=4)(padded_batch())
