"""Built-in dropout strategies, one module each; importing a module registers it.

To add a built-in, write ``plugins/<name>.py`` and add its import here.
"""

from plugins import concrete
from plugins import cosine
from plugins import curriculum
from plugins import early
from plugins import exp_decay
from plugins import late
from plugins import layerdrop
from plugins import linear_decay
from plugins import locked
from plugins import lr_drop
from plugins import mc_dropout
from plugins import none
from plugins import r_drop
from plugins import standard
from plugins import standout
from plugins import step
from plugins import stochastic_depth
from plugins import structured_rnn
from plugins import val_loss_adaptive
from plugins import weight_drop


__all__ = [
    "concrete",
    "cosine",
    "curriculum",
    "early",
    "exp_decay",
    "late",
    "layerdrop",
    "linear_decay",
    "locked",
    "lr_drop",
    "mc_dropout",
    "none",
    "r_drop",
    "standard",
    "standout",
    "step",
    "stochastic_depth",
    "structured_rnn",
    "val_loss_adaptive",
    "weight_drop",
]
