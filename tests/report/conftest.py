"""Fixtures of the report tests: the ``browser`` marker and a headless Chromium."""

from __future__ import annotations

import pytest
from browser_util import ensure_chromium


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: opens pages in headless Chromium (deselect with -m 'not browser')"
    )


@pytest.fixture(scope="session")
def chromium_path():
    """Debian's chromium (installed with apt-get when absent and root); skips with the reason otherwise."""
    path, reason = ensure_chromium()
    if path is None:
        pytest.skip(reason)
    return path
