"""Command-line argument types shared by the commands.

``json_argument`` lets an option take JSON either inline (``--spec '{"mode": "sample"}'``, handy
by hand) or from a file (``--spec @results/configs/gateway.json``, what the workflow passes, so
that a rule's command line and its log stay short). A malformed value is an argparse error: one
line naming the option, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def json_argument(text: str) -> Any:
    """JSON text, or ``@PATH`` for a file holding it."""
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text()
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg}): {shown!r}") from exc
