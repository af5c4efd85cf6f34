"""Config schemas of the built-in models (torch-free; the classes load when a model is built)."""

from __future__ import annotations

from typing import Any
from typing import ClassVar
from typing import Literal

from pydantic import Field
from pydantic import model_validator

from framework.config.base import Section
from framework.contract import ModelCapabilities
from framework.models import memory
from framework.registry import models


class ModelSpec(Section):
    """Base of model configs; ``name`` selects the registered model."""

    name: str
    EXAMPLE: ClassVar[dict[str, Any] | None] = None
    """The ``model`` and ``data`` sections of the smallest study of this model: the registry-wide
    contract test trains every strategy on it (a model without one is skipped there)."""

    def capabilities(self) -> ModelCapabilities | None:
        """What the model built from this spec offers to strategies (see
        :mod:`framework.contract`); None (the default) declares nothing, and strategies are then
        checked only when they attach."""
        return None

    def memory_estimate(self, info: dict[str, int], batch_size: int, block: int
                        ) -> memory.MemoryEstimate | None:
        """A lower bound on training memory for a batch (``info``: what the data config knows
        without loading, e.g. ``vocab_size``); None (the default): not checked at validation."""
        return None


TRANSFORMER_SITES = frozenset({"embedding", "attention", "residual"})


def width_changes(widths_in: list[int], widths_out: list[int]) -> frozenset[int]:
    """Layers whose output width differs from their input width: they can never be skipped."""
    return frozenset(i for i, (a, b) in enumerate(zip(widths_in, widths_out, strict=True))
                     if a != b)


class GPTSpec(ModelSpec):
    """A nanoGPT-class decoder: pre-LayerNorm blocks, causal SDPA attention, tied embeddings."""

    name: Literal["gpt"] = "gpt"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "model": {"name": "gpt", "n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": 16},
        "data": {"name": "shakespeare_char"}}
    n_layer: int = Field(4, ge=1, le=96)
    n_head: int = Field(4, ge=1)
    n_embd: int = Field(128, ge=1)
    block_size: int = Field(64, ge=2)
    """Context length in tokens."""
    bias: bool = False
    """Biases in Linear and LayerNorm layers."""

    @model_validator(mode="after")
    def _heads_divide_width(self) -> GPTSpec:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        return self

    def capabilities(self) -> ModelCapabilities:
        return ModelCapabilities(site_kinds=TRANSFORMER_SITES, n_layers=self.n_layer,
                                 hidden_states=True, attention_maps=True,
                                 residual_branches=True)

    def memory_estimate(self, info: dict[str, int], batch_size: int, block: int
                        ) -> memory.MemoryEstimate:
        vocab = info.get("vocab_size", 0)  # the head is the tied embedding
        return memory.transformer(self.n_embd, self.n_layer, self.block_size, vocab, batch_size,
                                  block, logits=2 * batch_size * block * vocab)


models.add("gpt", config=GPTSpec, target="framework.models.gpt:GPT")


class EncoderSpec(ModelSpec):
    """A Transformer encoder classifier: pre-LN bidirectional blocks, [CLS] or mean pooling."""

    name: Literal["encoder"] = "encoder"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "model": {"name": "encoder", "n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": 24},
        "data": {"name": "sst2", "train_examples": 500, "val_size": 50}}
    n_layer: int = Field(4, ge=1, le=96)
    n_head: int = Field(4, ge=1)
    n_embd: int = Field(128, ge=1)
    block_size: int = Field(64, ge=2)
    """Longest input in tokens (positions), ``<cls>`` included."""
    bias: bool = False
    """Biases in Linear and LayerNorm layers (the classifier head always has one)."""
    pooling: Literal["cls", "mean"] = "cls"
    """Classify from the first token's state ([CLS]) or the mean over real tokens."""

    @model_validator(mode="after")
    def _heads_divide_width(self) -> EncoderSpec:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        return self

    def capabilities(self) -> ModelCapabilities:
        return ModelCapabilities(site_kinds=TRANSFORMER_SITES | {"output"},
                                 n_layers=self.n_layer, hidden_states=True, attention_maps=True,
                                 residual_branches=True)

    def memory_estimate(self, info: dict[str, int], batch_size: int, block: int
                        ) -> memory.MemoryEstimate:
        return memory.transformer(self.n_embd, self.n_layer, self.block_size,
                                  info.get("vocab_size", 0), batch_size, block,
                                  head=self.n_embd * info.get("num_classes", 0))


