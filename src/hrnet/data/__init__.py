"""Where data comes from outside a config: the shared sample data folder (:func:`shared_data_dir`).

The synthetic generators moved to :mod:`hrnet.synthetic`; ``hrnet.data.synthesize`` and the module paths
``hrnet.data.synthetic`` / ``figures`` / ``shapes`` / ``textures`` remain as aliases of them.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..compat import alias_modules
from ..errors import ConfigError
from ..synthetic import synthesize

__all__ = ["shared_data_dir", "synthesize"]

alias_modules({
    "hrnet.data.synthetic": "hrnet.synthetic.generate",
    "hrnet.data.figures": "hrnet.synthetic.figures",
    "hrnet.data.shapes": "hrnet.synthetic.shapes",
    "hrnet.data.textures": "hrnet.synthetic.textures",
})


def shared_data_dir() -> Path:
    """The folder of real sample data named by ``$HRNET_SHARED_DATA`` (``ConfigError`` when unset).

    The package does not guess where a source checkout keeps such data; the test suite sets the variable
    (tests/conftest.py) and so can anyone else. The folder may be absent: callers check ``.is_dir()``.
    """
    env = os.environ.get("HRNET_SHARED_DATA")
    if not env:
        raise ConfigError("HRNET_SHARED_DATA is not set: point it at the folder of sample data "
                          "(e.g. export HRNET_SHARED_DATA=/path/to/sample-data)")
    return Path(env).expanduser()
