"""Fixtures for the packaging tests: the build scripts under ``packaging/``, loaded by path.

``packaging/`` is not a Python package (its name would shadow PyPI's ``packaging``), so its
scripts are loaded from their files.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"


def load_script(name: str) -> ModuleType:
    """Import ``packaging/<name>.py`` as module ``bandsync_packaging_<name>``."""
    module_name = f"bandsync_packaging_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, PACKAGING / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def build_script() -> ModuleType:
    """``packaging/build.py``."""
    return load_script("build")


@pytest.fixture(scope="session")
def icons_script() -> ModuleType:
    """``packaging/icons.py``."""
    return load_script("icons")
