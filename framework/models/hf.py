"""Hugging Face transformers models (the optional ``hf`` extra) as adapted models.

A model is built with ``from_config`` from an inline config (trained from scratch on the data's
own vocabulary: its size, padding id and classes replace the config's) or with
``from_pretrained`` from a local folder (fine-tuned; the data use the folder's tokenizer). Nothing
is downloaded. The adapter (:mod:`framework.models.adapter`) turns the model's ``nn.Dropout`` into
sites and its ``attention_dropout``-style rates into rate sites, so every kind of dropout a
strategy claims is reached:

* attention dropout: in transformers 5 both the eager and the SDPA attention functions take the
  rate as a number, read from the attention's dropout module (``self.dropout.p`` in BERT,
  ``self.attn_dropout.p`` in GPT-2: the site's ``p``) or attribute (``self.attention_dropout`` in
  Llama: copied from its rate site before each call), so a strategy's rate reaches both. A
  strategy that replaces the dropout operation (``site.op``: concrete dropout...) is reached
  through an attention implementation registered with transformers' ``AttentionInterface``
  (:func:`attention_through_site`), used for the training steps while an attention site has an
  op, as the reference models switch to their explicit attention path;
* hidden states and attention maps for LR-Drop: the model's own ``output_hidden_states`` and
  ``output_attentions``; attention maps need eager attention, which is switched on for the calls
  that ask for them only (``set_attn_implementation``), so other steps keep SDPA;
* the layer stack: found for BERT-like (``encoder.layer``), GPT-2-like (``transformer.h``) and
  Llama-like (``model.layers``) models, or named by ``layers``. These models iterate their stack
  in their forward, so LayerDrop's list skips layers in them directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
import difflib
import inspect
from pathlib import Path
import sys
from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface
from transformers.masking_utils import eager_mask

from framework.models.adapter import AdaptedModel
from framework.models.adapter import AdapterError
from framework.models.adapter import RateAttributeSite
from framework.models.adapter import Survey
from framework.models.adapter import attention_site
from framework.models.adapter import cross_entropy
from framework.models.adapter import survey
from framework.models.base import ModelOutput


KNOWN_STACKS = ("encoder.layer", "transformer.h", "model.layers", "decoder.layers",
                "encoder.layers", "layers", "h", "layer", "blocks")
"""Names of layer stacks, tried in this order as the end of an ``nn.ModuleList``'s name."""

AUTO_CLASSES = {"hf_classifier": "AutoModelForSequenceClassification",
                "hf_causal_lm": "AutoModelForCausalLM"}


SITE_ATTENTION = "dropout_lab_sites"
"""The attention implementation that drops attention probabilities through the sites."""


def attention_through_site(
    module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
    attention_mask: torch.Tensor | None, dropout: float = 0.0, **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager attention whose dropout is the module's attention site (its op, or its rate).

    The architecture's own eager function computes the probabilities (its masking, scaling and
    any softcapping) with its dropout off; the site then drops them, and they are applied to the
    values again, repeated for grouped-query heads as the eager function repeats them.
    """
    eager = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
    site = attention_site(module)
    if eager is None or site is None:
        raise RuntimeError(f"{type(module).__name__} has no eager attention function or no "
                           "attention site: a strategy cannot replace its attention dropout")
    _, probs = eager(module, query, key, value, attention_mask, dropout=0.0, **kwargs)
    probs = site(probs)
    groups = probs.shape[1] // value.shape[1]
    out = torch.matmul(probs.to(value.dtype), value.repeat_interleave(groups, dim=1))
    return out.transpose(1, 2).contiguous(), probs


AttentionInterface.register(SITE_ATTENTION, attention_through_site)
AttentionMaskInterface.register(SITE_ATTENTION, eager_mask)  # the eager functions' masks


def find_stack(net: nn.Module) -> str | None:
    """The qualified name of ``net``'s layer stack, by :data:`KNOWN_STACKS`; None if none."""
    lists = [name for name, module in net.named_modules() if isinstance(module, nn.ModuleList)]
    for known in KNOWN_STACKS:
        for name in lists:
            if name == known or name.endswith(f".{known}"):
                return name
    return None


def check_config_fields(model_type: str, fields: Mapping[str, Any]) -> None:
    """Refuse a ``model_type`` transformers does not know and a field its config class lacks.

    transformers keeps unknown keyword arguments as attributes, so a misspelt field (``n_layr``)
    would otherwise be ignored while the model is built with the default.

    Raises:
        AdapterError: naming ``model.config.model_type`` or the field, with the closest names.
    """
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    known_types = list(CONFIG_MAPPING.keys())
    if model_type not in known_types:
        raise AdapterError("model.config.model_type", f"{model_type!r} is not a model type of "
                           f"transformers{_did_you_mean(model_type, known_types)}")
    config_class = CONFIG_MAPPING[model_type]
    known_fields = config_fields(config_class)
    for name in fields:
        if name not in known_fields:
            raise AdapterError(f"model.config.{name}", f"not a field of {config_class.__name__}"
                               f"{_did_you_mean(name, sorted(known_fields))}")


def config_fields(config_class: type) -> set[str]:
    """The fields a transformers config class takes: its default config's attributes (aliases
    such as ``hidden_size`` for GPT-2's ``n_embd`` included), properties that can be set
    (``num_labels``) and the ``__init__`` parameters of the class and its bases."""
    try:
        fields = set(vars(config_class()))
    except Exception:  # a composite config (encoder-decoder) has no default: its parameters
        fields = set()
    fields |= set(getattr(config_class, "attribute_map", {}))
    for cls in config_class.__mro__:
        fields |= {name for name, value in vars(cls).items()
                   if isinstance(value, property) and value.fset is not None}
        init = vars(cls).get("__init__")
        if init is not None:
            fields |= {name for name, param in inspect.signature(init).parameters.items()
                       if name != "self" and param.kind not in (param.VAR_POSITIONAL,
                                                                param.VAR_KEYWORD)}
    return {name for name in fields if not name.startswith("_")}


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    if not close:
        return ""
    names = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
    return f"; did you mean {names}?"


def hf_config(spec: Any, info: dict[str, Any]) -> Any:
    """The transformers config of ``spec``, with the data's facts where training from scratch.

    Raises:
        AdapterError: naming ``model.config`` for a config transformers refuses.
    """
    from transformers import AutoConfig

    if spec.pretrained is not None:
        config = AutoConfig.from_pretrained(Path(spec.pretrained).expanduser(),
                                            local_files_only=True)
    else:
        fields = dict(spec.config)
        model_type = fields.pop("model_type")
        check_config_fields(model_type, fields)
        try:
            config = AutoConfig.for_model(model_type, **fields)
        except (ValueError, TypeError) as exc:
            raise AdapterError("model.config", str(exc)) from None
        if "vocab_size" in info:
            config.vocab_size = info["vocab_size"]
            for special in ("bos_token_id", "eos_token_id"):  # ids of the config's own vocabulary
                value = getattr(config, special, None)
                if isinstance(value, int) and value >= config.vocab_size:
                    setattr(config, special, None)
    if getattr(config, "pad_token_id", None) is None and "pad_id" in info:
        config.pad_token_id = info["pad_id"]
    if spec.name == "hf_classifier":
        config.num_labels = info.get("num_classes", 2)
    positions = getattr(config, "max_position_embeddings", None) or getattr(
        config, "n_positions", None)
    if positions is not None and spec.block_size > positions:
        raise AdapterError("model.block_size", f"{spec.block_size} tokens exceed the model's "
                           f"{positions} positions")
    return config


