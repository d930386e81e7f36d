"""Headless Chromium for tests that open a page (Debian's chromium, driven by playwright).

The browser comes from Debian's ``chromium`` package; when it is missing and
the tests run as root it is installed with apt-get. playwright (PyPI) only
drives it through ``executable_path``: ``playwright install`` downloads its
own browsers and is never run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_TIMEOUT_S = 900
# No GPU, no sandbox (root in a container), and nothing that phones home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def ensure_chromium() -> tuple[Path | None, str]:
    """Path of Debian's chromium, installing it with apt-get when absent and root.

    Returns
    -------
    (path, reason) : the executable and "", or None and why it is not available.
    """
    if CHROMIUM.exists():
        return CHROMIUM, ""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None, f"{CHROMIUM} is absent and the tests do not run as root (apt-get install chromium)"
    if shutil.which("apt-get") is None:
        return None, f"{CHROMIUM} is absent and there is no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        proc = subprocess.run(
            ["bash", "-c", "apt-get update -qq && apt-get install -y -qq chromium"],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"apt-get install chromium took longer than {INSTALL_TIMEOUT_S} s"
    if proc.returncode != 0 or not CHROMIUM.exists():
        tail = (proc.stderr or proc.stdout or "").strip()[-400:]
        return None, f"apt-get install chromium failed (exit {proc.returncode}): {tail}"
    return CHROMIUM, ""
