"""Unit tier: Salt's loader is mocked with pytest-salt-factories'
``configure_loader_modules``; modules are loaded by path (testlib.load_module)."""

import time

import pytest
from testlib import load_module as _load_module


@pytest.fixture
def load_module():
    """The loader helper as a fixture: ``load_module("csync2")``."""
    return _load_module


@pytest.fixture
def no_sleep(monkeypatch):
    """time.sleep records the seconds instead of sleeping (the wait states)."""
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept
