"""Config schemas of the built-in models (torch-free; the classes load when a model is built)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic import model_validator

from framework.config.base import Section
from framework.registry import models


class ModelSpec(Section):
    """Base of model configs; ``name`` selects the registered model."""

    name: str


class GPTSpec(ModelSpec):
    """A nanoGPT-class decoder: pre-LayerNorm blocks, causal SDPA attention, tied embeddings."""

    name: Literal["gpt"] = "gpt"
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


models.add("gpt", config=GPTSpec, target="framework.models.gpt:GPT")


class EncoderSpec(ModelSpec):
    """A Transformer encoder classifier: pre-LN bidirectional blocks, [CLS] or mean pooling."""

    name: Literal["encoder"] = "encoder"
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


models.add("encoder", config=EncoderSpec, target="framework.models.encoder:Encoder")


class MLPSpec(ModelSpec):
    """A fully connected classifier: hidden dense layers, each followed by a ``hidden`` site."""

    name: Literal["mlp"] = "mlp"
    hidden: list[int] = Field(default_factory=lambda: [256, 256], min_length=1, max_length=32)
    """Width of each hidden layer, input side first (e.g. ``[1000, 1000]`` for MNIST)."""
    activation: Literal["relu", "sigmoid", "tanh", "gelu"] = "relu"
    bias: bool = True

    @model_validator(mode="after")
    def _positive_widths(self) -> MLPSpec:
        if any(width < 1 for width in self.hidden):
            raise ValueError(f"hidden widths must be at least 1, got {self.hidden}")
        return self


models.add("mlp", config=MLPSpec, target="framework.models.mlp:MLP")


class LSTMLMSpec(ModelSpec):
    """A multi-layer LSTM language model (our own LSTM layers), trained with truncated BPTT."""

    name: Literal["lstm_lm"] = "lstm_lm"
    n_layer: int = Field(2, ge=1, le=16)
    n_embd: int = Field(128, ge=1)
    """Embedding width (and the last layer's width when ``tie`` is on)."""
    n_hidden: int = Field(256, ge=1)
    """Width of the LSTM layers (all but the last when ``tie`` is on)."""
    tie: bool = True
    """Share the embedding matrix with the decoder (Press & Wolf 2017)."""
    block_size: int = Field(64, ge=2)
    """Truncated-BPTT window: tokens per training sequence."""


models.add("lstm_lm", config=LSTMLMSpec, target="framework.models.lstm_lm:LSTMLM")
