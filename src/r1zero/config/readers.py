"""Which flags a run reads, as data: a flag typed on the command line that the chosen task,
engine, algorithm or switch never reads is an error naming it and the fix, not silence
(`check_read`, called by `derive`).

Each row of `READERS` names some fields, who reads them (in words, for the message), the
settings that decide it, and the test on the resolved config. A field without a row is read
by every run. ``--backend auto`` counts as a possible vLLM engine: whether vLLM is importable
is decided when the run is built, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from r1zero.config.sections import ConfigError
from r1zero.config.train_config import TrainConfig


@dataclass(frozen=True)
class Reader:
    """Fields read only where ``reads(cfg)`` holds."""

    fields: tuple[str, ...]
    """Dotted field names (``task.train_path``)."""
    readers: str
    """Who reads them, completing "read only by ..."."""
    decided_by: tuple[str, ...]
    """The fields whose values decide it (quoted in the message: the fix changes them)."""
    reads: Callable[[TrainConfig], bool]


def _task(*names: str) -> Callable[[TrainConfig], bool]:
    """Read by these built-in tasks and by any user task (``pkg.mod:factory`` receives the
    whole TaskConfig)."""
    return lambda c: c.task.name in names or ":" in c.task.name


def _vllm(c: TrainConfig) -> bool:
    return c.backend in ("vllm", "auto")


FILE_TASKS = ("math", "gsm8k")
GENERATED_TASKS = ("arithmetic", "countdown", "knights_knaves")

READERS: tuple[Reader, ...] = (
    # --- the task
    Reader(("task.train_path", "task.test_path"), "the tasks that read problem files (math, "
           "gsm8k, code) and your own task", ("task.name",), _task(*FILE_TASKS, "code")),
    Reader(("task.question_field", "task.answer_field"), "the tasks that read question/answer "
           "files (math, gsm8k) and your own task", ("task.name",), _task(*FILE_TASKS)),
    Reader(("task.strict_data",), "the tasks that read problem files (math, gsm8k, code) and "
           "your own task", ("task.name",), _task(*FILE_TASKS, "code")),
    Reader(("task.num_train", "task.num_test", "task.seed"), "the generated tasks "
           "(arithmetic, countdown, knights_knaves, code with a path 'generated') and your own "
           "task", ("task.name", "task.train_path", "task.test_path"),
           lambda c: _task(*GENERATED_TASKS)(c) or (c.task.name == "code" and "generated" in
                                                   (c.task.train_path, c.task.test_path))),
    Reader(("task.extract",), "the tasks graded as math (math, gsm8k, arithmetic) and your "
           "own task", ("task.name",), _task("math", "gsm8k", "arithmetic")),
    Reader(("task.digits", "task.operations"), "the arithmetic task and your own task",
           ("task.name",), _task("arithmetic")),
    Reader(("task.num_people",), "the knights_knaves task and your own task", ("task.name",),
           _task("knights_knaves")),
    Reader(("task.num_numbers",), "the countdown task and your own task", ("task.name",),
           _task("countdown")),
    # --- the rollout engine
    Reader(("max_model_len", "vllm_dtype", "cluster.engine_tp"), "a vLLM engine", ("backend",), _vllm),
    Reader(("vllm_gpu_memory_utilization",), "a vLLM engine on a GPU", ("backend", "device"),
           lambda c: _vllm(c) and c.device != "cpu"),
    Reader(("vllm_cpu_kv_cache_gib",), "a vLLM engine on a CPU", ("backend", "device"),
           lambda c: _vllm(c) and c.device != "cuda"),
    Reader(("threads",), "a run on the CPU", ("device",), lambda c: c.device != "cuda"),
    # --- the algorithm (after --algorithm became switches)
    Reader(("critic.model", "critic.lr", "critic.lr_warmup_steps", "algo.gae_gamma",
            "algo.gae_lambda", "algo.value_clip"), "PPO's critic (--algorithm ppo, or "
           "--algo.baseline value)", ("algorithm", "algo.baseline"), lambda c: c.algo.needs_critic),
    Reader(("algo.dpo_beta", "algo.dpo_reference"), "online DPO (--algorithm online_dpo, or "
           "--algo.objective dpo)", ("algorithm", "algo.objective"), lambda c: c.algo.objective == "dpo"),
    Reader(("algo.norm_constant",), "the seq-mean-token-sum-norm aggregation (Dr. GRPO)",
           ("algorithm", "algo.aggregation"), lambda c: c.algo.aggregation == "seq-mean-token-sum-norm"),
    Reader(("algo.kl_estimator",), "a KL term (--algo.kl-beta > 0)", ("algo.kl_beta",),
           lambda c: c.algo.kl_beta > 0),
    Reader(("algo.adv_eps",), "std-scaled advantages (--algo.std-scale group or batch)",
           ("algorithm", "algo.std_scale"), lambda c: c.algo.std_scale != "none"),
    # --- reward shaping
    Reader(tuple(f"reward.cosine_{k}" for k in ("correct_at_zero", "correct_at_max", "wrong_at_zero",
                                                "wrong_at_max", "exceed", "max_len")),
           "the cosine shaper (--reward.shaping cosine)", ("reward.shaping",),
           lambda c: "cosine" in c.reward.shaping),
    Reader(("reward.repetition_ngram", "reward.repetition_penalty"), "the repetition shaper "
           "(--reward.shaping repetition)", ("reward.shaping",), lambda c: "repetition" in c.reward.shaping),
    # --- the judge
    Reader(("judge.base_url", "judge.endpoint", "judge.api_key_env", "judge.concurrency",
            "judge.request_timeout_s", "judge.max_new_tokens", "judge.cache_dir"),
           "the LLM judge, which is off unless --judge.model names one", ("judge.model",),
           lambda c: c.judge.enabled),
    Reader(("judge.audit", "judge.limit"), "`r1zero eval` (--judge.audit) and `r1zero analyze` "
           "(--judge.limit), never by `r1zero train`", (), lambda c: False),
    # --- the cluster
    Reader(("cluster.address", "cluster.num_cpus", "cluster.cpus_per_actor"), "a Ray cluster "
           "(--cluster.learners or --cluster.engines > 0)", ("cluster.learners", "cluster.engines"),
           lambda c: c.cluster.learners > 0 or c.cluster.engines > 0),
    Reader(("cluster.activation_checkpointing", "cluster.cpu_offload"), "learner ranks "
           "(--cluster.learners > 0)", ("cluster.learners",), lambda c: c.cluster.learners > 0),
    # --- outputs
    Reader(("eval_max_new_tokens",), "the held-out evaluation, which --eval-every 0 turns off",
           ("eval_every",), lambda c: c.eval_every > 0),
    Reader(("wandb_project",), "the W&B sink (--wandb)", ("wandb",), lambda c: c.wandb),
)


def check_read(cfg: TrainConfig, given: Collection[str]) -> None:
    """Raise ConfigError when a field in ``given`` (dotted names the user set) is one this
    resolved ``cfg`` never reads: one line naming each such flag, who would read it, the
    settings that decide, and the fix."""
    unread = [(name, row) for row in READERS if not row.reads(cfg) for name in row.fields if name in given]
    if len(unread) == 1:
        name, row = unread[0]
        fix = f"Drop {flag(name)}" + (f", or change {_flags(row.decided_by)} so that it applies"
                                      if row.decided_by else "")
        raise ConfigError(f"{flag(name)} has no effect in this run: it is {why_unread(row, cfg)}. {fix}")
    if unread:
        raise ConfigError(f"{len(unread)} flags have no effect in this run: "
                          + "; ".join(f"{flag(n)} is {why_unread(r, cfg)}" for n, r in unread)
                          + ". Drop them, or change the settings named so that they apply")


def why_unread(row: Reader, cfg: TrainConfig) -> str:
    """``read only by the arithmetic task ..., and here --task.name is 'math'``."""
    here = ", ".join(f"{flag(d)} is {dotted_get(cfg, d)!r}" for d in row.decided_by)
    return f"read only by {row.readers}" + (f", and here {here}" if here else "")


def _flags(names: tuple[str, ...]) -> str:
    return " / ".join(flag(n) for n in names)


def flag(name: str) -> str:
    """The command-line spelling of a (dotted) field name."""
    return "--" + name.replace("_", "-")


def dotted_get(cfg: Any, dotted: str) -> Any:
    """``cfg.a.b`` for ``"a.b"``."""
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg
