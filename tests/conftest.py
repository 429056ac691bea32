"""Shared fixtures: the FER2013 .npz folder beside the checkout (skips when absent)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

DATA = ROOT.parent / "shared" / "data" / "fer2013"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "fer2013_val_public.npz").exists():
        pytest.skip("shared/data/fer2013 not found beside the checkout")
    return DATA


@pytest.fixture(scope="session")
def load_tool():
    """``load_tool("select_default")``: a script of ``tools/`` loaded as a module (the tools are not a package)."""
    import importlib.util

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load
