"""Run `r1zero analyze`: the base-model study or a training run's analysis."""

from __future__ import annotations

from typing import Any

from r1zero.analysis.reflection import resolve_keywords
from r1zero.analysis.settings import AnalyzeConfig
from r1zero.analysis.study import run_study
from r1zero.analysis.training_runs import analyze_run


def run_analyze(cfg: AnalyzeConfig, **kwargs: Any) -> dict[str, Any]:
    """Run the study the config describes; returns what summary.json holds.

    With ``cfg.run_dir`` set this is `run_analyze_run`; otherwise the base-model study
    (`r1zero.analysis.study.run_study`, which accepts ``backend_factory`` for tests)."""
    cfg.validate()
    if cfg.run_dir is not None:
        keywords = resolve_keywords(cfg.keyword_list, cfg.keywords)
        return run_analyze_run(cfg.run_dir, keywords=keywords, out_dir=cfg.out_dir)
    return run_study(cfg, **kwargs)


def run_analyze_run(run_dir: str, **kwargs: Any) -> dict[str, Any]:
    """Reflection and length analysis of a training run (see `analysis.training_runs`)."""
    return analyze_run(run_dir, **kwargs)
