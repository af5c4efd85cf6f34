"""A multi-layer LSTM language model trained with truncated backpropagation through time.

Embedding -> LSTM layers -> decoder, as in Zaremba, Sutskever & Vinyals (2014) and the char-rnn
setting (Karpathy 2015); the decoder may share the embedding matrix (Press & Wolf 2017; Inan et
al. 2017), in which case the last layer's width is the embedding width, as in AWD-LSTM (Merity et
al. 2018).

Dropout sites: ``embedding`` (the input vectors), ``hidden`` (between layers), ``recurrent``
(``h_{t-1}`` where it feeds the recurrent product, inside each layer) and ``output`` (before the
decoder). The layers are ``self.layers``. Sites are called with ``time_dim=0`` (time-major
tensors) and the recurrent site with ``step=t``, so ops such as locked dropout know the time axis.

Truncated BPTT: in training, the final ``(h, c)`` of each batch is kept, detached, and starts the
next batch (the datasets yield ``batch_size`` contiguous streams cut into windows in order); it is
dropped when the batch size changes. Evaluation always starts from a zero state and leaves the
training state alone; the datasets warm the state up on a prefix whose targets are ignored.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from framework.models.base import LayeredModel
from framework.models.base import ModelOutput
from framework.models.lstm import LSTMLayer
from framework.models.lstm import State
from framework.models.lstm import input_kept
from framework.models.sites import DropoutSite


class LSTMLM(LayeredModel):
    def __init__(self, spec: Any, info: dict[str, Any]):
        super().__init__()
        self.spec = spec
        self.block_size = spec.block_size
        vocab = info["vocab_size"]
        widths = spec.widths()  # with a tied decoder the last layer has the embedding's width
        sizes = [spec.n_embd, *widths]
        self.tok_emb = nn.Embedding(vocab, spec.n_embd)
        self.emb_drop = DropoutSite("embedding")
        self.layers = nn.ModuleList(LSTMLayer(a, b) for a, b in zip(sizes, sizes[1:], strict=False))
        self.hidden_drops = nn.ModuleList(DropoutSite("hidden") for _ in widths[1:])
        self.out_drop = DropoutSite("output")
        self.decoder = nn.Linear(widths[-1], vocab)
        nn.init.uniform_(self.tok_emb.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if spec.tie:
            self.decoder.weight = self.tok_emb.weight
        else:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        self.state: list[State | None] | None = None
        """Detached final state of the last training batch (truncated BPTT)."""

    def reset_state(self) -> None:
        self.state = None

    def _carried_states(self, batch_size: int) -> list[State | None]:
        """The state each layer starts from: the last training batch's, in training, else none.

        Dropped when the batch size or the depth changed (a new stream, or a pruned copy).
        """
        carried = self.state if self.training else None
        if carried is None or len(carried) != len(self.layers) or any(
                s is not None and s[0].size(0) != batch_size for s in carried):
            return [None] * len(self.layers)
        return list(carried)

    def forward(self, batch: Any, *, need_hidden: bool = False,
                need_attention: bool = False) -> ModelOutput:
        idx = batch.inputs  # (B, T)
        states = self._carried_states(idx.size(0))
        x = self.emb_drop(self.tok_emb(idx.t()), time_dim=0)  # (T, B, E)
        out = ModelOutput(logits=x, n_layers=len(self.layers))
        previous = None  # the last layer that ran: its structured mask shapes x
        for n, layer in self.layers_to_run():
            if n:
                x = self.hidden_drops[n - 1](x, time_dim=0)
            # States are kept per layer index: a layer LayerDrop skips keeps its state.
            x, states[n] = layer(x, states[n], input_kept=input_kept(previous))
            previous = layer
            if need_hidden:
                out.hidden_states.append(x.transpose(0, 1))
                out.layer_ids.append(n)
        if self.training:
            self.state = [None if s is None else (s[0].detach(), s[1].detach()) for s in states]
        out.logits = self.decoder(self.out_drop(x, time_dim=0)).transpose(0, 1)  # (B, T, vocab)
        if batch.targets is not None:
            out.loss = F.cross_entropy(out.logits.reshape(-1, out.logits.size(-1)),
                                       batch.targets.reshape(-1))
        return out

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, new_tokens: int, temperature: float = 1.0
                 ) -> torch.Tensor:
        """Sample ``new_tokens`` continuations of ``idx`` (B, T), one step at a time."""
        was_training = self.training
        self.eval()
        states: list[State | None] = [None] * len(self.layers)
        x_ids = idx
        try:
            for _ in range(new_tokens):
                x = self.tok_emb(x_ids.t())
                for n, layer in enumerate(self.layers):
                    x, states[n] = layer(x, states[n])
                probs = F.softmax(self.decoder(x[-1]) / temperature, dim=-1)
                x_ids = torch.multinomial(probs, 1)
                idx = torch.cat([idx, x_ids], dim=1)
        finally:
            self.train(was_training)
        return idx
