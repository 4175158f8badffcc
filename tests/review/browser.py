"""Headless Chromium for the tests that look at pages as a person would.

Debian's ``chromium`` (``.ci/run`` installs it). Outside CI a missing browser
skips the test and says why; in CI it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
    pytest.skip("chromium is not installed (apt-get install chromium); the browser check needs it")
    raise AssertionError("unreachable")


def screenshot(url: str, out: Path, width: int = 1100, height: int = 3000) -> tuple[Image.Image, list[str]]:
    """Render ``url`` headless; return the screenshot and the page's console errors."""
    result = subprocess.run(
        [
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--enable-logging=stderr", "--v=0", f"--window-size={width},{height}",
            f"--screenshot={out}", url,
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.is_file(), f"chromium wrote no screenshot: {result.stderr[-2000:]}"
    errors = [line for line in result.stderr.splitlines() if "CONSOLE" in line and ("Error" in line or "Uncaught" in line)]
    return Image.open(out).convert("RGB"), errors


def ink(image: Image.Image) -> float:
    """The share of pixels that are not (near) white: 0 for a blank page."""
    pixels = np.asarray(image, dtype=np.int16)
    return float((pixels.min(axis=2) < 235).mean())
