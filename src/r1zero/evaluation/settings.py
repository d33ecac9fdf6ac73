"""What `r1zero eval` is asked: the benchmark suites (the paper's five math sets; HumanEval
and MBPP for ``--task code``) and `EvalConfig`, every flag a typed field whose docstring is
its help; pure validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import tyro
from rich.console import Console

from r1zero.config import ConfigError, JudgeConfig, SamplingConfig, SandboxConfig
from r1zero.machine import SAMPLER_DTYPES
from r1zero.templates import get_template

BACKENDS = ("hf", "vllm", "openai")
OPENAI_ENDPOINTS = ("completions", "chat")


@dataclass(frozen=True)
class Benchmark:
    """One set of a suite: where to find it in the two standard data layouts."""

    key: str
    """Short name used in files and on the command line (e.g. ``math500``)."""
    title: str
    """Column title in reports (the paper's)."""
    split: str
    """Split of ``DATA_DIR/evaluation_suite`` (the paper's own copy; preferred)."""
    jsonl: str
    """Fallback file under ``DATA_DIR/jsonl/`` or ``DATA_DIR/``."""


SUITES: dict[str, tuple[Benchmark, ...]] = {
    "math5": (
        Benchmark("aime24", "AIME24", "aime", "aime24.jsonl"),
        Benchmark("amc", "AMC", "amc", "amc23.jsonl"),
        Benchmark("math500", "MATH500", "math", "math500.jsonl"),
        Benchmark("minerva", "Minerva", "minerva", "minerva_math.jsonl"),
        Benchmark("olympiad", "OlympiadBench", "olympiad_bench", "olympiadbench.jsonl"),
    ),
    "code": (
        Benchmark("humaneval", "HumanEval", "humaneval", "humaneval.jsonl"),
        Benchmark("mbpp", "MBPP", "mbpp", "mbpp.jsonl"),
    ),
}
"""Named suites. ``math5`` is the paper's: AIME 2024, AMC, MATH-500, Minerva, OlympiadBench;
``code``: HumanEval and MBPP (sanitized), graded by their unit tests (``--task code``)."""
TASKS = {"math": ("math5",), "code": ("code",)}
"""What ``--task`` grades, and its suites (the first: the default)."""
DEFAULT_TEMPLATE = {"math": "qwen_math", "code": "chat"}
"""The template each task uses while --template is left at qwen_math."""


@dataclass
class EvalConfig:
    """`r1zero eval`: evaluate a model on benchmark sets (defaults: the paper's protocol,
    greedy decoding with 3000 new tokens on the five-benchmark math suite)."""

    task: str = "math"
    """What is graded: math (the final answer, by the math grader) or code (HumanEval / MBPP
    functions, by their unit tests run in the sandbox: pass@k counts a sample that passes
    every test, HumanEval's protocol)."""
    model: str = "smollm2-135m-instruct"
    """Hub id, local HF directory or packaged model name; with --backend openai, the
    model name the server serves."""
    backend: str = "hf"
    """Generation engine: hf (transformers), vllm, or openai (any OpenAI-compatible server)."""
    base_url: str | None = None
    """openai backend: server root including /v1, e.g. http://localhost:8000/v1."""
    openai_endpoint: str = "completions"
    """openai backend: completions (raw prompt; templates apply, as in the paper) or chat
    (the question is sent as a user message and the server's chat template is used;
    --template is then ignored and answers are read from the last \\boxed{})."""
    api_key_env: str = "OPENAI_API_KEY"
    """openai backend: environment variable holding the API key (optional for local servers)."""
    concurrency: int = 16
    """openai backend: requests in flight at once."""
    request_timeout_s: float = 600.0
    """openai backend: per-request timeout in seconds (retried with exponential backoff)."""
    data: tuple[str, ...] = ()
    """Problem sets to evaluate instead of a suite: files (.jsonl/.json/.parquet), save_to_disk
    directories or hub names; ``name=path`` sets the report name."""
    suite: str = "math5"
    """Named suite used when --data is empty: math5 (AIME24, AMC, MATH500, Minerva,
    OlympiadBench), or code (HumanEval, MBPP), which --task code uses unless told."""
    benchmarks: tuple[str, ...] = ()
    """Subset of the suite to run, by key (aime24 amc math500 minerva olympiad; humaneval
    mbpp); empty = all."""
    data_dir: str = "data"
    """Directory holding the suite: evaluation_suite/ (save_to_disk DatasetDict, preferred)
    or jsonl files (aime24.jsonl, amc23.jsonl, math500.jsonl, ...; humaneval.jsonl,
    mbpp.jsonl) in it or in jsonl/."""
    question_field: str | None = None
    """Field with the question in --data files (auto-detected when None)."""
    answer_field: str | None = None
    """Field with the gold answer in --data files (auto-detected when None)."""
    strict_data: bool = False
    """Stop at the first row of a problem file that holds no usable problem (no question,
    no usable answer, not an object). Off: such rows are skipped with a warning that counts
    them and quotes the first few, and a file where most rows are unusable is an error."""
    template: str = "qwen_math"
    """Prompt template: qwen_math, r1, no, chat (the model's own), or a string with {question};
    --task code uses chat unless told."""
    sampling: tyro.conf.OmitArgPrefixes[SamplingConfig] = field(default_factory=SamplingConfig)
    """How responses are sampled (--samples, --temperature, --top-p, --max-new-tokens,
    --seed): one greedy answer by default."""
    limit: int | None = None
    """Evaluate only the first N problems of each set."""
    extract: Literal["boxed", "r1", "auto"] | None = None
    """Grader: where the answer is read; None = the template's format (the last \\boxed{}, or
    the r1 answer tags: the paper's protocol); auto also reads unboxed answers."""
    grade_timeout_s: float = 5.0
    """Grader: time limit per equivalence check (a timeout counts as incorrect)."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """Reference-guided LLM judge for the answers the rule grader cannot decide (no answer
    found, a time-out, a text answer); off unless --judge.model is given. Changing it never
    regenerates samples: the judge re-reads samples.jsonl (its verdicts are cached)."""
    out_dir: str = "runs/eval"
    """Output directory: results.json, results.md, samples.jsonl."""
    resume: bool = True
    """Keep samples already in OUT_DIR/samples.jsonl (from an interrupted run with the same
    settings) and generate only the missing ones; --no-resume deletes them and starts over."""
    chunk_size: int = 32
    """Problems per generation call; samples are saved after each chunk."""
    device: str = "cpu"
    """hf / vllm backends: device for the model."""
    vllm_gpu_memory_utilization: float = 0.85
    """vllm on a GPU: share of its memory for weights + KV cache (evaluation owns the device:
    no learner beside it, hence more than training's 0.35)."""
    max_model_len: int | None = None
    """vllm: the longest prompt + response an engine accepts (None = the model's context)."""
    dtype: str = "auto"
    """hf / vllm backends: weight dtype: auto (bfloat16 where the device computes bf16 fast,
    else float32 on a CPU and float16 on a GPU; r1zero/machine.py), float32, bfloat16 or
    float16."""
    quiet: bool = False
    """No progress bar or messages."""
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    """--task code: where the samples' tests run (see SandboxConfig; --sandbox none runs them
    WITHOUT isolation)."""

    # ------------------------------------------------------------------ derived values
    @property
    def sampling_temperature(self) -> float:
        """The temperature actually used (`SamplingConfig.effective_temperature`)."""
        return self.sampling.effective_temperature

    @property
    def suite_in_force(self) -> str:
        """--suite, or the task's own suite while it is left at math5 (--task code: code)."""
        return TASKS[self.task][0] if self.suite == "math5" and self.task in TASKS else self.suite

    @property
    def template_in_force(self) -> str:
        """--template, or the task's own template while it is left at qwen_math."""
        return DEFAULT_TEMPLATE.get(self.task, self.template) if self.template == "qwen_math" else self.template

    @property
    def uses_server_chat(self) -> bool:
        """True when the server applies the chat template (r1zero's template is ignored)."""
        return self.backend == "openai" and self.openai_endpoint == "chat"

    def validate(self) -> None:
        """Raise `ConfigError` on settings that cannot work (pure: no file or network access)."""
        def bad(msg: str) -> None:
            raise ConfigError(msg)

        if self.backend not in BACKENDS:
            bad(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.task not in TASKS:
            bad(f"--task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.task == "code" and self.judge.enabled:
            bad("--judge.* reads final answers; --task code is graded by unit tests: drop --judge.model")
        if self.backend == "openai" and not self.base_url:
            bad("--backend openai needs --base-url (e.g. http://localhost:8000/v1)")
        if self.openai_endpoint not in OPENAI_ENDPOINTS:
            bad(f"--openai-endpoint must be completions or chat, got {self.openai_endpoint!r}")
        if self.backend == "openai" and self.template_in_force == "chat" and not self.uses_server_chat:
            bad("the chat template needs the model's tokenizer; with --backend openai use "
                "--openai-endpoint chat so that the server applies it")
        if not self.data:
            suite = self.suite_in_force
            if suite not in SUITES:
                bad(f"unknown suite {suite!r}; choose from {', '.join(SUITES)} or pass --data")
            if self.task in TASKS and suite not in TASKS[self.task]:
                bad(f"suite {suite!r} is not graded as {self.task}; --task {self.task} takes "
                    f"{', '.join(TASKS[self.task])}")
            unknown = set(self.benchmarks) - {b.key for b in SUITES[suite]}
            if unknown:
                keys = ", ".join(b.key for b in SUITES[suite])
                bad(f"unknown benchmark(s) {', '.join(sorted(unknown))} in suite {suite}; choose from {keys}")
        self.sampling.check()
        if self.dtype not in SAMPLER_DTYPES:
            bad(f"--dtype must be one of {', '.join(SAMPLER_DTYPES)}, got {self.dtype!r}")
        for name in ("chunk_size", "concurrency"):
            if getattr(self, name) < 1:
                bad(f"--{name.replace('_', '-')} must be >= 1")
        if self.limit is not None and self.limit < 1:
            bad(f"--limit must be >= 1 problems, got {self.limit}")
        self.judge.check()
        if not self.uses_server_chat:
            try:
                get_template(self.template_in_force)
            except ValueError as e:
                bad(str(e))


@dataclass
class BenchmarkSet:
    """Loaded problems of one benchmark."""

    key: str
    title: str
    source: str
    problems: list  # list[r1zero.tasks.Problem]


def _say(cfg: EvalConfig, msg: str) -> None:
    """A message to stderr (rich keeps long lines readable), unless --quiet."""
    if not cfg.quiet:
        Console(stderr=True, highlight=False).print(msg, markup=False)