models.add("encoder", config=EncoderSpec, target="framework.models.encoder:Encoder")


class MLPSpec(ModelSpec):
    """A fully connected classifier: hidden dense layers, each followed by a ``hidden`` site."""

    name: Literal["mlp"] = "mlp"
    EXAMPLE: ClassVar[dict[str, Any]] = {"model": {"name": "mlp", "hidden": [16, 16]},
                                         "data": {"name": "digits"}}
    hidden: list[int] = Field(default_factory=lambda: [256, 256], min_length=1, max_length=32)
    """Width of each hidden layer, input side first (e.g. ``[1000, 1000]`` for MNIST)."""
    activation: Literal["relu", "sigmoid", "tanh", "gelu"] = "relu"
    bias: bool = True

    @model_validator(mode="after")
    def _positive_widths(self) -> MLPSpec:
        if any(width < 1 for width in self.hidden):
            raise ValueError(f"hidden widths must be at least 1, got {self.hidden}")
        return self

    def capabilities(self) -> ModelCapabilities:
        # Layer 0 maps the input, whose width the data decides (0 here: unknown), to hidden[0].
        fixed = width_changes([0, *self.hidden[:-1]], self.hidden)
        return ModelCapabilities(
            site_kinds=frozenset({"embedding", "hidden"}),
            pre_activation_kinds=frozenset({"hidden"}), n_layers=len(self.hidden),
            fixed_layers=fixed,
            fixed_reason=f"a layer can be skipped only where its input and output widths are "
                         f"equal; the first maps the input to {self.hidden[0]} units and the "
                         f"hidden widths are {self.hidden}",
            hidden_states=True)

    def memory_estimate(self, info: dict[str, int], batch_size: int, block: int
                        ) -> memory.MemoryEstimate:
        return memory.dense([info.get("input_dim", 0), *self.hidden,
                             info.get("num_classes", 0)], batch_size)


models.add("mlp", config=MLPSpec, target="framework.models.mlp:MLP")


class LSTMLMSpec(ModelSpec):
    """A multi-layer LSTM language model (our own LSTM layers), trained with truncated BPTT."""

    name: Literal["lstm_lm"] = "lstm_lm"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "model": {"name": "lstm_lm", "n_layer": 2, "n_embd": 16, "n_hidden": 16,
                  "block_size": 16},
        "data": {"name": "shakespeare_char"}}
    n_layer: int = Field(2, ge=1, le=16)
    n_embd: int = Field(128, ge=1)
    """Embedding width (and the last layer's width when ``tie`` is on)."""
    n_hidden: int = Field(256, ge=1)
    """Width of the LSTM layers (all but the last when ``tie`` is on)."""
    tie: bool = True
    """Share the embedding matrix with the decoder (Press & Wolf 2017)."""
    block_size: int = Field(64, ge=2)
    """Truncated-BPTT window: tokens per training sequence."""

    def widths(self) -> list[int]:
        """Output width of each layer (the last is ``n_embd`` when the decoder is tied)."""
        widths = [self.n_hidden] * self.n_layer
        if self.tie:
            widths[-1] = self.n_embd
        return widths

    def capabilities(self) -> ModelCapabilities:
        widths = self.widths()
        kinds = {"embedding", "recurrent", "output"} | ({"hidden"} if self.n_layer > 1 else set())
        return ModelCapabilities(
            site_kinds=frozenset(kinds), n_layers=self.n_layer,
            fixed_layers=width_changes([self.n_embd, *widths[:-1]], widths),
            fixed_reason=f"a layer can be skipped only where its input and output widths are "
                         f"equal (n_embd {self.n_embd}, n_hidden {self.n_hidden}, tie "
                         f"{self.tie}); set n_hidden equal to n_embd to make every layer "
                         f"skippable",
            hidden_states=True, recurrent_cells=True)

    def memory_estimate(self, info: dict[str, int], batch_size: int, block: int
                        ) -> memory.MemoryEstimate:
        widths, vocab = self.widths(), info.get("vocab_size", 0)
        return memory.lstm([self.n_embd, *widths[:-1]], widths, vocab * self.n_embd,
                           0 if self.tie else widths[-1] * vocab, vocab, batch_size, block)


models.add("lstm_lm", config=LSTMLMSpec, target="framework.models.lstm_lm:LSTMLM")
