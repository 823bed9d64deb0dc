"""Store tests reuse the encoder tests' tiny-model helpers and fixtures."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "tuneprobe_tests_encoders_conftest", Path(__file__).parents[1] / "encoders" / "conftest.py"
)
_mod = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("tuneprobe_tests_encoders_conftest", _mod)
_spec.loader.exec_module(_mod)

tiny = _mod.tiny
cache_dir = _mod.cache_dir
tiny_encoder = _mod.tiny_encoder
