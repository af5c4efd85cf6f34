"""Lower bounds on the memory that training a model takes, from its spec alone (no torch).

``dropout-lab validate`` refuses a model that cannot fit in the machine's memory
(:func:`framework.config.checks.check_memory`); each model spec estimates its own needs with
``memory_estimate`` using the helpers here.
"""

from __future__ import annotations

from dataclasses import dataclass


BYTES_PER_FLOAT = 4
BYTES_PER_PARAMETER = 4 * BYTES_PER_FLOAT
"""float32 weights, their gradients and AdamW's two moments (the training loop's optimizer)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """A lower bound on what training a model takes: parameters and saved activations."""

    parameters: int
    activation_floats: int
    batch: str
    """The batch the activations are for, as a person reads it (``16 x 64 tokens``)."""

    @property
    def parameter_bytes(self) -> int:
        return self.parameters * BYTES_PER_PARAMETER

    @property
    def activation_bytes(self) -> int:
        return self.activation_floats * BYTES_PER_FLOAT

    @property
    def total_bytes(self) -> int:
        return self.parameter_bytes + self.activation_bytes

    def total_bytes_at(self, bytes_per_activation: int) -> int:
        """The bound with activations kept at another precision (2: bf16 autocast on a GPU)."""
        return self.parameter_bytes + self.activation_floats * bytes_per_activation


def transformer(width: int, layers: int, positions: int, vocab: int, batch: int, block: int,
                head: int = 0, logits: int = 0) -> MemoryEstimate:
    """Pre-LN blocks: attention (4 E^2) and a 4x MLP (8 E^2) per layer; each block keeps at
    least ~16 floats per token and channel for the backward pass (norms, q/k/v, attention
    output, the MLP's hidden layer before and after its activation).

    Args:
        head: parameters of an untied output head; logits: floats of the logits (and their
            gradient) per batch.
    """
    parameters = layers * 12 * width * width + (vocab + positions) * width + head
    activations = batch * block * layers * 16 * width + logits
    return MemoryEstimate(parameters, activations, f"{batch} x {block} tokens")


def lstm(inputs: list[int], widths: list[int], embedding: int, head: int, vocab: int,
         batch: int, block: int) -> MemoryEstimate:
    """Four gates per layer; the backward pass keeps ~8 floats per unit and step (gates, cell,
    its tanh, the output), plus the logits and their gradient."""
    parameters = embedding + head + sum(4 * w * (i + w) for i, w in zip(inputs, widths,
                                                                         strict=True))
    activations = batch * block * (8 * sum(widths) + 2 * vocab)
    return MemoryEstimate(parameters, activations, f"{batch} x {block} tokens")


def dense(widths: list[int], batch: int) -> MemoryEstimate:
    """Fully connected layers; each hidden layer keeps its pre-activation and its output."""
    parameters = sum(a * b for a, b in zip(widths, widths[1:], strict=False))
    return MemoryEstimate(parameters, batch * 2 * sum(widths[1:-1]), f"{batch} examples")
