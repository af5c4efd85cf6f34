"""Config schemas of the built-in datasets (torch-free; loaders import when data is built)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from typing import ClassVar
from typing import Literal

from pydantic import Field

from framework.config.base import Section
from framework.data.sources import WORD_CORPUS_FILES
from framework.data.sources import TextStats
from framework.data.sources import held_out_cuts
from framework.data.sources import mnist_folder_lacks
from framework.data.sources import text_stats
from framework.errors import SpecError
from framework.registry import datasets


class DataSpec(Section):
    """Base of dataset configs; ``name`` selects the registered dataset."""

    name: str
    METRICS: ClassVar[tuple[str, ...]] = ()
    """Final metrics this dataset's task adds to the base ones (objectives may name them)."""

    def check(self, study: Any) -> None:
        """Refuse now what would fail every trial and is cheap to know without loading the
        data: a file that is not there, a split too short for the model's windows.

        Args:
            study: the whole validated study (model, train), which the data may depend on.

        Raises:
            SpecError: naming the key at fault (``data.path``, ``model.block_size``, ...).
        """

    def info_hint(self) -> dict[str, int]:
        """A lower bound on the facts a model is built from (``vocab_size``, ``input_dim``,
        ``num_classes``) known without loading the data; what is unknown is left out."""
        return {}


class TextDataSpec(DataSpec):
    """Base of the language-modelling datasets, whose training split can be cut short."""

    train_fraction: float = Field(1.0, gt=0, le=1)
    """Train on the first this fraction of the training split only (a data-limited regime, where
    a model over-fits); the validation and test splits stay the same."""


class ShakespeareCharSpec(TextDataSpec):
    """Tiny Shakespeare (char-rnn text) as a character-level language-modelling task."""

    name: Literal["shakespeare_char"] = "shakespeare_char"
    path: str | None = None
    """Another UTF-8 text file to model instead of the bundled Tiny Shakespeare."""
    held_out_fraction: float = Field(0.1, gt=0, lt=1)
    """The last this fraction of the text is held out (90/10 as in nanoGPT): its first half is
    ``val``, its second half ``test`` (so nanoGPT's comparison still holds on the whole held-out
    text)."""
    block_size: int | None = Field(None, ge=2)
    """Window length; default: the model's ``block_size``."""

    def check(self, study: Any) -> None:
        stats = _read_text(self.path)
        _check_windows(self, study, stats, streams=1)

    def info_hint(self) -> dict[str, int]:
        return {"vocab_size": _read_text(self.path).distinct}


datasets.add("shakespeare_char", config=ShakespeareCharSpec, target="framework.data.text:CharText")


class SST2Spec(DataSpec):
    """GLUE SST-2 sentence sentiment (bundled), or any train/test pair of its TSV format; ``val``
    is carved from the training file (see :mod:`framework.data.sst2`)."""

    name: Literal["sst2"] = "sst2"
    METRICS: ClassVar[tuple[str, ...]] = ("val_accuracy", "test_loss", "test_accuracy")
    train_path: str | None = None
    """Another ``sentence<TAB>label`` file (with a header line) to train on; ``val`` is carved
    from it."""
    test_path: str | None = None
    """Another labelled file of the same format to test on (default: GLUE's dev file)."""
    val_size: int = Field(872, ge=1)
    """Root sentences of the training file held out as ``val`` (default: the size of GLUE dev)."""
    split_seed: int = Field(0, ge=0)
    """Seed of the choice of ``val``; fixed, so that every trial sees the same split."""
    min_count: int = Field(2, ge=1)
    """Words seen fewer times in train map to ``<unk>``."""
    max_len: int | None = Field(None, ge=2)
    """Longest sequence in tokens, ``<cls>`` included; default: the model's ``block_size``."""
    train_examples: int | None = Field(None, ge=2)
    """Use only the first this many rows of the training file (quick tests); ``val`` is carved
    from them."""

    def check(self, study: Any) -> None:
        _need_file(self.train_path, "data.train_path")
        _need_file(self.test_path, "data.test_path")

    def info_hint(self) -> dict[str, int]:
        return {"num_classes": 2}


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

    def info_hint(self) -> dict[str, int]:
        return {"input_dim": 64, "num_classes": 10}


datasets.add("digits", config=DigitsSpec, target="framework.data.digits:Digits")


class MNISTSpec(DataSpec):
    """MNIST from its four IDX files in a folder (the default cache is filled by download)."""

    name: Literal["mnist"] = "mnist"
    METRICS: ClassVar[tuple[str, ...]] = CLASSIFICATION_METRICS
    path: str | None = None
    """Folder of the IDX files (plain or .gz), only read: every file must be there. Default:
    ``~/.cache/dropout-lab/mnist``, where missing files are downloaded."""
    download: bool = True
    """Fetch files missing from the default cache from the usual mirrors (each checked by
    SHA-256); never used with ``path``."""
    val_size: int = Field(10_000, ge=1, le=59_999)
    """The last this many training images are the validation split (50k / 10k)."""

    def check(self, study: Any) -> None:
        if self.path:
            problem = mnist_folder_lacks(Path(self.path).expanduser())
            if problem:
                raise SpecError(problem, key="data.path")

    def info_hint(self) -> dict[str, int]:
        return {"input_dim": 28 * 28, "num_classes": 10}


datasets.add("mnist", config=MNISTSpec, target="framework.data.mnist:MNIST")


