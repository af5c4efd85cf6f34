"""Registries of named components: dropout strategies, models and datasets.

A component is registered under a short, stable name together with its pydantic config class, whose
``name`` field must be ``Literal[<that name>]`` so that the YAML tag and the registry key cannot
drift apart. Duplicate names are an error: a silent overwrite would mean a wrong experiment.
"""

from framework.registry._registry import Entry
from framework.registry._registry import Registry
from framework.registry._registry import current_source
from framework.registry.discovery import discover
from framework.registry.discovery import load_plugin_path


strategies: Registry = Registry("strategy")
models: Registry = Registry("model")
datasets: Registry = Registry("dataset")


def register_strategy(name: str, *, config: type):
    """Class decorator: register a :class:`~framework.DropoutStrategy` under ``name``.

    Example::

        @register_strategy("gaussian", config=GaussianConfig)
        class Gaussian(DropoutStrategy): ...
    """

    def decorate(cls: type) -> type:
        from framework.strategies.base import DropoutStrategy

        if not (isinstance(cls, type) and issubclass(cls, DropoutStrategy)):
            raise TypeError(f"@register_strategy({name!r}) must decorate a DropoutStrategy class")
        cls.Config = config
        strategies.add(name, config=config, target=cls)
        return cls

    return decorate


def create_strategy(config):
    """Build the strategy that ``config`` (a validated plugin config) describes."""
    return strategies.get(config.name).load()(config)


def create_model(config, info: dict):
    """Build the model that ``config`` describes, for data described by ``info``."""
    return models.get(config.name).load()(config, info)


def create_dataset(config, model_config):
    """Build the dataset that ``config`` describes (``model_config`` gives e.g. the context)."""
    return datasets.get(config.name).load()(config, model_config)


def list_strategies(pattern: str = "*") -> list[str]:
    """Names of the registered strategies matching a shell-style ``pattern``."""
    discover()
    return strategies.names(pattern)


__all__ = [
    "Entry",
    "Registry",
    "create_dataset",
    "create_model",
    "create_strategy",
    "current_source",
    "datasets",
    "discover",
    "list_strategies",
    "load_plugin_path",
    "models",
    "register_strategy",
    "strategies",
]
