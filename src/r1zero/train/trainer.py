"""The RL training loop, top to bottom.

One step = rollout -> score -> advantages -> batch -> update -> sync -> log
(-> eval -> checkpoint). Each phase is a short function below; `train` strings them
together. Departures from the reference recipe (Liu et al. 2025, oat) are listed in
docs/algorithms.md; the CPU defaults (presets) are smaller in every dimension.
"""

from __future__ import annotations

import dataclasses
import math
import resource
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from r1zero.config import TrainConfig
from r1zero.core.advantages import compute_advantages, zero_variance_groups
from r1zero.core.algorithms import AlgorithmConfig
from r1zero.core import losses
from r1zero.core.metrics import summarize_loss_stats
from r1zero.core.rewards import overlong_penalty
from r1zero.rollout.base import Completion, RolloutBackend, SamplingParams
from r1zero.tasks import Problem, Task, TaskVerdict
from r1zero.templates import Template
from r1zero.train import checkpoint as ckpt
from r1zero.train.batching import MicroBatch, TrainSequence, make_micro_batches
from r1zero.train.learner import response_logprobs
from r1zero.train.precision import copy_weights, fold_gradients
from r1zero.train.stats import eval_metrics, rollout_metrics, rollout_records
from r1zero.logging import write_rollouts
from r1zero.utils import derive_seed


@dataclass
class Trainer:
    """Everything one run holds; built by `r1zero.train.setup.build_trainer`."""

    cfg: TrainConfig
    algo: AlgorithmConfig
    run_dir: Path
    task: Task
    template: Template
    train_problems: list[Problem]
    test_problems: list[Problem]
    policy: torch.nn.Module
    """The fp32 (master) weights: what the optimizer steps, checkpoints save and syncs send."""
    learner: torch.nn.Module
    """What forward/backward runs on: the policy itself, or its bf16 copy (precision.py)."""
    packed: bool
    """Packed micro-batches (batching.py) or right-padded rows."""
    tokenizer: object
    ref_policy: torch.nn.Module | None
    backend: RolloutBackend
    optimizer: torch.optim.Optimizer
    logger: object
    state: ckpt.TrainState
    shares_weights: bool = False
    """The rollout engine samples from ``learner`` itself (transformers backend)."""


# ----------------------------------------------------------------------------- phases
def prompts_for_step(num_problems: int, step: int, per_step: int, seed: int) -> list[int]:
    """Problem indices for a step: epochs of seeded permutations, read in order.

    The data position is a pure function of the step, so resuming at step s continues
    exactly where the run stopped.
    """
    out = []
    for k in range(step * per_step, (step + 1) * per_step):
        epoch, pos = divmod(k, num_problems)
        g = torch.Generator().manual_seed(derive_seed(seed, "epoch", epoch))
        out.append(int(torch.randperm(num_problems, generator=g)[pos]))
    return out


def rollout(t: Trainer, step: int, problems: list[Problem], draw: int = 0) -> list[Completion]:
    """Phase 1: G responses per problem, seeded by (seed, step, problem id, sample); a
    dynamic-sampling redraw adds its index, so a problem drawn twice gets new samples."""
    params = SamplingParams(
        n=t.cfg.group_size,
        temperature=t.cfg.temperature,
        top_p=t.cfg.top_p,
        max_new_tokens=t.cfg.max_new_tokens,
        stop=t.template.stop,
    )
    prompts = [t.template.render(p.question, t.tokenizer) for p in problems]
    seeds = [derive_seed(t.cfg.seed, step, p.id) if draw == 0
             else derive_seed(t.cfg.seed, step, "draw", draw, p.id) for p in problems]
    return t.backend.generate(prompts, params, seeds)


