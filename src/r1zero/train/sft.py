"""`r1zero sft`: supervised fine-tuning on (prompt, response) pairs with `train`'s learner.

No second trainer: the examples become `TrainSequence`s with advantage 1, and the learner
built for RL (`setup_learner`: one process or FSDP2 ranks, LoRA, precision, packed
micro-batches) minimises its policy term −A log π(o_t) over the response tokens, i.e. the
negative log-likelihood of the responses (RAFT's term on given, not sampled, responses).
Prompt tokens are never targets: they sit before the response mask. A step reads
``batch_size`` examples in seeded epochs (`prompts_for_step`), makes one optimizer step,
logs `train`'s update metrics; checkpoints are `train`'s, so `r1zero train --init-from
RUN_DIR` (and `r1zero export`) read them.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import torch

from r1zero.cluster.placement import plan_cluster
from r1zero.config import SFTConfig, TrainConfig
from r1zero.config.sft_config import PROMPT_FIELDS, RESPONSE_FIELDS
from r1zero.data import DataError, load_records, pick_field
from r1zero.learner import checkpoint as ckpt
from r1zero.learner.batching import TrainSequence
from r1zero.logging import MetricsLogger, Progress, write_run_info
from r1zero.models import load_tokenizer, resolve_model_path
from r1zero.plotting import plot_run
from r1zero.rollout.hf import encode_prompts
from r1zero.templates import Template, get_template
from r1zero.train.setup import resolve_machine, setup_learner, setup_state
from r1zero.train.trainer import StopOnSignal, peak_rss_gb, prompts_for_step


def sft_examples(cfg: SFTConfig, template: Template, tokenizer) -> list[TrainSequence]:
    """Each record as prompt ids (the rendered template, tokenised as every engine does)
    and response ids (cut to ``max_response_tokens``), ended like a sampled response: the
    end-of-sequence token, unless the response already ends with one of the template's
    stop strings (r1: ``</answer>``)."""
    name, rows = load_records(cfg.data, split=cfg.split)
    keys = list(rows[0])
    q = pick_field(keys, cfg.prompt_field, PROMPT_FIELDS, "prompt", name)
    r = pick_field(keys, cfg.response_field, RESPONSE_FIELDS, "response", name)
    missing = [i for i, row in enumerate(rows) if not isinstance(row.get(q), str) or not isinstance(row.get(r), str)]
    if missing:
        raise DataError(f"{name}: record {missing[0]} lacks a text {q!r} or {r!r} field")
    prompts = encode_prompts(tokenizer, [template.render(row[q], tokenizer) for row in rows])
    out = []
    for row, prompt_ids in zip(rows, prompts):
        ids = tokenizer(row[r], add_special_tokens=False)["input_ids"]
        if not any(row[r].endswith(s) for s in template.stop):
            ids = [*ids, tokenizer.eos_token_id]
        out.append(TrainSequence(prompt_ids, ids[: cfg.max_response_tokens], 1.0))
    return out


def sft(cfg: SFTConfig) -> dict[str, float]:
    """Fine-tune; returns the last step's metrics. Ctrl-C / SIGTERM saves after the step in
    flight (exit 130); ``--resume RUN_DIR`` continues from the latest checkpoint."""
    tcfg = cfg.learner_config(stamp=time.strftime("%Y%m%d-%H%M%S"))
    run_dir = Path(tcfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = resolve_machine(tcfg)
    if resolved.threads is not None:
        torch.set_num_threads(int(resolved.threads.value))
    if tcfg.cluster.learners:  # Ray starts here, and only here
        resolved = dataclasses.replace(resolved, cluster=plan_cluster(tcfg, "hf"))
    torch.manual_seed(cfg.seed)
    resume_from, state = setup_state(tcfg, run_dir)
    model_path = resolve_model_path(cfg.model)
    tokenizer = load_tokenizer(str(resume_from or model_path))
    examples = sft_examples(cfg, get_template(cfg.template), tokenizer)
    learner, _ = setup_learner(tcfg, resolved, model_path, resume_from, state, run_dir)
    saved = {**dataclasses.asdict(cfg), "resolved": resolved.record()}
    write_run_info(run_dir, saved)
    logger = MetricsLogger(run_dir, tensorboard=cfg.tensorboard, wandb=cfg.wandb, config=saved)
    try:
        final = sft_loop(tcfg, learner, examples, state, logger, tokenizer, run_dir)
    finally:
        logger.close()
        learner.close()
    for path in plot_run(run_dir):
        print(f"plot: {path}")
    print(f"run: {run_dir}")
    return final


def sft_loop(tcfg: TrainConfig, learner, examples: list[TrainSequence], state: ckpt.TrainState,
             logger: MetricsLogger, tokenizer, run_dir: Path) -> dict[str, float]:
    """One optimizer step per step on ``prompts_per_step`` examples; log, checkpoint."""
    final: dict[str, float] = {}
    stop = StopOnSignal()
    with stop, Progress(tcfg.steps, start_step=state.step, enabled=tcfg.progress) as bar:
        for step in range(state.step, tcfg.steps):
            start = time.perf_counter()
            batch = [examples[i] for i in prompts_for_step(len(examples), step, tcfg.prompts_per_step, tcfg.seed)]
            final = learner.update(batch, step)
            state.step, state.optim_steps = step + 1, learner.optim_steps
            seconds = time.perf_counter() - start
            final.update({"perf/step_s": seconds, "perf/peak_rss_gb": peak_rss_gb(),
                          "perf/train_tokens_per_s": final.pop("perf/train_tokens", 0) / max(seconds, 1e-9),
                          "sft/response_tokens": float(sum(len(s.response_ids) for s in batch))})
            logger.log(state.step, final)
            bar.update(state.step, loss=final.get("loss/total"))
            last = state.step == tcfg.steps
            if stop.requested or last or (tcfg.save_every and state.step % tcfg.save_every == 0):
                path = learner.save(run_dir, tokenizer, state, tcfg.keep_checkpoints)
            if stop.requested and not last:
                print(f"\ninterrupted: saved {path}; continue with `r1zero sft ... --resume {run_dir}`",
                      file=sys.stderr)
                raise SystemExit(130)
    return final
