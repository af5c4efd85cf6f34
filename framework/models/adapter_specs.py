"""Config schemas of the adapted models: any ``torch.nn.Module``, and Hugging Face transformers.

Unlike the reference models, what an adapted model offers (its dropout sites, its layer stack) is
only known from the module itself, so validating one of these specs builds the module once, on
the ``meta`` device (no weights; see :func:`framework.models.adapter.survey`): validation imports
torch (and transformers) for these models only. The schemas themselves import neither.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any
from typing import ClassVar
from typing import Literal

from pydantic import Field
from pydantic import PrivateAttr
from pydantic import ValidationInfo
from pydantic import model_validator

from framework.config.errors import KeyedValueError
from framework.contract import ModelCapabilities
from framework.models.specs import ModelSpec
from framework.registry import models
from framework.strategies.base import SiteKind


class AdaptedSpec(ModelSpec):
    """Fields shared by the adapted models: how their dropout and layer stack are found."""

    sites: dict[str, SiteKind] = Field(default_factory=dict)
    """Kind of each dropout site, by qualified name: a glob (``"*.attn.drop"``; ``*`` crosses
    dots) or ``re:`` and a regular expression; the first match wins, then the built-in rules
    (``dropout-lab inspect`` shows the result)."""
    layers: str | None = None
    """Dotted path of the layer stack, an ``nn.ModuleList`` that the forward iterates
    (``encoder.layer``); needed for LayerDrop and the layer-wise terms of LR-Drop."""
    block_size: int = Field(64, ge=2)
    """Longest input in tokens: the data's window or sentence length."""
    keep_layers: list[int] | None = Field(None, min_length=1)
    """0-based layers of the stack that the model keeps once built (a pruned checkpoint of a
    LayerDrop trial records them here); default: all."""
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    """Importable packages the model needs (an optional extra); tests skip it without them."""

    def survey(self) -> Any:
        """What the model offers (:class:`framework.models.adapter.Survey`), from one build
        without weights."""
        raise NotImplementedError


class ModuleSpec(AdaptedSpec):
    """Any torch.nn.Module from a factory; its nn.Dropout become sites (`dropout-lab inspect`)."""

    name: Literal["module"] = "module"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "model": {"name": "module", "factory": "framework.testing.modules:MiniGPT",
                  "kwargs": {"n_embd": 16, "n_head": 2, "n_layer": 2, "p": 0.1},
                  "sites": {"blocks.*.mlp.*": "residual"}, "layers": "blocks",
                  "block_size": 16},
        "data": {"name": "shakespeare_char"}}
    factory: str
    """``package.module:function`` (or ``path/to/file.py:function``) returning the module; the
    module is looked for in the study file's folder, the current folder, then the Python path. The
    factory also gets ``vocab_size``, ``num_classes``, ``input_dim``, ``pad_id`` and
    ``block_size`` when its signature names them and ``kwargs`` does not."""
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the factory."""
    call: Literal["inputs", "inputs_mask", "batch"] = "inputs"
    """What the module's forward gets: the token ids, the ids and the padding mask, or the
    framework's Batch. It returns logits (B, classes) or (B, T, vocab)."""
    _study_folder: Path | None = PrivateAttr(None)

    @property
    def study_folder(self) -> Path | None:
        """The folder of the study file this spec was validated from (the validation context's
        ``study_folder``), where the factory's module may be; None when unknown."""
        return self._study_folder

    def survey(self) -> Any:
        from framework.models.adapter import PLACEHOLDER_FACT
        from framework.models.adapter import build_factory
        from framework.models.adapter import survey

        def build() -> tuple[Any, str | None]:
            facts = {"vocab_size": PLACEHOLDER_FACT, "num_classes": PLACEHOLDER_FACT,
                     "input_dim": PLACEHOLDER_FACT, "pad_id": 0}
            net = build_factory(self.factory, self.kwargs, facts, self.block_size,
                                folder=self.study_folder)
            return net, self.layers

        return survey(self, build)

    def check(self, study: Any) -> None:
        """Refuse a module whose embedding or output does not fit the study's data, from one
        forward pass on a batch shaped like the data's (:mod:`framework.models.adapter_probe`).
        """
        from framework.models.adapter_probe import probe_module

        probe_module(self, study.data)

    def capabilities(self) -> ModelCapabilities:
        # Attention maps would need the module to return them; hidden states come from hooks
        # on the stack's layers.
        return self.survey().capabilities(hidden_states=True, attention_maps=False)

    @model_validator(mode="after")
    def _adaptable(self, info: ValidationInfo) -> ModuleSpec:
        folder = (info.context or {}).get("study_folder")
        self._study_folder = None if folder is None else Path(folder)
        self.capabilities()  # builds it once: a bad factory, path or rule is an error now
        return self


models.add("module", config=ModuleSpec, target="framework.models.adapter:ModuleModel")


class HFSpec(AdaptedSpec):
    """Base of the Hugging Face transformers models (the optional ``hf`` extra)."""

    config: dict[str, Any] | None = None
    """An inline transformers config to train from scratch: ``model_type`` (``bert``, ``gpt2``,
    ``llama``...) and its fields; the vocabulary size, padding id and classes come from the data."""
    pretrained: str | None = None
    """A local folder written by ``save_pretrained`` (model and tokenizer) to fine-tune; nothing
    is downloaded. The data are then encoded with the folder's tokenizer."""
    attention: Literal["sdpa", "eager"] = "sdpa"
    """Attention implementation; eager is used anyway for the steps that need attention maps."""
    REQUIRES: ClassVar[tuple[str, ...]] = ("transformers",)

    @model_validator(mode="before")
    @classmethod
    def _has_transformers(cls, data: Any) -> Any:
        if importlib.util.find_spec("transformers") is None:
            raise KeyedValueError("model", "Hugging Face models need the optional `hf` extra: "
                                  "pip install -e '.[hf]'")
        return data

    @model_validator(mode="after")
    def _one_source(self) -> HFSpec:
        if (self.config is None) == (self.pretrained is None):
            raise KeyedValueError("model.config", "give `config` (train from scratch) or "
                                  "`pretrained` (a local folder), not both and not neither")
        if self.config is not None and not isinstance(self.config.get("model_type"), str):
            raise KeyedValueError("model.config.model_type", "an inline config needs its "
                                  "`model_type` (e.g. bert, gpt2, llama)")
        if self.pretrained is not None:
            self._check_folder(Path(self.pretrained).expanduser())
        self.capabilities()  # builds it once, without weights: a bad config is an error now
        return self

    def _check_folder(self, folder: Path) -> None:
        if not folder.is_dir():
            raise KeyedValueError("model.pretrained", f"{folder} is not a folder (nothing is "
                                  "downloaded: give the folder of a model saved with "
                                  "`save_pretrained`)")
        for needed, what in (("config.json", "model.save_pretrained(folder)"),
                             ("tokenizer_config.json", "tokenizer.save_pretrained(folder)")):
            if not (folder / needed).is_file():
                raise KeyedValueError("model.pretrained", f"{folder} has no {needed}; write it "
                                      f"with {what}")

    def survey(self) -> Any:
        from framework.models.hf import survey_hf

        return survey_hf(self)

    def capabilities(self) -> ModelCapabilities:
        return self.survey().capabilities(hidden_states=True, attention_maps=True,
                                          replaceable_attributes=True)

    def load_tokenizer(self) -> Any | None:
        """The pretrained folder's tokenizer, which the data then use; None from scratch."""
        if self.pretrained is None:
            return None
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(Path(self.pretrained).expanduser(),
                                             local_files_only=True)


TINY_BERT = {"model_type": "bert", "hidden_size": 16, "num_hidden_layers": 2,
             "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 32}


class HFClassifierSpec(HFSpec):
    """A transformers model for sequence classification (BERT-like, GPT-2, Llama, ...)."""

    name: Literal["hf_classifier"] = "hf_classifier"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "model": {"name": "hf_classifier", "config": TINY_BERT, "block_size": 24},
        "data": {"name": "sst2", "train_examples": 500, "val_size": 50}}


class HFCausalLMSpec(HFSpec):
    """A transformers model for causal language modelling (GPT-2, Llama, ...)."""

    name: Literal["hf_causal_lm"] = "hf_causal_lm"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "model": {"name": "hf_causal_lm", "block_size": 16,
                  "config": {"model_type": "gpt2", "n_embd": 16, "n_layer": 2, "n_head": 2,
                             "n_positions": 32}},
        "data": {"name": "shakespeare_char"}}


models.add("hf_classifier", config=HFClassifierSpec,
           target="framework.models.hf:HFClassifier")
models.add("hf_causal_lm", config=HFCausalLMSpec, target="framework.models.hf:HFCausalLM")