def problems_for_draw(t: Trainer, step: int, draw: int) -> list[Problem]:
    """The step's problems (a pure function of the step), and for dynamic-sampling redraw
    k > 0 a seeded random batch of further problems."""
    n, per_step = len(t.train_problems), t.cfg.prompts_per_step
    if draw == 0:
        idx = prompts_for_step(n, step, per_step, t.cfg.seed)
    else:
        g = torch.Generator().manual_seed(derive_seed(t.cfg.seed, "draw", step, draw))
        idx = torch.randint(n, (per_step,), generator=g).tolist()
    return [t.train_problems[i] for i in idx]


def draw_groups(t: Trainer, step: int):
    """Phases 1-2 with DAPO's dynamic sampling: roll out and score one batch; while the
    step holds fewer than prompts_per_step groups whose rewards differ, and the cap
    ``dynamic_sampling_draws`` allows, roll out another. Returns (problems, completions,
    verdicts, draws) with the completions of all draws, prompt-major."""
    problems: list[Problem] = []
    completions: list[Completion] = []
    verdicts: list[TaskVerdict] = []
    for draw in range(t.algo.dynamic_sampling_draws):
        batch = problems_for_draw(t, step, draw)
        got = rollout(t, step, batch, draw)
        offset = len(problems)
        completions += [dataclasses.replace(c, prompt_index=c.prompt_index + offset) for c in got]
        verdicts += score(t, batch, got)
        problems += batch
        mixed = int((~zero_variance_groups(shaped_rewards(t, completions, verdicts),
                                           t.cfg.group_size)).sum())
        if mixed >= t.cfg.prompts_per_step:
            break
    return problems, completions, verdicts, draw + 1


def shaped_rewards(t: Trainer, completions: list[Completion], verdicts: list[TaskVerdict]) -> torch.Tensor:
    """``[B*G]`` rewards: the verifier's, plus DAPO's soft overlong punishment when on."""
    rewards = torch.tensor([v.reward for v in verdicts], dtype=torch.float)  # [B*G]
    if t.algo.overlong_buffer_frac > 0:
        lengths = torch.tensor([len(c.token_ids) for c in completions])
        cache = max(1, round(t.algo.overlong_buffer_frac * t.cfg.max_new_tokens))
        rewards = rewards + overlong_penalty(lengths, t.cfg.max_new_tokens, cache)
    return rewards


def score(t: Trainer, problems: list[Problem], completions: list[Completion]) -> list[TaskVerdict]:
    """Phase 2: verifiable rewards. By default truncated responses get 0 and stay in the
    loss (the reference recipe: an unfinished answer is not an answer)."""
    verdicts = []
    for c in completions:
        v = t.task.verify(c.text, problems[c.prompt_index], template=t.template)
        if c.truncated and t.cfg.truncation == "zero":
            v = TaskVerdict(0.0, False, v.format_ok, "truncated", v.extracted, {})
        verdicts.append(v)
    return verdicts


def advantages(t: Trainer, rewards: torch.Tensor) -> torch.Tensor:
    """Phase 3: sequence advantages from the algorithm's baseline and std switches."""
    return compute_advantages(
        rewards,
        t.cfg.group_size,
        baseline=t.algo.baseline,
        std_scale=t.algo.std_scale,
        std_unbiased=t.algo.std_unbiased,
        eps=t.algo.adv_eps,
    )  # [B*G]


def build_batch(
    t: Trainer, completions: list[Completion], adv: torch.Tensor, rewards: torch.Tensor
) -> list[TrainSequence]:
    """Phase 4: learner sequences. With `filter_zero_variance_groups` (DAPO), groups whose
    rewards all agree are dropped (their advantage is 0, they only cost compute), and of
    the rest at most prompts_per_step groups are kept (dynamic sampling may have drawn
    more). With overlong filtering (``algo.overlong_filter`` or ``truncation="mask"``)
    truncated responses are left out of the loss (they still count in their group's
    baseline)."""
    G = t.cfg.group_size
    keep = torch.ones(len(completions), dtype=torch.bool)
    if t.algo.filter_zero_variance_groups:
        mixed = ~zero_variance_groups(rewards, G)  # [groups]
        mixed &= mixed.cumsum(0) <= t.cfg.prompts_per_step  # the first prompts_per_step of them
        keep = mixed.repeat_interleave(G)
    if t.cfg.truncation == "mask" or t.algo.overlong_filter:
        keep &= torch.tensor([not c.truncated for c in completions])
    return [
        TrainSequence(c.prompt_token_ids, c.token_ids, float(a), c.logprobs)
        for c, a, k in zip(completions, adv.tolist(), keep.tolist())
        if k and c.token_ids
    ]


