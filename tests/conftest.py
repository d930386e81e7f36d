"""Shared fixtures. Real data lives in ../shared/data beside the clone (never committed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several test processes share the cores: one torch thread each, so they do not
    # oversubscribe the machine (torch's threads wait for each other when cores are short).
    import torch

    torch.set_num_threads(1)


def _shared_data() -> Path:
    env = os.environ.get("AUTOCAR_SHARED_DATA")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test when that folder is absent."""
    path = _shared_data()
    if not path.is_dir():
        pytest.skip(f"real data folder {path} is absent (set AUTOCAR_SHARED_DATA)")
    return path


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """``train``, ``demo`` and ``reconstruct`` set torch's global thread count; put it back for the
    tests that follow (every test: the in-process command line sets it)."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
