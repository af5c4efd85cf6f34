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


class SST2Spec(DataSpec):
    """GLUE SST-2 sentence sentiment (bundled), or any train/dev pair of its TSV format."""

    name: Literal["sst2"] = "sst2"
    METRICS: ClassVar[tuple[str, ...]] = ("val_accuracy",)
    train_path: str | None = None
    """Another ``sentence<TAB>label`` file (with a header line) to train on."""
    dev_path: str | None = None
    """Another labelled file of the same format to validate on."""
    min_count: int = Field(2, ge=1)
    """Words seen fewer times in train map to ``<unk>``."""
    max_len: int | None = Field(None, ge=2)
    """Longest sequence in tokens, ``<cls>`` included; default: the model's ``block_size``."""
    train_examples: int | None = Field(None, ge=2)
    """Use only the first this many training sentences (quick tests)."""


datasets.add("sst2", config=SST2Spec, target="framework.data.sst2:SST2")


CLASSIFICATION_METRICS = ("val_accuracy", "val_error", "test_loss", "test_accuracy", "test_error")
"""Final metrics of the image classification datasets (test ones on the best checkpoint)."""


class DigitsSpec(DataSpec):
    """scikit-learn's bundled 8x8 handwritten digits (1797 images), fixed stratified split."""

    name: Literal["digits"] = "digits"
    METRICS: ClassVar[tuple[str, ...]] = CLASSIFICATION_METRICS
    val_fraction: float = Field(0.2, gt=0, lt=0.5)
    """Fraction of all images in the validation split."""
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    """Fraction of all images in the test split (scored once, on the best checkpoint)."""
    split_seed: int = Field(0, ge=0)
    """Seed of the split; fixed, so that every trial (whatever its seed) sees the same split."""


datasets.add("digits", config=DigitsSpec, target="framework.data.digits:Digits")


class MNISTSpec(DataSpec):
    """MNIST from its four IDX files in a folder, downloaded (checksummed) when missing."""

    name: Literal["mnist"] = "mnist"
    METRICS: ClassVar[tuple[str, ...]] = CLASSIFICATION_METRICS
    path: str | None = None
    """Folder of the IDX files (plain or .gz); default ``~/.cache/dropout-lab/mnist``."""
    download: bool = True
    """Fetch missing files from the usual mirrors (each checked by SHA-256)."""
    val_size: int = Field(10_000, ge=1, le=59_999)
    """The last this many training images are the validation split (50k / 10k)."""


datasets.add("mnist", config=MNISTSpec, target="framework.data.mnist:MNIST")


class CharStreamSpec(DataSpec):
    """Tiny Shakespeare characters as contiguous streams, for recurrent LMs (truncated BPTT)."""

    name: Literal["char_stream"] = "char_stream"
    METRICS: ClassVar[tuple[str, ...]] = ("val_bpc", "val_ppl")
    path: str | None = None
    """Another UTF-8 text file to model instead of the bundled Tiny Shakespeare."""
    val_fraction: float = Field(0.1, gt=0, lt=1)
    """The last fraction of the text is the validation split (90/10 as in nanoGPT)."""
    block_size: int | None = Field(None, ge=2)
    """BPTT window; default: the model's ``block_size``."""
    eval_warmup: int = Field(64, ge=0)
    """Tokens that warm up the state before each scored evaluation window (not scored)."""


class WordLMSpec(DataSpec):
    """Word-level corpus as contiguous streams (local folder, or download checked by SHA-256)."""

    METRICS: ClassVar[tuple[str, ...]] = ("val_ppl", "val_bpc", "test_ppl")
    path: str | None = None
    """Folder with the corpus's train/valid/test files; default: download into ``cache``."""
    cache: str = "~/.cache/dropout-lab"
    """Where downloads go (checked against their SHA-256 before use)."""
    block_size: int | None = Field(None, ge=2)
    """BPTT window; default: the model's ``block_size``."""
    eval_warmup: int = Field(0, ge=0)
    """Tokens that warm up the state before each scored evaluation window (not scored)."""


class PTBSpec(WordLMSpec):
    """Penn Treebank, word level, Mikolov's preprocessing (10k words; ptb.{train,valid,test}.txt).
    """

    name: Literal["ptb"] = "ptb"


class WikiText2Spec(WordLMSpec):
    """WikiText-2 (Merity et al. 2016), word level (wiki.{train,valid,test}.tokens)."""

    name: Literal["wikitext2"] = "wikitext2"


datasets.add("char_stream", config=CharStreamSpec, target="framework.data.charstream:CharStream")
datasets.add("ptb", config=PTBSpec, target="framework.data.wordlm:WordLM")
datasets.add("wikitext2", config=WikiText2Spec, target="framework.data.wordlm:WordLM")
