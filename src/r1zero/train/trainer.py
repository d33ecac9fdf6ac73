"""The RL training loop, top to bottom.

One step = rollout -> score -> advantages -> batch -> update -> sync -> log
(-> eval -> checkpoint). Each phase is a short function below; `train` strings them
together. Departures from the reference recipe (Liu et al. 2025, oat) are listed in
docs/algorithms.md; the CPU defaults (presets) are smaller in every dimension.
"""

from __future__ import annotations

import dataclasses
import resource
import shutil
import sys
import time
from collections.abc import Collection
from pathlib import Path

import torch

from r1zero.config import TrainConfig, config_diff, derive, saved_config
from r1zero.core.advantages import compute_advantages, zero_variance_groups
from r1zero.core.preferences import best_worst_pairs
from r1zero.core.rewards import cosine_reward, overlong_penalty, repetition_penalty
from r1zero.envs import env_metrics, episode_verdicts, graded_text, run_episodes
from r1zero.learner import checkpoint as ckpt
from r1zero.learner.batching import TrainSequence
from r1zero.learner.teacher import with_teacher
from r1zero.logging import Progress, write_rollouts
from r1zero.plotting import plot_run
from r1zero.rollout import pick_engine
from r1zero.rollout.base import Completion, SamplingParams
from r1zero.tasks import Problem, TaskVerdict, verify_all
from r1zero.train.ahead import read_ahead, write_ahead
from r1zero.train.setup import Trainer, build_trainer
from r1zero.train.signals import EXIT_INTERRUPTED, StopOnSignal
from r1zero.train.source import Drawn, make_source, staleness_metrics
from r1zero.train.stats import eval_metrics, rollout_metrics, rollout_records
from r1zero.utils import derive_seed


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
    """Phase 1: G episodes per problem, seeded by (seed, step, problem id, sample); a
    dynamic-sampling redraw adds its index, so a problem drawn twice gets new samples. An
    episode alternates model and environment turns (r1zero.envs); a single-turn task's is
    the one ``generate`` call, its completions unchanged."""
    params = SamplingParams(
        n=t.cfg.group_size,
        temperature=t.cfg.temperature,
        top_p=t.cfg.top_p,
        max_new_tokens=t.cfg.max_new_tokens_at(step),
        stop=t.template.stop,
    )
    prompts = [t.template.render(p.question, t.tokenizer) for p in problems]
    seeds = [derive_seed(t.cfg.seed, step, p.id) if draw == 0
             else derive_seed(t.cfg.seed, step, "draw", draw, p.id) for p in problems]
    completions = run_episodes(t.backend, t.env, t.tokenizer, problems, prompts, params, seeds)
    for c in completions:  # recorded: what a resumed run must not skip or repeat
        c.seed = derive_seed(seeds[c.prompt_index], c.sample_index)
    return completions


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
    verdicts, reward components ``{name: [B*G]}`` (`reward_components`), draws) over all
    draws, prompt-major; each draw's components are computed once, for its own responses."""
    problems: list[Problem] = []
    completions: list[Completion] = []
    verdicts: list[TaskVerdict] = []
    parts: dict[str, torch.Tensor] = {}
    for draw in range(t.cfg.algo.dynamic_sampling_draws):
        batch = problems_for_draw(t, step, draw)
        got = rollout(t, step, batch, draw)
        offset = len(problems)
        completions += [dataclasses.replace(c, prompt_index=c.prompt_index + offset) for c in got]
        scored = score(t, batch, got)
        verdicts += scored
        problems += batch
        new = reward_components(t, got, scored, step)  # per response: the draws concatenate
        parts = {k: torch.cat([parts[k], v]) if k in parts else v for k, v in new.items()}
        rewards = shaped_rewards(parts)  # [B*G]
        if int((~zero_variance_groups(rewards, t.cfg.group_size)).sum()) >= t.cfg.prompts_per_step:
            break
    return problems, completions, verdicts, parts, draw + 1


def draw_step(t: Trainer, step: int, version: int) -> Drawn:
    """Phases 1-2 as the rollout source asks for them (train/source.py): generate and grade
    step ``step`` with the engines at weight ``version``, which every completion records
    (per token: newer versions where weights arrived mid-generation, --rollout.partial)."""
    start = time.perf_counter()
    problems, completions, verdicts, parts, draws = draw_groups(t, step)
    for c in completions:
        c.token_versions = c.token_versions or [version] * len(c.token_ids)
        c.weight_version = c.token_versions[0] if c.token_versions else version
    return Drawn(step, problems, completions, verdicts, parts, shaped_rewards(parts), draws,
                 version, time.perf_counter() - start)