def build_hf(spec: Any, info: dict[str, Any], weights: bool = True) -> nn.Module:
    """The transformers model of ``spec`` (``weights=False``: from the config alone)."""
    import transformers

    auto = getattr(transformers, AUTO_CLASSES[spec.name])
    config = hf_config(spec, info)
    if spec.pretrained is None or not weights:
        return auto.from_config(config, attn_implementation=spec.attention)
    net = auto.from_pretrained(Path(spec.pretrained).expanduser(), config=config,
                               attn_implementation=spec.attention, local_files_only=True,
                               ignore_mismatched_sizes=True)  # a new task's head starts afresh
    if info.get("vocab_size", 0) > net.get_input_embeddings().num_embeddings:
        net.resize_token_embeddings(info["vocab_size"])
    return net


def survey_hf(spec: Any) -> Survey:
    """What the model of ``spec`` offers, from its config built on the meta device."""

    def build() -> tuple[nn.Module, str | None]:
        net = build_hf(spec, {"num_classes": 2}, weights=False)
        path = spec.layers or find_stack(net)
        return net, path

    return survey(spec, build)


class HFModel(AdaptedModel):
    """A transformers model behind the framework's interface: ``model(batch) -> ModelOutput``."""

    causal = False

    def __init__(self, spec: Any, info: dict[str, Any]):
        net = build_hf(spec, info)
        super().__init__(spec, net, spec.sites, spec.layers or find_stack(net))
        self.attention_sites = [site for site in map(attention_site, net.modules())
                                if site is not None]
        for site in self.attention_sites:
            if isinstance(site, RateAttributeSite):
                site.op_refused = False  # attention_through_site applies the op

    def forward(self, batch: Any, *, need_hidden: bool = False,
                need_attention: bool = False) -> ModelOutput:
        """Logits and loss of ``batch`` (ids, padding mask, targets), with the hidden states and
        attention maps of the layers that ran when asked for."""
        kwargs: dict[str, Any] = {"use_cache": False} if self.causal else {}
        if not self.causal and batch.targets is not None:
            kwargs["labels"] = batch.targets  # the model's own classification loss
        mask = None if batch.mask is None else batch.mask.long()
        with self._attention(need_attention):
            raw = self.net(input_ids=batch.inputs, attention_mask=mask,
                           output_hidden_states=need_hidden, output_attentions=need_attention,
                           **kwargs)
        out = ModelOutput(logits=raw.logits, loss=raw.loss, n_layers=self.n_layers)
        if need_hidden or need_attention:
            out.layer_ids = self.kept_layers()
        if need_hidden:
            out.hidden_states = list(raw.hidden_states[1:])  # [0] is the embeddings' output
        if need_attention:
            out.attentions = list(raw.attentions)
        for name in ("hidden_states", "attentions"):
            got = len(getattr(out, name))
            if got and got != len(out.layer_ids):
                raise RuntimeError(f"the model returned {got} {name} for the {len(out.layer_ids)} "
                                   f"layers of {self.stack_path} that ran: name its stack with "
                                   "`layers`")
        if self.causal and batch.targets is not None:
            # The data's targets are already the next tokens (the model's own loss would shift).
            out.loss = cross_entropy(raw.logits, batch.targets, batch.mask)
        return out

    @contextmanager
    def _attention(self, need_maps: bool) -> Iterator[None]:
        """The attention implementation for one call: the sites' while an attention site has an
        op in training, eager when maps are asked for, else the configured one."""
        current = self.net.config._attn_implementation
        wanted = current
        if self.training and any(site.op is not None for site in self.attention_sites):
            wanted = SITE_ATTENTION
        elif need_maps:
            wanted = "eager"
        if wanted == current:
            yield
            return
        self.net.set_attn_implementation(wanted)
        try:
            yield
        finally:
            self.net.set_attn_implementation(current)


class HFClassifier(HFModel):
    """``AutoModelForSequenceClassification``: one label per sequence."""


class HFCausalLM(HFModel):
    """``AutoModelForCausalLM``: the next token at every position."""

    causal = True
