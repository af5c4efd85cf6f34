"""MLflow tracking: one experiment per study, a parent run per invocation, a child run per trial.

The project owns this layer (optuna-integration's ``MLflowCallback`` is deprecated and makes no
parent run). Everything goes through ``MlflowClient`` with explicit run ids, never the fluent
"active run" global, so trials started in other processes nest under the same parent.
"""

from framework.tracking.store import Locations
from framework.tracking.tracker import Tracker


__all__ = ["Locations", "Tracker"]