def reward_components(t: Trainer, completions: list[Completion], verdicts: list[TaskVerdict],
                      step: int) -> dict[str, torch.Tensor]:
    """Each part of the reward, ``[B*G]`` each: ``verifier`` (the task's), and when on
    ``cosine`` (replaces it: Yeo et al.'s length-scaled reward), ``repetition`` (added: the
    n-gram penalty), ``overlong`` (added: DAPO's soft punishment). Lengths are relative to
    the step's generation budget."""
    budget = t.cfg.max_new_tokens_at(step)
    r = t.cfg.reward
    lengths = torch.tensor([len(c.token_ids) for c in completions])  # [B*G]
    parts = {"verifier": torch.tensor([v.reward for v in verdicts], dtype=torch.float)}
    if "cosine" in r.shaping:
        parts["cosine"] = cosine_reward(
            lengths, torch.tensor([v.correct for v in verdicts], dtype=torch.bool),
            torch.tensor([c.truncated for c in completions], dtype=torch.bool), r.cosine_max_len or budget,
            correct_at_zero=r.cosine_correct_at_zero, correct_at_max=r.cosine_correct_at_max,
            wrong_at_zero=r.cosine_wrong_at_zero, wrong_at_max=r.cosine_wrong_at_max, exceed=r.cosine_exceed)
    if "repetition" in r.shaping:
        parts["repetition"] = torch.tensor(
            [repetition_penalty(c.text, r.repetition_ngram, r.repetition_penalty) for c in completions])
    if t.cfg.algo.overlong_buffer_frac > 0:
        cache = max(1, round(t.cfg.algo.overlong_buffer_frac * budget))
        parts["overlong"] = overlong_penalty(lengths, budget, cache)
    return parts