class CharStreamSpec(TextDataSpec):
    """Tiny Shakespeare characters as contiguous streams, for recurrent LMs (truncated BPTT)."""

    name: Literal["char_stream"] = "char_stream"
    METRICS: ClassVar[tuple[str, ...]] = ("val_bpc", "val_ppl")
    path: str | None = None
    """Another UTF-8 text file to model instead of the bundled Tiny Shakespeare."""
    held_out_fraction: float = Field(0.1, gt=0, lt=1)
    """The last this fraction of the text is held out (90/10 as in nanoGPT): its first half is
    ``val``, its second half ``test`` (so nanoGPT's comparison still holds on the whole held-out
    text)."""
    block_size: int | None = Field(None, ge=2)
    """BPTT window; default: the model's ``block_size``."""
    eval_warmup: int = Field(64, ge=0)
    """Tokens that warm up the state before each scored evaluation window (not scored)."""

    def check(self, study: Any) -> None:
        # Each split is cut into one stream per batch row, and evaluation reads whole windows.
        _check_windows(self, study, _read_text(self.path), streams=study.train.batch_size)

    def info_hint(self) -> dict[str, int]:
        return {"vocab_size": _read_text(self.path).distinct}


class WordLMSpec(TextDataSpec):
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
    VOCAB_SIZE: ClassVar[int] = 0
    """The published corpus's vocabulary (used for memory estimates)."""

    def check(self, study: Any) -> None:
        if self.path is None:
            return
        folder = Path(self.path).expanduser()
        files = WORD_CORPUS_FILES[self.name].values()
        missing = [name for name in files if not (folder / name).is_file()]
        if missing:
            raise SpecError(f"{folder} lacks {', '.join(missing)} (a folder given as "
                            "`data.path` is only read); leave `path` out to download the corpus",
                            key="data.path")

    def info_hint(self) -> dict[str, int]:
        return {"vocab_size": self.VOCAB_SIZE} if self.path is None else {}


class PTBSpec(WordLMSpec):
    """Penn Treebank, word level, Mikolov's preprocessing (10k words; ptb.{train,valid,test}.txt).
    """

    name: Literal["ptb"] = "ptb"
    VOCAB_SIZE: ClassVar[int] = 10_000


class WikiText2Spec(WordLMSpec):
    """WikiText-2 (Merity et al. 2016), word level (wiki.{train,valid,test}.tokens)."""

    name: Literal["wikitext2"] = "wikitext2"
    VOCAB_SIZE: ClassVar[int] = 33_278


datasets.add("char_stream", config=CharStreamSpec, target="framework.data.charstream:CharStream")
datasets.add("ptb", config=PTBSpec, target="framework.data.wordlm:WordLM")
datasets.add("wikitext2", config=WikiText2Spec, target="framework.data.wordlm:WordLM")


def _need_file(path: str | None, key: str) -> None:
    if path is not None and not Path(path).is_file():
        missing = "is not a file" if Path(path).exists() else "does not exist"
        raise SpecError(f"{path} {missing}", key=key)


def _read_text(path: str | None) -> TextStats:
    """The bundled text's or the file's size, or a SpecError naming ``data.path``."""
    _need_file(path, "data.path")
    try:
        return text_stats(path)
    except UnicodeDecodeError:
        raise SpecError(f"{path} is not UTF-8 text", key="data.path") from None
    except OSError as exc:
        raise SpecError(f"{path} cannot be read: {exc.strerror}", key="data.path") from None


def _check_windows(data: Any, study: Any, stats: TextStats, streams: int) -> None:
    """Each split, cut into ``streams`` rows, must hold a window of the block size plus one.

    The splits are measured as the loaders cut them (:func:`held_out_cuts`, then
    ``train_fraction``), in characters. The error names the key that cut a split short: the
    fraction (``train_fraction``; ``held_out_fraction`` when the val and test halves would hold
    the windows at its default), else the block size.
    """
    block = data.block_size or getattr(study.model, "block_size", None)
    if block is None:
        return
    key = "data.block_size" if data.block_size else "model.block_size"
    text = data.path or "the bundled Tiny Shakespeare"

    def too_short(length: int) -> bool:
        return length < block + 2 or length // streams < block + 1

    def halves(fraction: float) -> dict[str, int]:
        n_train, n_val = held_out_cuts(stats.characters, fraction)
        return {"val": n_val - n_train, "test": stats.characters - n_val}

    n_train, _ = held_out_cuts(stats.characters, data.held_out_fraction)
    used = max(1, int(n_train * data.train_fraction))  # as the loaders cut it
    rows = f" cut into {streams} streams (train.batch_size)" if streams > 1 else ""
    if too_short(used):
        if used < n_train:
            raise SpecError(f"the first {data.train_fraction:g} of the train split of {text} "
                            f"has {used:,} characters{rows}, too few for windows of "
                            f"{block}; use a larger fraction", key="data.train_fraction")
        raise SpecError(f"the train split of {text} has {used:,} characters{rows}, too few for "
                        f"windows of {block}; use a smaller block size", key=key)
    held = halves(data.held_out_fraction)
    short = [split for split, length in held.items() if too_short(length)]
    if not short:
        return
    # The val half is never the longer one, so it is short whenever the test half is.
    if short == ["val"]:
        which, half, has = "val split", "first half", f"has {held['val']:,}"
    else:
        which, half = "val and test splits", "halves"
        has = f"have {held['val']:,} and {held['test']:,}"
    default = type(data).model_fields["held_out_fraction"].default
    if not any(too_short(halves(default)[split]) for split in short):
        # At the default fraction they would hold the windows: the fraction cut them short.
        raise SpecError(f"the {which} of {text} (the {half} of its last "
                        f"{data.held_out_fraction:g}) {has} characters{rows}, too few for "
                        f"windows of {block}; hold out a larger fraction",
                        key="data.held_out_fraction")
    raise SpecError(f"the {which} of {text} {has} characters{rows}, too few for windows of "
                    f"{block}; use a smaller block size", key=key)
