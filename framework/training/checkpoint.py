"""The one door through which checkpoint files are read, and the plain format they are written in.

A checkpoint is a pickle, and unpickling an arbitrary file runs whatever code it names. Every
checkpoint (a trial's ``best.pt``, a pruned copy, a trial's training state ``last.pt``) is
therefore read with ``torch.load(..., weights_only=True)``, which rebuilds only tensors and plain
containers (dict, list, tuple, str, int, float, bool, None) and refuses any other object before
creating it. The files are written so that this suffices: specs as JSON-like dicts, the numpy
random state as a tensor. A file that does not load this way is refused as bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
import warnings

import numpy as np
import torch

from framework.errors import SpecError


NOT_A_CHECKPOINT = "not a dropout-lab checkpoint, or it holds objects that are not allowed"


def load_checkpoint_file(path: Path | str, needs: tuple[str, ...] = ()) -> dict[str, Any]:
    """The contents of the checkpoint at ``path``, tensors on the CPU; nothing in it executes.

    Args:
        needs: keys the checkpoint must have (e.g. ``spec`` and ``model`` for a ``best.pt``).

    Raises:
        SpecError: naming ``path``, when it cannot be read, does not unpickle under
            ``weights_only`` (a foreign pickle, another file format), is not a dict or lacks a
            key of ``needs``.
    """
    try:
        with warnings.catch_warnings():
            # A foreign pickle's protocol makes torch warn before it refuses the file.
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:
        raise SpecError(f"cannot read the checkpoint ({error.strerror or error})",
                        source=str(path)) from None
    except Exception as error:  # any failure to unpickle means the file is not one of ours
        raise SpecError(f"{NOT_A_CHECKPOINT} (refusing to unpickle: {_reason(error)})",
                        source=str(path)) from None
    if not isinstance(loaded, dict):
        raise SpecError(f"{NOT_A_CHECKPOINT} (it holds a {type(loaded).__name__}, not a dict)",
                        source=str(path))
    if missing := [key for key in needs if key not in loaded]:
        raise SpecError(f"{NOT_A_CHECKPOINT} (it has no {', '.join(missing)})", source=str(path))
    return loaded


def _reason(error: Exception) -> str:
    """The unpickler's own one-line reason, without torch's advice to load the file anyway."""
    text = str(error)
    marker = "WeightsUnpickler error:"
    if marker in text:
        detail = text.split(marker, 1)[1].strip().splitlines()[0]
        return detail.split(" Please use", 1)[0].strip().rstrip(".")
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


def save_training_state(state: dict[str, Any], path: Path) -> None:
    """Write a training state (the training loop's ``checkpoint`` callback) in the plain format.

    The loop's state is plain except numpy's random state, whose key array becomes a tensor.
    """
    torch_rng, python_rng, numpy_rng = state["rng"]
    kind, keys, *counters = numpy_rng
    plain_numpy_rng = (kind, torch.from_numpy(keys.astype(np.int64)), *counters)
    torch.save({**state, "rng": (torch_rng, python_rng, plain_numpy_rng)}, path)


def load_training_state(path: Path | str) -> dict[str, Any]:
    """A training state written by :func:`save_training_state`, ready to resume from.

    Raises:
        SpecError: as :func:`load_checkpoint_file`.
    """
    state = load_checkpoint_file(path, needs=("step", "model", "rng"))
    try:
        torch_rng, python_rng, (kind, keys, *counters) = state["rng"]
        numpy_rng = (kind, keys.numpy().astype(np.uint32), *counters)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise SpecError(f"{NOT_A_CHECKPOINT} (no training state)", source=str(path)) from None
    return {**state, "rng": (torch_rng, python_rng, numpy_rng)}
