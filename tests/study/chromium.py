"""Load a local HTML page in headless Chromium and return its console errors (skip or fail when not installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def chromium() -> str | None:
    """The Chromium binary (scripts/sysdeps.sh installs it), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def load_page(page: Path, work: Path) -> list[str]:
    """Render `page` headless (a screenshot proves it rendered); returns the console-error lines."""
    browser = chromium()
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (scripts/sysdeps.sh installs it)")
        pytest.skip("chromium is not installed")
    shot = work / f"{page.stem}.png"
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run",
                           f"--user-data-dir={work / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
                           f"--screenshot={shot}", "--window-size=1200,1600", f"file://{page.resolve()}"],
                          capture_output=True, text=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 5_000, proc.stderr[-2000:]
    return [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
