"""`r1zero analyze`: what a base model already does before RL (template effect, exploration
via pass@k, self-reflection and whether it is superficial), and what a training run did
(did length grow through reflection or through reward optimisation?).

Importing this package is cheap (no torch, no matplotlib): the trainer imports
`r1zero.analysis.reflection` for its reflection-rate metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from r1zero.analysis.reflection import KEYWORD_LISTS


@dataclass
class AnalyzeConfig:
    """`r1zero analyze`: base-model study over models x templates on one problem set, or
    (with --run-dir) the reflection / length analysis of a training run's rollouts."""

    run_dir: str | None = None
    """Analyse a training run directory (its rollouts/step_*.jsonl) instead of base models."""
    models: tuple[str, ...] = ("smollm2-135m-instruct",)
    """Models to study (hub ids, local directories, packaged names, or server model names
    with --backend openai)."""
    templates: tuple[str, ...] = ("r1", "qwen_math", "no")
    """Templates to compare (the paper's Table 1: r1, qwen_math, no); also chat or a
    custom string with {question}."""
    backend: str = "hf"
    """Generation engine: hf, vllm, or openai (any OpenAI-compatible server, completions
    endpoint so that the templates apply verbatim)."""
    base_url: str | None = None
    """openai backend: server root including /v1."""
    api_key_env: str = "OPENAI_API_KEY"
    """openai backend: environment variable with the API key (optional for local servers)."""
    concurrency: int = 16
    """openai backend: requests in flight at once."""
    request_timeout_s: float = 600.0
    """openai backend: per-request timeout in seconds."""
    data: tuple[str, ...] = ()
    """Problem set(s) as files / save_to_disk dirs / hub names; empty = --benchmarks of the suite."""
    suite: str = "math5"
    """Suite used when --data is empty."""
    benchmarks: tuple[str, ...] = ("math500",)
    """Benchmarks of the suite to study (the paper's analyses use MATH500)."""
    data_dir: str = "data"
    """Directory holding the suite (evaluation_suite/ or the jsonl files)."""
    question_field: str | None = None
    """Field with the question in --data files (auto-detected when None)."""
    answer_field: str | None = None
    """Field with the gold answer in --data files (auto-detected when None)."""
    samples: int = 8
    """Samples per question (k); pass@k is reported for k = 1..k."""
    temperature: float = 1.0
    """Sampling temperature (1.0, as in the paper's rollouts)."""
    top_p: float = 1.0
    """Nucleus sampling (1.0 = off)."""
    max_new_tokens: int = 3000
    """Generation budget per response (the paper's 3000)."""
    limit: int | None = None
    """Use only the first N problems of each set."""
    seed: int = 0
    """Base seed (each sample's seed derives from it, the benchmark, problem and index)."""
    extract: Literal["boxed", "r1", "auto"] | None = None
    """Grader: where the answer is read; None = each template's format (the last
    \\boxed{}, or the r1 answer tags: the paper's protocol); auto also reads unboxed answers."""
    keyword_list: str = "paper"
    """Reflection keywords: pilot (the pilot study's 11) or paper (pilot + 5 more)."""
    keywords: tuple[str, ...] = ()
    """Extra reflection keywords added to --keyword-list (case-insensitive substrings)."""
    judge_base_url: str | None = None
    """OpenAI-compatible server of an LLM judge that confirms keyword hits (off when None)."""
    judge_model: str | None = None
    """Judge model name on that server."""
    judge_api_key_env: str = "OPENAI_API_KEY"
    """Environment variable with the judge server's API key."""
    judge_limit: int = 200
    """Responses judged per model x template cell (a deterministic random subset, half
    keyword hits when there are enough); the judge costs one request per response."""
    judge_max_new_tokens: int = 512
    """Judge's generation budget (it gives a short reason, then its verdict)."""
    out_dir: str | None = None
    """Output directory for report.md, summary.json and PNG plots (plus one eval directory
    per model x template cell). None: runs/analyze, or RUN_DIR/analysis with --run-dir."""
    resume: bool = True
    """Reuse samples already generated in out_dir (see `r1zero eval --resume`)."""
    chunk_size: int = 32
    """Problems per generation call (samples are saved after each chunk)."""
    device: str = "cpu"
    """hf / vllm backends: device for the model."""
    dtype: str = "auto"
    """hf / vllm backends: weight dtype (auto: bfloat16 where bf16 is fast, see r1zero eval)."""
    quiet: bool = False
    """No progress bars or messages."""

    def validate(self) -> None:
        """Raise `ConfigError` for settings that cannot work (pure)."""
        from r1zero.config import ConfigError

        if self.run_dir is not None:
            return  # a run analysis only reads files; the rest does not apply
        if not self.models or not self.templates:
            raise ConfigError("need at least one --models and one --templates")
        if self.samples < 1:
            raise ConfigError(f"--samples must be >= 1, got {self.samples}")
        if self.keyword_list not in KEYWORD_LISTS:
            raise ConfigError(f"--keyword-list must be one of {', '.join(KEYWORD_LISTS)}")
        if (self.judge_base_url is None) != (self.judge_model is None):
            raise ConfigError("the LLM judge needs both --judge-base-url and --judge-model")
        if self.judge_limit < 1 or self.judge_max_new_tokens < 1:
            raise ConfigError("--judge-limit and --judge-max-new-tokens must be >= 1")
        for model in self.models:  # the eval checks: backend, suite, sampling, templates
            for template in self.templates:
                self.eval_config(model, template, "unused").validate()

    def eval_config(self, model: str, template: str, out_dir: str) -> Any:
        """The `EvalConfig` of one model x template cell (the eval machinery does the work)."""
        from r1zero.evaluation import EvalConfig

        return EvalConfig(
            model=model, backend=self.backend, base_url=self.base_url,
            api_key_env=self.api_key_env, concurrency=self.concurrency,
            request_timeout_s=self.request_timeout_s, data=self.data, suite=self.suite,
            benchmarks=self.benchmarks if not self.data else (), data_dir=self.data_dir,
            question_field=self.question_field, answer_field=self.answer_field,
            template=template, samples=self.samples, temperature=self.temperature,
            top_p=self.top_p, max_new_tokens=self.max_new_tokens, limit=self.limit,
            seed=self.seed, extract=self.extract, out_dir=out_dir, resume=self.resume,
            chunk_size=self.chunk_size,
            device=self.device, dtype=self.dtype, quiet=self.quiet,
        )


def run_analyze(cfg: AnalyzeConfig, **kwargs: Any) -> dict[str, Any]:
    """Run the study the config describes; returns what summary.json holds.

    With ``cfg.run_dir`` set this is `run_analyze_run`; otherwise the base-model study
    (`r1zero.analysis.study.run_study`, which accepts ``backend_factory`` for tests)."""
    cfg.validate()
    if cfg.run_dir is not None:
        from r1zero.analysis.reflection import resolve_keywords

        keywords = resolve_keywords(cfg.keyword_list, cfg.keywords)
        return run_analyze_run(cfg.run_dir, keywords=keywords, out_dir=cfg.out_dir)
    from r1zero.analysis.study import run_study

    return run_study(cfg, **kwargs)


def run_analyze_run(run_dir: str, **kwargs: Any) -> dict[str, Any]:
    """Reflection and length analysis of a training run (see `analysis.training_runs`)."""
    from r1zero.analysis.training_runs import analyze_run

    return analyze_run(run_dir, **kwargs)


__all__ = ["AnalyzeConfig", "run_analyze", "run_analyze_run"]
