"""Shared test helpers: where the real benchmark data lives beside the checkout."""

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
"""../shared/data next to the checkout (never copied into the project)."""
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} not present")
