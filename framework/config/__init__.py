"""The study spec: its schema (pydantic), how it is loaded (OmegaConf) and how it is searched."""

from framework.config.loading import LoadedSpec
from framework.config.loading import load_spec
from framework.config.loading import validate
from framework.config.study import StudySpec


__all__ = ["LoadedSpec", "StudySpec", "load_spec", "validate"]
