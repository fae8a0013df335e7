"""Fixtures of the console tests: the privileged private libvirtd is tests/conftest.py's (the browser
test recovers a protected application in isolated networks), and one headless Chromium per module."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


def output_dir() -> Path:
    """Where the console tests leave their screenshots: $VMFERRY_TEST_OUTPUT/console, else build/test-output."""
    base = Path(os.environ.get("VMFERRY_TEST_OUTPUT") or REPO / "build" / "test-output")
    out = base / "console"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium, headless, driven by Playwright (which downloads no browser of its own)."""
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (.ci/apt-packages.txt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()
