"""Where things are: the repository, the package, and the resources the code reads.

``REPO_ROOT`` is defined here and nowhere else. :func:`resource` finds a file the code ships
beside it (config schema and defaults, Maven poms, Spark defaults): in a checkout it is the
repository's own file; in an installed package (``pip install .``) it is the copy packed as
package data under ``vitalstream/resources/``. Code asks for a resource by its path in the
repository (``resource("config/schema.yaml")``) and never builds such paths itself.

Not for: paths of results (the workflow names those) or caches of downloads.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
SCRIPTS_DIR = PACKAGE_DIR.parent
REPO_ROOT = SCRIPTS_DIR.parent


def in_checkout() -> bool:
    """True when the package runs from a clone of the repository (not an installed copy)."""
    return (REPO_ROOT / "workflow" / "rules").is_dir() and (REPO_ROOT / "config").is_dir()


def cache_dir() -> Path:
    """Where downloaded tools (the services' jars) are cached: the checkout's git-ignored
    ``.cache/`` (which ``make jars`` fills), or, for an installed package, the user's cache
    (``$XDG_CACHE_HOME/vitalstream``, default ``~/.cache/vitalstream``), never inside the
    installed package's own folder."""
    if in_checkout():
        return REPO_ROOT / ".cache"
    user_cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(user_cache).expanduser() / "vitalstream"


def resource(relative: str | Path) -> Path:
    """A shipped file by its path in the repository; a missing one names both places looked."""
    relative = Path(relative)
    checkout = REPO_ROOT / relative
    if checkout.exists():
        return checkout
    packed = Path(str(importlib.resources.files("vitalstream") / "resources" / relative))
    if packed.exists():
        return packed
    raise FileNotFoundError(f"resource {relative} is in neither {checkout} nor {packed}")
