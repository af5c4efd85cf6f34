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
