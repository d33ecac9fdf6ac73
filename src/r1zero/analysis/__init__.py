"""`r1zero analyze`: what a base model already does before RL (template effect, exploration
via pass@k, self-reflection and whether it is superficial), and what a training run did
(did length grow through reflection or through reward optimisation?).

settings.py holds `AnalyzeConfig`, run.py runs it (study.py: models x templates;
training_runs.py: a run directory), reflection.py the keyword detection that the trainer's
reflection-rate metric also uses. Importing the package is cheap (no torch, no
matplotlib): its names load on first use (PEP 562).
"""

from __future__ import annotations

import importlib

_EXPORTS = {"AnalyzeConfig": "settings", "run_analyze": "run", "run_analyze_run": "run"}

__all__ = ["AnalyzeConfig", "run_analyze", "run_analyze_run"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"r1zero.analysis.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'r1zero.analysis' has no attribute {name!r}")
