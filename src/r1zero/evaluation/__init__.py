"""`r1zero eval`: accuracy, pass@k, maj@k and response-length statistics on benchmark sets.

The loop is resumable by construction: every graded sample is appended to
``samples.jsonl`` after each chunk, keyed by (benchmark, problem id, sample index), and the
summary is always recomputed from that file, so an interrupted and resumed run reports
exactly what an uninterrupted one would. Sample j of a problem is seeded with
``derive_seed(derive_seed(seed, benchmark, problem_id), j)``, independent of chunking.

settings.py: suites and `EvalConfig`; runner.py: the run; report.py: summaries.
"""

from r1zero.evaluation.report import (
    average_metrics,
    benchmark_metrics,
    nan_to_none,
    pass_ks,
    results_markdown,
    summarize,
)
from r1zero.evaluation.runner import (
    eval_dtype,
    make_eval_backend,
    read_samples,
    resolve_benchmarks,
    run_eval,
)
from r1zero.evaluation.settings import (
    BACKENDS,
    OPENAI_ENDPOINTS,
    SUITES,
    Benchmark,
    EvalConfig,
)

__all__ = ["BACKENDS", "OPENAI_ENDPOINTS", "SUITES", "Benchmark", "BenchmarkSet", "EvalConfig",
           "average_metrics", "benchmark_metrics", "eval_dtype", "make_eval_backend", "nan_to_none",
           "pass_ks", "read_samples", "resolve_benchmarks", "results_markdown", "run_eval", "summarize"]