def micro_batch_loss(t: Trainer, mb: MicroBatch, norm: losses.LossNormalizer,
                     old_lp: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Forward one micro-batch and return (loss share, summable stats)."""
    want_entropy = "grad" if t.algo.entropy_coef else True
    lp, ent = response_logprobs(
        t.learner, mb, temperature=t.cfg.temperature, with_entropy=want_entropy,
        precision=t.cfg.precision,
    )  # [n, L-1] each
    device, mask = lp.device, mb.response_mask.to(lp.device)  # mask [n, L-1]
    ref_lp = None
    if t.ref_policy is not None:
        with torch.no_grad():
            ref_lp, _ = response_logprobs(t.ref_policy, mb, temperature=t.cfg.temperature,
                                          precision=t.cfg.precision)
    sampler = None if mb.sampler_logprobs is None else mb.sampler_logprobs.to(device)
    loss, stats = losses.policy_loss(
        lp, None if old_lp is None else old_lp.to(device),  # None: on-policy, ratio 1
        mb.advantages.to(device), mask, norm, t.algo,
        ref_logprobs=ref_lp, sampler_logprobs=sampler, entropy=ent,
    )
    if sampler is not None:
        # How far the learner's log-probs are from what the sampler reported (vLLM bf16 vs
        # learner): large gaps make the on-policy assumption false (see tis_cap).
        stats["sampler_gap_sum"] = ((lp.detach() - sampler).abs() * mask).sum()
    return loss, stats


def minibatches(seqs: list[TrainSequence], size: int | None, seed: int) -> list[list[TrainSequence]]:
    """The rollout's responses in a seeded random order, cut into optimizer steps of
    ``size`` responses (the last may be smaller); None = one step over the whole rollout,
    in rollout order. oat shuffles responses the same way (numpy, per epoch); here the
    partition is drawn once per rollout and reused by every epoch, so that π_old can be
    computed once per micro-batch."""
    if not seqs:
        return [[]]  # nothing survived scoring/filtering: still one (zero-gradient) step
    if not size or size >= len(seqs):
        return [seqs]
    order = torch.randperm(len(seqs), generator=torch.Generator().manual_seed(seed)).tolist()
    shuffled = [seqs[i] for i in order]
    return [shuffled[i : i + size] for i in range(0, len(shuffled), size)]


def step_norm(t: Trainer, mini: list[TrainSequence]) -> losses.LossNormalizer:
    """The loss normaliser of one optimizer step, over every response of that step (zero
    advantages included): N responses, T response tokens, C = the generation budget."""
    return losses.LossNormalizer(
        num_sequences=float(len(mini)),
        num_tokens=float(sum(len(s.response_ids) for s in mini)),
        constant=t.algo.norm_constant_for(t.cfg.max_new_tokens),
    )


def plan_steps(t: Trainer, seqs: list[TrainSequence], step: int):
    """``[(normaliser, micro-batches)]``, one per optimizer step of an epoch.

    With no KL and no entropy term a response with A = 0 has loss 0 and gradient 0 for any
    ratio, so it is left out of the forward/backward (exact; it still counts in its step's
    normaliser). Early in RL most groups agree (all wrong), which often halves the cost.
    """
    skip = t.cfg.skip_zero_advantage and t.algo.kl_beta == 0 and t.algo.entropy_coef == 0
    plan = []
    for mini in minibatches(seqs, t.cfg.train_batch_size, derive_seed(t.cfg.seed, "minibatch", step)):
        active = [s for s in mini if s.advantage != 0.0] if skip else mini
        mbs = make_micro_batches(active, t.cfg.micro_batch_tokens, t.tokenizer.pad_token_id,
                                 t.packed) if active else []
        plan.append((step_norm(t, mini), mbs))
    return plan


def old_logprobs(t: Trainer, plan, needed: bool) -> list[list[torch.Tensor | None]]:
    """π_old log-probs of every micro-batch, computed once per rollout before the first
    optimizer step; needed whenever the rollout takes more than one optimizer step (more
    than one mini-batch or epoch). With one step the update is on-policy (ratio 1)."""
    if not needed:
        return [[None] * len(mbs) for _, mbs in plan]
    with torch.no_grad():
        return [[response_logprobs(t.learner, mb, temperature=t.cfg.temperature,
                                   precision=t.cfg.precision)[0] for mb in mbs]
                for _, mbs in plan]


def update(t: Trainer, seqs: list[TrainSequence], step: int = 0) -> dict[str, float]:
    """Phase 5: epochs x optimizer steps of ``train_batch_size`` responses, each step a
    gradient accumulation over micro-batches. Each step's loss normaliser comes from the
    whole step, so micro-batching is invisible (docs/algorithms.md, "update schedule")."""
    plan = plan_steps(t, seqs, step)
    olds = old_logprobs(t, plan, needed=len(plan) * t.cfg.epochs > 1)
    totals: dict[str, torch.Tensor] = {}
    grad_norms: list[float] = []
    t.learner.train()
    for _ in range(t.cfg.epochs):
        for (norm, mbs), old_mbs in zip(plan, olds):
            t.optimizer.zero_grad(set_to_none=True)
            for mb, old in zip(mbs, old_mbs):
                loss, stats = micro_batch_loss(t, mb, norm, old)
                loss.backward()
                fold_gradients(t.learner, t.policy)  # bf16 grads -> fp32 master grads (or no-op)
                for k, v in stats.items():
                    totals[k] = totals.get(k, 0.0) + v.detach().cpu()
            grad_norms.append(optimizer_step(t, zero_grad=not mbs))
    t.learner.eval()
    out = summarize_loss_stats(totals) if totals else {}
    if "sampler_gap_sum" in totals:
        out["policy/sampler_logprob_gap"] = float(totals["sampler_gap_sum"] / totals["num_tokens"])
    out["optim/grad_norm"] = sum(grad_norms) / len(grad_norms)
    out["optim/steps"] = len(grad_norms)
    out["optim/lr"] = t.optimizer.param_groups[0]["lr"]
    out["perf/train_tokens"] = sum(mb.num_tokens for _, mbs in plan for mb in mbs) * t.cfg.epochs
    return out


def optimizer_step(t: Trainer, zero_grad: bool = False) -> float:
    """Clip, step at the scheduled learning rate, refresh the compute copy; returns the
    grad-norm. A step with nothing to forward (``zero_grad``: every response skipped for
    A = 0, or filtered out) is still taken with a zero gradient: Adam then moves the
    weights by its momentum, exactly as after a full forward/backward of zero-advantage
    responses. One rule for an all-skipped and an all-filtered step."""
    if zero_grad:
        for p in t.policy.parameters():
            p.grad = torch.zeros_like(p)
    grad_norm = clip_gradients(t.policy, t.cfg.max_grad_norm)
    for group in t.optimizer.param_groups:
        group["lr"] = scheduled_lr(t.cfg, t.state.optim_steps)
    t.optimizer.step()
    t.state.optim_steps += 1
    t.optimizer.zero_grad(set_to_none=True)
    copy_weights(t.policy, t.learner)
    return grad_norm


def scheduled_lr(cfg: TrainConfig, done: int) -> float:
    """lr of optimizer step ``done`` (0-based): linear warm-up over ``lr_warmup_steps``, then
    constant (the reference recipe), linear decay to 0, or cosine decay to 0 over the run's
    ``total_optim_steps``."""
    if done < cfg.lr_warmup_steps:
        return cfg.lr * (done + 1) / cfg.lr_warmup_steps
    if cfg.lr_schedule == "constant":
        return cfg.lr
    total = max(cfg.total_optim_steps() - cfg.lr_warmup_steps, 1)
    frac = min((done - cfg.lr_warmup_steps) / total, 1.0)
    if cfg.lr_schedule == "linear":
        return cfg.lr * (1.0 - frac)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * frac))


def clip_gradients(model: torch.nn.Module, max_norm: float) -> float:
    """Global grad-norm (before clipping); clips when max_norm > 0."""
    params = [p for p in model.parameters() if p.grad is not None]
    limit = max_norm if max_norm > 0 else float("inf")
    return float(torch.nn.utils.clip_grad_norm_(params, limit))


def sync(t: Trainer) -> None:
    """Phase 6: push the new weights to the rollout engine. The transformers backend
    samples from the learner's own module (the bf16 copy under --precision bf16, which
    `optimizer_step` already refreshed): nothing to send."""
    if not t.shares_weights:
        t.backend.update_weights(t.policy.state_dict().items())


def evaluate(t: Trainer, step: int) -> dict[str, float]:
    """Greedy held-out evaluation: the number that says whether RL helped."""
    if not t.test_problems:
        return {}
    params = SamplingParams(
        n=1, temperature=0.0, max_new_tokens=t.cfg.eval_max_new_tokens or t.cfg.max_new_tokens,
        stop=t.template.stop,
    )
    prompts = [t.template.render(p.question, t.tokenizer) for p in t.test_problems]
    seeds = [derive_seed(t.cfg.seed, "eval", p.id) for p in t.test_problems]
    completions = t.backend.generate(prompts, params, seeds)
    verdicts = score(t, t.test_problems, completions)
    return eval_metrics(completions, verdicts)


# ----------------------------------------------------------------------------- one step
def train_step(t: Trainer, step: int) -> dict[str, float]:
    """rollout -> score -> advantages -> batch -> update -> sync; returns the step's metrics."""
    t0 = time.perf_counter()
    problems, completions, verdicts, draws = draw_groups(t, step)  # [B*G], prompt-major
    t1 = time.perf_counter()
    rewards = shaped_rewards(t, completions, verdicts)  # [B*G]
    adv = advantages(t, rewards)  # [B*G]
    seqs = build_batch(t, completions, adv, rewards)
    t2 = time.perf_counter()
    metrics = update(t, seqs, step)
    t3 = time.perf_counter()
    sync(t)
    t4 = time.perf_counter()
    metrics.update(rollout_metrics(completions, verdicts, rewards, t.cfg.group_size))
    if t.algo.filter_zero_variance_groups:
        mixed = int((~zero_variance_groups(rewards, t.cfg.group_size)).sum())
        metrics["rollout/draws"] = draws  # rollout batches generated this step
        metrics["rollout/groups_kept"] = min(mixed, t.cfg.prompts_per_step)
    gen_tokens = sum(len(c.token_ids) for c in completions)
    metrics.update({
        "perf/step_s": t4 - t0,
        "perf/gen_s": t1 - t0,
        "perf/train_s": t3 - t2,
        "perf/sync_s": t4 - t3,
        "perf/gen_tokens_per_s": gen_tokens / max(t1 - t0, 1e-9),
        "perf/train_tokens_per_s": metrics.pop("perf/train_tokens", 0) / max(t3 - t2, 1e-9),
        "perf/peak_rss_gb": peak_rss_gb(),
    })
    records = rollout_records(step, problems, completions, verdicts, adv)
    keep = records if t.cfg.rollout_samples < 0 else records[: t.cfg.rollout_samples]
    write_rollouts(t.run_dir, step, keep)
    return metrics


def peak_rss_gb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ----------------------------------------------------------------------------- the loop
def train(cfg: TrainConfig, *, given_against: TrainConfig | None = None) -> dict[str, float]:
    """Run (or resume) training; returns the final metrics.

    Ctrl-C or SIGTERM (what schedulers send) lets the step in flight finish, saves a
    checkpoint whose step counter matches its weights, and exits with status 130. A second
    signal stops at once: if that lands inside an update, nothing is saved and the last
    checkpoint stands (its step is replayed exactly on resume)."""
    from r1zero.train.setup import build_trainer, prepare_config

    cfg = prepare_config(cfg, given_against)  # config errors surface here, before any model load
    t = build_trainer(cfg)
    from r1zero.logging import Progress

    final: dict[str, float] = {}
    stop = StopOnSignal()
    try:
        with stop, Progress(cfg.steps, start_step=t.state.step, enabled=cfg.progress) as bar:
            if t.state.step == 0:
                final = log_eval(t, 0)
                t.state.heldout_start = final.get("eval/accuracy")
            for step in range(t.state.step, cfg.steps):
                stop.consistent = False  # weights move before the counter does
                metrics = train_step(t, step)
                t.state.step = step + 1
                if cfg.eval_every and (t.state.step % cfg.eval_every == 0 or t.state.step == cfg.steps):
                    metrics.update(evaluate_timed(t, t.state.step))
                t.logger.log(t.state.step, metrics)
                stop.consistent = True
                bar.update(t.state.step, reward=metrics.get("reward/mean"),
                           accuracy=metrics.get("reward/accuracy"))
                final = metrics
                if stop.requested:
                    raise KeyboardInterrupt
                if cfg.save_every and t.state.step % cfg.save_every == 0 and t.state.step < cfg.steps:
                    save(t)
    except KeyboardInterrupt:
        if stop.consistent:
            path = save(t)
            print(f"\ninterrupted: saved {path}; continue with `r1zero train --resume "
                  f"{t.run_dir}`", file=sys.stderr)
        else:
            last = ckpt.latest_checkpoint(t.run_dir)
            print(f"\ninterrupted inside step {t.state.step + 1}: not saved; the last "
                  f"checkpoint ({last or 'none'}) stands; continue with `r1zero train "
                  f"--resume {t.run_dir}`", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        t.logger.close()
        t.backend.close()
    save(t)
    return finish(t, final)


class StopOnSignal:
    """SIGINT / SIGTERM handler for the loop: the first signal asks the loop to stop after
    the step in flight (``requested``); the second raises KeyboardInterrupt at once.
    ``consistent`` is False while a step has moved the weights but not yet the counter.
    Installed only in the main thread (signal handlers cannot be set elsewhere)."""

    def __init__(self) -> None:
        self.requested = False
        self.consistent = True
        self._old: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(f"\n{signal.Signals(signum).name}: stopping after this step (again to stop now)",
              file=sys.stderr)

    def __enter__(self) -> "StopOnSignal":
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def evaluate_timed(t: Trainer, step: int) -> dict[str, float]:
    start = time.perf_counter()
    out = evaluate(t, step)
    out["perf/eval_s"] = time.perf_counter() - start
    return out


def log_eval(t: Trainer, step: int) -> dict[str, float]:
    """Step-0 evaluation of the untouched model, logged as its own record."""
    if not t.cfg.eval_every:
        return {}
    metrics = evaluate_timed(t, step)
    t.logger.log(step, metrics)
    return metrics


def save(t: Trainer) -> Path:
    return ckpt.save_checkpoint(t.run_dir, t.policy, t.tokenizer, t.optimizer, t.state,
                                t.cfg.keep_checkpoints)


def finish(t: Trainer, final: dict[str, float]) -> dict[str, float]:
    """Plots, then the summary line scripts read (`heldout_accuracy: a -> b`)."""
    from r1zero.plotting import plot_run

    try:
        for path in plot_run(t.run_dir):
            print(f"plot: {path}")
    except (ValueError, OSError) as e:  # a plot must never cost the finished run
        print(f"warning: plotting failed: {e}", file=sys.stderr)
    print(f"run: {t.run_dir}")
    start, end = t.state.heldout_start, final.get("eval/accuracy")
    if start is not None and end is not None:
        print(f"heldout_accuracy: {start:.4f} -> {end:.4f}")
    return final
