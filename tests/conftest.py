"""Shared fixtures. Tests import the fake `sleepy` pipeline plugin from tests/plugins."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
PLUGINS = TESTS / "plugins"
SHARED_DATA = TESTS.parent.parent / "shared" / "data"
ICT_HEAD = SHARED_DATA / "ict_facekit" / "ict_head.npz"

if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))


@pytest.fixture
def plugin_env() -> dict[str, str]:
    """Environment for a `t2bs` subprocess that loads the test plugins."""
    env = dict(os.environ)
    env["T2BS_PLUGINS"] = "t2bs_sleepy"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS), env.get("PYTHONPATH", "")]))
    return env
