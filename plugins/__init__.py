"""Built-in dropout strategies, one module each; importing a module registers it.

To add a built-in, write ``plugins/<name>.py`` and add its import here.
"""

from plugins import none
from plugins import standard


__all__ = ["none", "standard"]