def shaped_rewards(parts: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[B*G]`` rewards from `reward_components`: the cosine reward when on, else the
    verifier's; plus the repetition penalty and DAPO's overlong punishment when on."""
    rewards = parts.get("cosine", parts["verifier"])
    for name in ("repetition", "overlong"):
        if name in parts:
            rewards = rewards + parts[name]
    return rewards


def score(t: Trainer, problems: list[Problem], completions: list[Completion]) -> list[TaskVerdict]:
    """Phase 2: verifiable rewards: the environment's verdict of an episode, or the task's
    verifier on the model's own text (`episode_verdicts`). By default truncated responses
    get 0 and stay in the loss (the reference recipe: an unfinished answer is not an
    answer). With --reward-workers N the verifier runs in N worker processes; the verdicts
    are the same."""
    texts = [graded_text(c) for c in completions]
    golds = [problems[c.prompt_index] for c in completions]

    def verify(idx: list[int]) -> list[TaskVerdict]:
        some_texts, some_golds = [texts[i] for i in idx], [golds[i] for i in idx]
        if t.verifiers is not None:
            return t.verifiers.verify(some_texts, some_golds)
        return verify_all(t.task, some_texts, some_golds, template=t.template)  # batched when it can

    raw = episode_verdicts(completions, verify)
    verdicts = []
    for c, v in zip(completions, raw):
        if c.truncated and t.cfg.truncation == "zero":
            v = TaskVerdict(0.0, False, v.format_ok, "truncated", v.extracted, {})
        verdicts.append(v)
    return verdicts


def advantages(t: Trainer, rewards: torch.Tensor) -> torch.Tensor:
    """Phase 3: sequence advantages from the algorithm's baseline and std switches."""
    return compute_advantages(
        rewards,
        t.cfg.group_size,
        baseline=t.cfg.algo.baseline,
        std_scale=t.cfg.algo.std_scale,
        std_unbiased=t.cfg.algo.std_unbiased,
        eps=t.cfg.algo.adv_eps,
    )  # [B*G]


def build_batch(
    t: Trainer, completions: list[Completion], adv: torch.Tensor, rewards: torch.Tensor,
    verdicts: list[TaskVerdict], step: int | None = None,
) -> list[TrainSequence]:
    """Phase 4: learner sequences. With `filter_zero_variance_groups` (DAPO), groups whose
    rewards all agree are dropped (their advantage is 0, they only cost compute), and of
    the rest at most prompts_per_step groups are kept (dynamic sampling may have drawn
    more). With overlong filtering (``algo.overlong_filter`` or ``truncation="mask"``)
    truncated responses are left out of the loss (they still count in their group's
    baseline). With ``sample_filter="correct"`` (RAFT) only correct responses are kept.
    Online DPO keeps each group's (best, worst) pair. With ``step``, each sequence carries
    its tokens' staleness (the mismatch metrics are split by it)."""
    G = t.cfg.group_size
    keep = torch.ones(len(completions), dtype=torch.bool)
    if t.cfg.algo.filter_zero_variance_groups:
        mixed = ~zero_variance_groups(rewards, G)  # [groups]
        mixed &= mixed.cumsum(0) <= t.cfg.prompts_per_step  # the first prompts_per_step of them
        keep = mixed.repeat_interleave(G)
    if t.cfg.truncation == "mask" or t.cfg.algo.overlong_filter:
        keep &= torch.tensor([not c.truncated for c in completions])
    if t.cfg.algo.sample_filter == "correct":
        keep &= torch.tensor([v.correct for v in verdicts], dtype=torch.bool)
    if t.cfg.algo.objective == "dpo":  # pairs only; the learner computes their advantages
        pairs = [p for p in best_worst_pairs(rewards, G) if all(completions[i].token_ids for i in p)]
        return [TrainSequence(completions[i].prompt_token_ids, completions[i].token_ids, sign,
                              completions[i].logprobs, pair=k, staleness=token_staleness(completions[i], step),
                              loss_mask=completions[i].loss_mask)
                for k, pair in enumerate(pairs) for i, sign in zip(pair, (1.0, -1.0))]
    # An episode's environment tokens stay in the sequence with loss weight 0 (loss_mask).
    return [
        TrainSequence(c.prompt_token_ids, c.token_ids, float(a), c.logprobs,
                      staleness=token_staleness(c, step), loss_mask=c.loss_mask)
        for c, a, k in zip(completions, adv.tolist(), keep.tolist())
        if k and c.token_ids
    ]


def token_staleness(c: Completion, step: int | None) -> list[int] | None:
    """``step`` minus the weight version of each token of ``c`` (None without a step)."""
    if step is None:
        return None
    return [step - v for v in (c.token_versions or [c.weight_version] * len(c.token_ids))]


def sync(t: Trainer) -> None:
    """Phase 6: push the new weights to the rollout engine (with LoRA: the adapter alone).
    The transformers backend samples from the learner's own module (the bf16 copy under
    --precision bf16, which `optimizer_step` already refreshed): nothing to send."""
    t.sync_bytes = 0 if t.shares_weights else t.learner.sync(t.backend)


def evaluate(t: Trainer, step: int) -> dict[str, float]:
    """Greedy held-out evaluation: the number that says whether RL helped."""
    if not t.test_problems:
        return {}
    params = SamplingParams(
        n=1, temperature=0.0, max_new_tokens=t.cfg.eval_max_new_tokens or t.cfg.max_new_tokens_at(step),
        stop=t.template.stop,
    )
    prompts = [t.template.render(p.question, t.tokenizer) for p in t.test_problems]
    seeds = [derive_seed(t.cfg.seed, "eval", p.id) for p in t.test_problems]
    completions = run_episodes(t.backend, t.env, t.tokenizer, t.test_problems, prompts, params, seeds)
    verdicts = score(t, t.test_problems, completions)
    return eval_metrics(completions, verdicts)


# ----------------------------------------------------------------------------- one step
def train_step(t: Trainer, step: int) -> dict[str, float]:
    """rollout -> score -> advantages -> batch -> update -> sync; returns the step's metrics.
    With --max-staleness k >= 1 the rollout (and its scores) was drawn ahead, while
    earlier steps trained; `take` then only waits for it if it is not ready yet."""
    t0 = time.perf_counter()
    drawn = t.source.take(step)
    problems, completions, verdicts, rewards, draws = (
        drawn.problems, drawn.completions, drawn.verdicts, drawn.rewards, drawn.draws)  # [B*G], prompt-major
    t1 = time.perf_counter()
    adv = advantages(t, rewards)  # [B*G]
    seqs = build_batch(t, completions, adv, rewards, verdicts, step)
    distilled: dict[str, float] = {}
    if t.teacher is not None:  # on-policy distillation: the teacher's token advantages
        seqs, distilled = with_teacher(t.teacher, seqs, t.cfg.teacher.weight)
    t2 = time.perf_counter()
    if t.cfg.cluster.colocate:
        t.backend.sleep()  # engines give their GPU memory to the update
    metrics = t.learner.update(seqs, step)  # (PPO: the critic's values and update inside)
    t.state.optim_steps = t.learner.optim_steps
    if t.cfg.cluster.colocate:
        t.backend.wake()
    t3 = time.perf_counter()
    t.source.sync(step + 1)  # the engines now hold version step + 1
    t4 = time.perf_counter()
    metrics.update(rollout_metrics(completions, verdicts, rewards, t.cfg.group_size))
    metrics.update(env_metrics(completions, verdicts))  # env/: turns, tool calls, sandbox time
    metrics.update(distilled)
    metrics.update(staleness_metrics(drawn))
    if t.cfg.reward.shaping:  # each shaper's own component, beside the verifier's
        metrics.update({f"reward/{k}": float(drawn.reward_parts[k].mean())
                        for k in ("verifier", *t.cfg.reward.shaping)})
    if t.cfg.algo.filter_zero_variance_groups:
        mixed = int((~zero_variance_groups(rewards, t.cfg.group_size)).sum())
        metrics["rollout/draws"] = draws  # rollout batches generated this step
        metrics["rollout/groups_kept"] = min(mixed, t.cfg.prompts_per_step)
    gen_tokens = sum(len(c.token_ids) for c in completions)
    metrics.update({
        "rollout/max_new_tokens": t.cfg.max_new_tokens_at(step),
        "perf/step_s": t4 - t0,
        "perf/gen_s": t1 - t0,
        "perf/rollout_s": drawn.seconds,
        "perf/train_s": t3 - t2,
        "perf/sync_s": t4 - t3,
        "perf/sync_bytes": t.sync_bytes,
        "perf/gen_tokens_per_s": gen_tokens / max(drawn.seconds, 1e-9),
        "perf/train_tokens_per_s": metrics.pop("perf/train_tokens", 0) / max(t3 - t2, 1e-9),
        "perf/peak_rss_gb": peak_rss_gb(),
    })
    # Numbered as metrics and checkpoints are (r1zero/logging.py): step + 1 = the step trained.
    records = rollout_records(step + 1, problems, completions, verdicts, adv)
    keep = records if t.cfg.rollout_samples < 0 else records[: t.cfg.rollout_samples]
    write_rollouts(t.run_dir, step + 1, keep)
    return metrics


def peak_rss_gb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ----------------------------------------------------------------------------- the loop
def train(cfg: TrainConfig, *, given: Collection[str] | None = None) -> dict[str, float]:
    """Run (or resume) training; returns the final metrics. ``given``: the fields the user
    set (the CLI passes the flags it parsed; from Python, every field that differs from
    `TrainConfig`'s defaults), which a resume checks against the run's saved config.

    Ctrl-C or SIGTERM (what schedulers send) lets the step in flight finish, saves a
    checkpoint whose step counter matches its weights, and exits with status 130. A second
    signal ends the process at once (train/signals.py); the last complete checkpoint
    stands and its next step is replayed exactly on resume. A run that fails before its
    first step removes the run folder it created (never one that existed before)."""
    cfg = derive(cfg, given=config_diff(cfg, TrainConfig()) if given is None else given,
                 saved=saved_config(cfg.resume) if cfg.resume else None,
                 stamp=time.strftime("%Y%m%d-%H%M%S"))  # config errors surface here, before any model load
    pick_engine(cfg.backend)  # a missing engine package too, before the run folder exists
    created, t = not Path(cfg.run_dir).exists(), None
    try:
        t = start(cfg)
        try:
            final = run(t)
        finally:
            close(t)
    except BaseException:
        if created and (t is None or t.state.step == 0):
            discard_run_dir(Path(cfg.run_dir))
        raise
    return finish(t, final)


def discard_run_dir(run_dir: Path) -> None:
    """Remove the folder of a run that failed before its first step: it holds nothing to
    resume (no checkpoint, no trained step), only a trap for the next `--resume`."""
    if run_dir.exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        print(f"warning: the run failed before its first step: removed the run folder it created, {run_dir} "
              "(nothing to resume; run the same command again once the cause below is fixed)",
              file=sys.stderr)


def start(cfg: TrainConfig) -> Trainer:
    """Build the run (train/setup.py) and wire its rollout source to this loop's phases; a
    resumed overlapped run first takes the steps its checkpoint held drawn ahead."""
    t = build_trainer(cfg)
    ahead = read_ahead(ckpt.latest_checkpoint(t.run_dir), t.state.step) if cfg.resume else []
    t.source = make_source(cfg.max_staleness, lambda step, version: draw_step(t, step, version),
                           lambda: sync(t), t.state.step, cfg.steps, ahead=ahead,
                           partial_engine=t.backend if cfg.rollout.partial else None,
                           deterministic=cfg.deterministic)
    return t


def run(t: Trainer) -> dict[str, float]:
    """The loop: (step-0 evaluation,) train_step, log, evaluate and checkpoint, step after
    step; the first signal stops after the step in flight (saved), the second at once."""
    cfg, final = t.cfg, {}
    with StopOnSignal(lambda: standing(t)) as stop, \
            Progress(cfg.steps, start_step=t.state.step, enabled=cfg.progress) as bar:
        if t.state.step == 0:
            final = log_eval(t, 0)
            t.state.heldout_start = final.get("eval/accuracy")
        for step in range(t.state.step, cfg.steps):
            metrics = train_step(t, step)
            t.state.step = step + 1
            if cfg.eval_every and (t.state.step % cfg.eval_every == 0 or t.state.step == cfg.steps):
                metrics.update(evaluate_timed(t, t.state.step))
            t.logger.log(t.state.step, metrics)
            bar.update(t.state.step, reward=metrics.get("reward/mean"),
                       accuracy=metrics.get("reward/accuracy"))
            final = metrics
            if stop.requested:
                interrupted(t)
            if cfg.save_every and t.state.step % cfg.save_every == 0 and t.state.step < cfg.steps:
                save(t)
        save(t)  # the final checkpoint, while the learner (and its processes) still runs
    return final


def interrupted(t: Trainer) -> None:
    """After the first signal: save (weights and step counter agree between steps), say
    how to continue, exit 130."""
    path = save(t)
    print(f"\ninterrupted: saved {path}; continue with `r1zero train --resume {t.run_dir}`",
          file=sys.stderr)
    raise SystemExit(EXIT_INTERRUPTED)


def standing(t: Trainer) -> str:
    """What a second signal leaves: the last complete checkpoint and how to continue."""
    return (f"The last complete checkpoint, {ckpt.latest_checkpoint(t.run_dir) or 'none'}, stands; "
            f"continue with `r1zero train --resume {t.run_dir}`")


def close(t: Trainer) -> None:
    """Stop the rollout source first (its producer may still be drawing and scoring), then
    the reward workers, the environment and the task's sandboxes, the logger, the engines
    and the learner."""
    if t.source is not None:
        t.source.close()
    if t.verifiers is not None:
        t.verifiers.close()
    t.env.close()  # its sandboxes, and the task's (the code task's tests)
    getattr(t.task, "close", lambda: None)()
    t.logger.close()
    t.backend.close()
    t.learner.close()
    if t.threads_before:
        torch.set_num_threads(t.threads_before)  # a no-op after vLLM-CPU froze the count


def evaluate_timed(t: Trainer, step: int) -> dict[str, float]:
    start = time.perf_counter()
    with t.source.engines():  # not while the producer draws or a sync runs
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
    """A checkpoint of the learner (PPO's critic inside the same atomic directory) and of the
    steps drawn ahead and not yet trained on (train/ahead.py), read while no draw is in
    flight, so that a resume loses and repeats nothing."""
    with t.source.quiesced():
        ahead = t.source.waiting()
        return ckpt.save_with(t.run_dir, t.tokenizer, t.state, t.cfg.keep_checkpoints,
                              lambda path: (t.learner.write(path), write_ahead(path, ahead)))


def finish(t: Trainer, final: dict[str, float]) -> dict[str, float]:
    """Plots, then the summary line scripts read (`heldout_accuracy: a -> b`)."""
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
