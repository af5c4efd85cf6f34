"""Shared pydantic base for every section of a study spec."""

from pydantic import BaseModel
from pydantic import ConfigDict


class Section(BaseModel):
    """A part of the spec: unknown keys are errors, values are frozen once validated."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, validate_default=True
    )
