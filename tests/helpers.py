"""Shared test helpers: where the real benchmark data lives beside the checkout, and the
table-driven grading checks."""

import re
import time
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
"""../shared/data next to the checkout (never copied into the project)."""
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} not present")


GRADE_TIME_LIMIT_S = 5.0
"""Every grading case must finish under this (the issue's bound)."""


def _slug(text: str, n: int = 28) -> str:
    """A short ASCII rendering of a case's text for its test id."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_")[:n] or "_"


def grading_params(tables: dict, extract: str = "auto") -> list:
    """pytest params ``(response, gold, expected, extract)`` for named tables of
    ``(response, gold, expected)``, with readable ids."""
    return [
        pytest.param(r, g, e, extract,
                     id=f"{name}-{i:02d}-{'yes' if e else 'no'}-{_slug(r)}-vs-{_slug(str(g), 16)}")
        for name, table in tables.items() for i, (r, g, e) in enumerate(table)
    ]


def check_grade(response, gold, expected, extract: str = "auto") -> float:
    """Assert the verdict (with the extraction in the message); returns the seconds taken."""
    from r1zero.grading import grade

    start = time.perf_counter()
    v = grade(response, gold, extract=extract, timeout_s=GRADE_TIME_LIMIT_S)
    took = time.perf_counter() - start
    assert v.correct is expected, (
        f"expected {expected} for {response!r} vs gold {gold!r} (extract={extract}): "
        f"extracted={v.extracted!r}, reason={v.reason}"
    )
    return took


def local_learner(cfg, model, *, optimizer=None, ref=None, packed=False, pad=0, precision="fp32",
                  rank=0, world=1, role="policy"):
    """A `LocalLearner` around an already built ``model`` (its own compute module; AdamW
    with the config's settings unless ``optimizer`` is given)."""
    from r1zero.learner.local import LocalLearner
    from r1zero.learner.objectives import OBJECTIVES
    from r1zero.learner.optim import adamw, optim_settings

    optim = optim_settings(cfg, role)
    optimizer = optimizer or adamw(model.parameters(), optim)
    return LocalLearner(cfg, cfg.algo, model, model, optimizer, optim, ref, packed, pad, precision,
                        OBJECTIVES[role], 0, rank, world)


SAMPLING_FIELDS = ("samples", "temperature", "top_p", "max_new_tokens", "seed")


def with_sampling(cls, **kw):
    """``cls(**kw)`` (EvalConfig, AnalyzeConfig) with the sampling flags (``samples=``,
    ``temperature=``...) gathered into its `SamplingConfig`, over the command's defaults."""
    import dataclasses

    sampling = {k: kw.pop(k) for k in SAMPLING_FIELDS if k in kw}
    cfg = cls(**kw)
    return dataclasses.replace(cfg, sampling=dataclasses.replace(cfg.sampling, **sampling))
