"""Headless Chromium for tests that drive a real browser (Debian's ``chromium`` through
Playwright for Python; no browser download).

``browser_missing()`` says why such a test cannot run here (skip with it), and
``launch_chromium(playwright)`` starts the browser headless.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

__all__ = ["CHROMIUM", "browser_missing", "launch_chromium"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
"""Debian's chromium (``make services`` installs it)."""


def browser_missing() -> str | None:
    """Why a browser test cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if not os.access(CHROMIUM, os.X_OK):
        return "Debian's chromium is not installed (make services installs it)"
    return None


def launch_chromium(playwright: Any) -> Any:
    """A headless :data:`CHROMIUM` browser of a ``sync_playwright()`` context."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
    )
