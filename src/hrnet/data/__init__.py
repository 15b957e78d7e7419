"""Where data comes from outside a config: the shared sample data folder (:func:`shared_data_dir`).

The synthetic generators moved to :mod:`hrnet.synthetic`; ``hrnet.data.synthesize`` and the module paths
``hrnet.data.synthetic`` / ``figures`` / ``shapes`` / ``textures`` remain as aliases of them.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..compat import alias_modules
from ..synthetic import synthesize

__all__ = ["shared_data_dir", "synthesize"]

alias_modules({
    "hrnet.data.synthetic": "hrnet.synthetic.generate",
    "hrnet.data.figures": "hrnet.synthetic.figures",
    "hrnet.data.shapes": "hrnet.synthetic.shapes",
    "hrnet.data.textures": "hrnet.synthetic.textures",
})


def shared_data_dir() -> Path:
    """The folder of real sample data: ``$HRNET_SHARED_DATA`` if set, else ``<repository>/../shared/data``.

    The folder may be absent (e.g. in a fresh clone); callers check ``.is_dir()`` and skip.
    """
    env = os.environ.get("HRNET_SHARED_DATA")
    if env:
        return Path(env).expanduser()
    repository = Path(__file__).resolve().parents[3]
    return repository.parent / "shared" / "data"
