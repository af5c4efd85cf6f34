"""Config schemas of the built-in datasets (torch-free; loaders import when data is built)."""

from __future__ import annotations

from typing import ClassVar
from typing import Literal

from pydantic import Field

from framework.config.base import Section
from framework.registry import datasets


class DataSpec(Section):
    """Base of dataset configs; ``name`` selects the registered dataset."""

    name: str
    METRICS: ClassVar[tuple[str, ...]] = ()
    """Final metrics this dataset's task adds to the base ones (objectives may name them)."""


class ShakespeareCharSpec(DataSpec):
    """Tiny Shakespeare (char-rnn text) as a character-level language-modelling task."""

    name: Literal["shakespeare_char"] = "shakespeare_char"
    path: str | None = None
    """Another UTF-8 text file to model instead of the bundled Tiny Shakespeare."""
    val_fraction: float = Field(0.1, gt=0, lt=1)
    """The last fraction of the text is the validation split (90/10 as in nanoGPT)."""
    block_size: int | None = Field(None, ge=2)
    """Window length; default: the model's ``block_size``."""


datasets.add("shakespeare_char", config=ShakespeareCharSpec, target="framework.data.text:CharText")
