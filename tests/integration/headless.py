"""Headless Chromium for the dashboard tests: find it, run it, read what it drew.

`make browser` installs Chromium from Debian's packages; without it these tests skip."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
BROWSER = next((path for name in BROWSERS if (path := shutil.which(name))), None)


def browser() -> str:
    if BROWSER is None:
        pytest.skip(f"no headless browser on PATH ({', '.join(BROWSERS)}): run `make browser`")
    return BROWSER


def run_browser(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium call with its own profile (parallel runs do not share a lock)."""
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += [f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def dom(page: Path, profile: Path, fragment: str = "") -> str:
    """The page's DOM after its scripts ran."""
    return run_browser(profile, "--dump-dom", page.as_uri() + fragment).stdout


def rendered(html: str) -> bool:
    return re.search(r'<body[^>]*data-rendered="true"', html) is not None


def marks(html: str) -> dict[str, int]:
    """Marks each chart drew (its svg's data-marks)."""
    found = re.findall(r'<svg id="([\w-]+)"[^>]*?data-marks="(\d+)"', html)
    return {name: int(n) for name, n in found}
