"""What `r1zero analyze` is asked: models x templates on one problem set (the base-model
study), or a training run's rollouts (--run-dir)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import tyro

from r1zero.analysis.reflection import KEYWORD_LISTS
from r1zero.config import ConfigError, JudgeConfig, SamplingConfig
from r1zero.evaluation.settings import EvalConfig


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
    strict_data: bool = False
    """Stop at the first row of a problem file that holds no usable problem (no question,
    no usable answer, not an object). Off: such rows are skipped with a warning that counts
    them and quotes the first few, and a file where most rows are unusable is an error."""
    sampling: tyro.conf.OmitArgPrefixes[SamplingConfig] = field(
        default_factory=lambda: SamplingConfig(samples=8, temperature=1.0))
    """How responses are sampled (--samples, --temperature, --top-p, --max-new-tokens,
    --seed): 8 samples per question at T = 1.0, as in the paper's rollouts."""
    limit: int | None = None
    """Use only the first N problems of each set."""
    extract: Literal["boxed", "r1", "auto"] | None = None
    """Grader: where the answer is read; None = each template's format (the last
    \\boxed{}, or the r1 answer tags: the paper's protocol); auto also reads unboxed answers."""
    keyword_list: str = "paper"
    """Reflection keywords: pilot (the pilot study's 11) or paper (pilot + 5 more)."""
    keywords: tuple[str, ...] = ()
    """Extra reflection keywords added to --keyword-list (case-insensitive substrings)."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """An LLM judge (chat model behind an OpenAI-compatible server) that confirms keyword
    hits on a stratified subset (--judge.limit per cell); off unless --judge.model is given."""
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
        if self.run_dir is not None:
            return  # a run analysis only reads files; the rest does not apply
        if not self.models or not self.templates:
            raise ConfigError("need at least one --models and one --templates")
        if self.keyword_list not in KEYWORD_LISTS:
            raise ConfigError(f"--keyword-list must be one of {', '.join(KEYWORD_LISTS)}")
        self.judge.check("--judge")
        for model in self.models:  # the eval checks: backend, suite, sampling, templates
            for template in self.templates:
                self.eval_config(model, template, "unused").validate()

    def eval_config(self, model: str, template: str, out_dir: str) -> EvalConfig:
        """The `EvalConfig` of one model x template cell (the eval machinery does the work)."""
        return EvalConfig(
            model=model, backend=self.backend, base_url=self.base_url,
            api_key_env=self.api_key_env, concurrency=self.concurrency,
            request_timeout_s=self.request_timeout_s, data=self.data, suite=self.suite,
            benchmarks=self.benchmarks if not self.data else (), data_dir=self.data_dir,
            question_field=self.question_field, answer_field=self.answer_field,
            strict_data=self.strict_data,
            template=template, sampling=self.sampling, limit=self.limit,
            extract=self.extract, out_dir=out_dir, resume=self.resume,
            chunk_size=self.chunk_size,
            device=self.device, dtype=self.dtype, quiet=self.quiet,
        )
