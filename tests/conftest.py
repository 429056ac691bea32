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
