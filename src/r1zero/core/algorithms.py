"""Named RL algorithms as data: each is one `AlgorithmConfig`, a combination of the same switches.

Adding a variant is a new row in `ALGORITHMS` (and a test), never a new code path. Dr. GRPO is
written as GRPO plus its two labelled changes, exactly as the paper presents it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from typing import Any

from r1zero.core.choices import (  # torch-free: configs validate without importing torch
    AGGREGATIONS,
    BASELINES,
    CAPPED_CORRECTIONS,
    IS_CORRECTIONS,
    KL_ESTIMATORS,
    OBJECTIVES,
    POLICY_TERMS,
    RATIO_LEVELS,
    SAMPLE_FILTERS,
    STD_SCALES,
    TOKEN_REWARDS,
)


@dataclass(frozen=True)
class AlgorithmConfig:
    """The switches that define a policy-gradient algorithm on verifiable rewards."""

    baseline: str = "group_mean"
    """Advantage baseline: group_mean | leave_one_out | batch_mean | none."""
    std_scale: str = "group"
    """Divide advantages by the reward std of the group, the batch, or not at all (none)."""
    std_unbiased: bool = True
    """Bessel-corrected std (torch.std default, as in the verl and TRL GRPO code)."""
    adv_eps: float = 1e-6
    """Added to the std before dividing (verl's 1e-6; TRL uses 1e-4). Unused when std_scale=none."""
    aggregation: str = "seq-mean-token-mean"
    """How per-token losses become one number: token-mean | seq-mean-token-mean |
    seq-mean-token-sum | seq-mean-token-sum-norm (see r1zero.core.losses)."""
    norm_constant: float | None = None
    """C in seq-mean-token-sum-norm; None = the generation budget (max_new_tokens)."""
    objective: str = "pg"
    """pg (policy gradient on the advantages above) or dpo (online DPO: each group's best and
    worst responses form a preference pair; core/preferences.py)."""
    dpo_beta: float = 0.1
    """DPO's β (objective=dpo)."""
    dpo_reference: bool = True
    """DPO against the reference model (the initial policy); False = the KL-free variant."""
    policy_term: str = "clipped"
    """The policy-gradient term: clipped (the PPO surrogate, ratio to π_old clipped) or
    logprob (−A log π_θ: REINFORCE / supervised fine-tuning, no ratio; equal gradients while
    π_θ = π_old, different once an update has moved the policy)."""
    sample_filter: str = "none"
    """Which responses enter the update: none (all) or correct (only those the verifier
    accepted: RAFT's rejection sampling; the normaliser counts only them)."""
    ratio_level: str = "token"
    """Importance ratio of the clipped surrogate: token (PPO / GRPO: one ratio per token) or
    sequence (GSPO: the length-normalised sequence ratio s_i for every token of o_i)."""
    gae_gamma: float = 1.0
    """PPO (baseline=value): GAE's discount γ (Open-Reasoner-Zero: 1)."""
    gae_lambda: float = 1.0
    """PPO: GAE's λ (Open-Reasoner-Zero: 1, so A_t = R − V(s_t))."""
    value_clip: float | None = 0.2
    """PPO: the critic's value clip ε_v around its pre-update values; None = unclipped."""
    clip_low: float = 0.2
    """PPO clip range below 1: ratios under 1 - clip_low stop pushing down (A < 0)."""
    clip_high: float = 0.2
    """PPO clip range above 1: ratios over 1 + clip_high stop pushing up (A > 0). DAPO: 0.28."""
    dual_clip: float | None = None
    """Dual-clip constant c > 1 (Ye et al. 2020) bounding the loss of A < 0 tokens; None = off."""
    kl_beta: float = 0.0
    """KL-to-reference coefficient in the loss; 0 = no reference model is loaded at all."""
    kl_estimator: str = "k3"
    """Per-token KL estimator: k1 | k2 | k3 (GRPO uses k3)."""
    entropy_coef: float = 0.0
    """Entropy bonus coefficient (loss -= coef * entropy); 0 = off."""
    tis_cap: float | None = None
    """Truncated importance sampling cap C for the sampler/learner mismatch (e.g. 2.0 with
    vLLM; set to 2.0 by --max-staleness); also the cap of seq_tis and decoupled. None = off."""
    is_correction: str = "auto"
    """Off-policy correction (core/corrections.py, docs/algorithms.md §11): auto (token_tis
    when --algo.tis-cap is set, else none), none, token_tis, seq_tis, token_mis, seq_mis,
    geo_mask, opsm, decoupled (AReaL: clip on π_θ/π_prox, weight π_prox/μ), coupled (clip
    on π_θ/μ)."""
    is_low: float | None = None
    """Lower end of the masking rows' band (token_mis, seq_mis, geo_mask, decoupled); None =
    the row's default (docs/algorithms.md §11)."""
    is_high: float | None = None
    """Upper end of that band; None = the row's default."""
    opsm_delta: float = 0.05
    """δ of off-policy sequence masking (opsm): drop a response with A < 0 whose mean
    per-token log(μ/π_θ) exceeds δ."""
    filter_zero_variance_groups: bool = False
    """Drop groups whose rewards all agree before the update (they carry no gradient)."""
    dynamic_sampling_draws: int = 1
    """DAPO dynamic sampling: draw up to this many rollout batches per step, until the step
    holds prompts_per_step groups whose rewards are not all equal (the rest are dropped).
    1 = one draw (no resampling). Needs filter_zero_variance_groups."""
    overlong_filter: bool = False
    """DAPO overlong filtering: truncated responses are left out of the loss (they still
    count in their group's baseline)."""
    overlong_buffer_frac: float = 0.0
    """DAPO soft overlong punishment: L_cache as a fraction of the generation budget L_max
    (the paper: 4096 / 20480 = 0.2); 0 = off. See r1zero.core.rewards.overlong_penalty."""
    token_reward: str = "none"
    """none, or teacher (on-policy distillation, --teacher.*): token t of a response gets
    the advantage (1 - w) A_i + w (log pi_teacher(o_t) - log pi_student(o_t))."""

    @property
    def needs_critic(self) -> bool:
        """Whether the run trains a value model (PPO's critic)."""
        return self.baseline == "value"

    @property
    def needs_reference(self) -> bool:
        """Whether the learner loads the reference model (the initial policy)."""
        return self.kl_beta > 0 or (self.objective == "dpo" and self.dpo_reference)

    def norm_constant_for(self, max_new_tokens: int) -> float:
        """C for `step_normalizer`: ``norm_constant``, or the generation budget when None."""
        return float(self.norm_constant if self.norm_constant is not None else max_new_tokens)

    @property
    def correction(self) -> str:
        """The correction in force: ``is_correction``, with auto read as token_tis when a
        cap is set and none otherwise."""
        if self.is_correction != "auto":
            return self.is_correction
        return "token_tis" if self.tis_cap is not None else "none"


# Allowed values for the string switches; validate() and get_algorithm() report them.
_CHOICES: dict[str, tuple[str, ...]] = {
    "baseline": BASELINES,
    "std_scale": STD_SCALES,
    "aggregation": AGGREGATIONS,
    "kl_estimator": KL_ESTIMATORS,
    "ratio_level": RATIO_LEVELS,
    "policy_term": POLICY_TERMS,
    "sample_filter": SAMPLE_FILTERS,
    "objective": OBJECTIVES,
    "is_correction": IS_CORRECTIONS,
    "token_reward": TOKEN_REWARDS,
}


_NUMBERS = ("adv_eps", "norm_constant", "clip_low", "clip_high", "dual_clip", "kl_beta",
            "entropy_coef", "tis_cap", "dynamic_sampling_draws", "overlong_buffer_frac", "dpo_beta",
            "gae_gamma", "gae_lambda", "value_clip", "is_low", "is_high", "opsm_delta")
_OPTIONAL = ("norm_constant", "dual_clip", "tis_cap", "value_clip", "is_low", "is_high")


def validate(cfg: AlgorithmConfig) -> AlgorithmConfig:
    """Return ``cfg`` unchanged or raise ValueError naming the bad field and what is allowed."""
    for name, allowed in _CHOICES.items():
        value = getattr(cfg, name)
        if value not in allowed:
            raise ValueError(f"{name}={value!r} is not allowed; choose one of {list(allowed)}")
    for name in ("std_unbiased", "filter_zero_variance_groups", "overlong_filter", "dpo_reference"):
        if not isinstance(getattr(cfg, name), bool):
            raise ValueError(f"{name}={getattr(cfg, name)!r} is not allowed; must be True or False")
    for name in _NUMBERS:
        value = getattr(cfg, name)
        if not (value is None and name in _OPTIONAL) and (
            isinstance(value, bool) or not isinstance(value, (int, float))
        ):
            raise ValueError(f"{name}={value!r} is not allowed; must be a number")
    checks = [
        ("adv_eps", cfg.adv_eps >= 0, ">= 0"),
        ("clip_low", 0 <= cfg.clip_low < 1, "in [0, 1)"),
        ("clip_high", cfg.clip_high >= 0, ">= 0"),
        ("dual_clip", cfg.dual_clip is None or cfg.dual_clip > 1, "None or > 1"),
        ("kl_beta", cfg.kl_beta >= 0, ">= 0"),
        ("entropy_coef", cfg.entropy_coef >= 0, ">= 0"),
        ("tis_cap", cfg.tis_cap is None or cfg.tis_cap > 0, "None or > 0"),
        ("tis_cap", cfg.tis_cap is not None or cfg.correction not in CAPPED_CORRECTIONS,
         f"set (> 0) with is_correction={cfg.is_correction}"),
        ("is_low", cfg.is_low is None or cfg.is_low >= 0, "None or >= 0"),
        ("is_high", cfg.is_high is None or cfg.is_high > (cfg.is_low or 0.0), "None or > is_low"),
        ("opsm_delta", cfg.opsm_delta >= 0, ">= 0"),
        ("norm_constant", cfg.norm_constant is None or cfg.norm_constant > 0, "None or > 0"),
        ("dynamic_sampling_draws", int(cfg.dynamic_sampling_draws) == cfg.dynamic_sampling_draws
         and cfg.dynamic_sampling_draws >= 1, "an integer >= 1"),
        ("dynamic_sampling_draws", cfg.dynamic_sampling_draws == 1 or cfg.filter_zero_variance_groups,
         "1 unless filter_zero_variance_groups is on"),
        ("overlong_buffer_frac", 0 <= cfg.overlong_buffer_frac < 1, "in [0, 1)"),
        ("dpo_beta", cfg.dpo_beta > 0, "> 0"),
        ("gae_gamma", 0 <= cfg.gae_gamma <= 1, "in [0, 1]"),
        ("gae_lambda", 0 <= cfg.gae_lambda <= 1, "in [0, 1]"),
        ("value_clip", cfg.value_clip is None or cfg.value_clip > 0, "None or > 0"),
        # DPO runs as -A log pi with weights 1/N_step (core/preferences.py): other terms or
        # aggregations would not give the DPO gradient.
        ("policy_term", cfg.objective != "dpo" or cfg.policy_term == "logprob", "logprob with objective=dpo"),
        ("aggregation", cfg.objective != "dpo" or cfg.aggregation == "seq-mean-token-sum",
         "seq-mean-token-sum with objective=dpo"),
        # Teacher token rewards become token advantages: a critic's GAE or DPO's pair
        # coefficients would replace them.
        ("token_reward", cfg.token_reward == "none" or (cfg.objective == "pg" and cfg.baseline != "value"),
         "none with objective=dpo or baseline=value"),
    ]
    for name, ok, allowed in checks:
        if not ok:
            raise ValueError(f"{name}={getattr(cfg, name)!r} is not allowed; must be {allowed}")
    return cfg


# ----------------------------------------------------------------------------- the table
GRPO = AlgorithmConfig(
    baseline="group_mean",
    std_scale="group",  # A = (R - mean) / (std + eps), DeepSeekMath §4.1.2
    aggregation="seq-mean-token-mean",  # 1/G sum_i 1/|o_i| sum_t, DeepSeekMath eq. 3
    clip_low=0.2,
    clip_high=0.2,
    # beta = 0, as in TRL's default and in the GRPO baseline of the Dr. GRPO paper, so that
    # GRPO vs Dr. GRPO differ only by the two changes below. DeepSeekMath used 0.04 with k3:
    # get_algorithm("grpo", kl_beta=0.04) reproduces it (k3 is already the estimator).
    kl_beta=0.0,
    kl_estimator="k3",
)

DR_GRPO = replace(
    GRPO,
    std_scale="none",  # change 1: no std division (removes the question-difficulty bias)
    aggregation="seq-mean-token-sum-norm",  # change 2: / constant, not / |o_i| (removes the length bias)
)

DAPO = replace(
    GRPO,
    clip_high=0.28,  # clip-higher: more room for low-probability tokens to rise (DAPO §3.1)
    aggregation="token-mean",  # token-level loss: long responses weigh per token (DAPO §3.3)
    filter_zero_variance_groups=True,  # dynamic sampling: drop all-agree groups ... (§3.2)
    dynamic_sampling_draws=10,  # ... and draw again until the batch is full (verl's cap: 10)
    overlong_filter=True,  # overlong filtering: truncated responses out of the loss (§3.4)
    overlong_buffer_frac=0.2,  # soft overlong punishment, L_cache = 0.2 L_max (§3.4, eq. 13)
    kl_beta=0.0,  # no KL term (§2.3)
)

RLOO = AlgorithmConfig(
    baseline="leave_one_out",  # b_i = mean of the other G-1 rewards (Ahmadian et al. 2024)
    std_scale="none",
    # REINFORCE on the whole response: -A_i * log pi(o_i), averaged over responses.
    aggregation="seq-mean-token-sum",
    clip_low=0.2,  # inactive with one update per rollout (ratio = 1); a guard for more epochs
    clip_high=0.2,
    kl_beta=0.0,  # the paper folds KL into the reward; here it stays an opt-in loss term
)

REINFORCE_PP = AlgorithmConfig(
    baseline="batch_mean",  # global normalisation over the batch, no per-prompt baseline
    std_scale="batch",  # (R - mean_batch) / (std_batch + eps), REINFORCE++ (Hu 2025) §3.2
    aggregation="token-mean",
    clip_low=0.2,
    clip_high=0.2,
    kl_beta=0.0,  # REINFORCE++ puts a k1 KL in the reward; opt in here with kl_beta/kl_estimator
    kl_estimator="k2",  # the estimator whose loss gradient is the KL(pi || ref) gradient
)

GSPO = replace(
    GRPO,  # GRPO's group-normalised advantages and seq-mean-token-mean (Zheng et al. 2025 §4)
    ratio_level="sequence",  # s_i = (pi(o_i) / pi_old(o_i))^(1/|o_i|), eq. 7
    clip_low=3e-4,  # the paper's clip ranges for the sequence ratio (§5.1; verl's GSPO
    clip_high=4e-4,  # recipe uses the same): a sequence ratio moves far less than a token's
)

RAFT = AlgorithmConfig(
    # RAFT (Dong et al. 2023; as the baseline of Xiong et al. 2025, "A Minimalist Approach to
    # LLM Reasoning"): rejection sampling + fine-tuning. Keep the correct responses and
    # maximise their log-likelihood: A = R = 1, loss = −1/|D+| Σ_i 1/|o_i| Σ_t log π(o_t).
    baseline="none",
    std_scale="none",
    aggregation="seq-mean-token-mean",
    policy_term="logprob",
    sample_filter="correct",
)

RAFT_PP = replace(
    RAFT,  # RAFT++ (Xiong et al. 2025 §3): the same samples, with the importance ratio to
    policy_term="clipped",  # π_old clipped to [1 − 0.2, 1 + 0.2] (eq. 5): differs from RAFT
)  # once a rollout takes more than one optimizer step (--train-batch-size, --epochs)

PPO = AlgorithmConfig(
    # PPO with a learned critic, as Open-Reasoner-Zero trains it (Hu et al. 2025): GAE with
    # γ = λ = 1 (A_t = R − V(s_t)), no KL term, the clipped surrogate on token advantages,
    # a clipped value loss. The critic is the policy's architecture with a scalar head.
    baseline="value",
    std_scale="none",
    aggregation="token-mean",
    gae_gamma=1.0,
    gae_lambda=1.0,
    value_clip=0.2,
    clip_low=0.2,
    clip_high=0.2,
    kl_beta=0.0,
)

ONLINE_DPO = AlgorithmConfig(
    # Online DPO (Guo et al. 2024; Xiong et al. 2025 on verifiable rewards): each group's
    # best- and worst-reward responses form a pair, DPO loss against the reference model.
    objective="dpo",
    dpo_beta=0.1,
    baseline="none",  # the advantages are the DPO coefficients, computed by the learner
    std_scale="none",
    aggregation="seq-mean-token-sum",
    policy_term="logprob",
)

OPD = replace(
    # On-policy distillation (Agarwal et al. 2024, GKD with on-policy samples; Thinking
    # Machines 2025; verl/slime "opd"): the student samples, the teacher scores the
    # student's own tokens, and each token's advantage is its teacher reward
    # log pi_T(o_t) - log pi_S(o_t), a per-token reverse-KL estimate with no discount
    # (--teacher.weight mixes in the verifiable reward's Dr. GRPO advantage).
    DR_GRPO,
    token_reward="teacher",
    aggregation="token-mean",  # the mean per-token reverse KL of the step
)

ALGORITHMS: dict[str, AlgorithmConfig] = {
    "grpo": GRPO,
    "dr_grpo": DR_GRPO,
    "dapo": DAPO,
    "rloo": RLOO,
    "reinforce_pp": REINFORCE_PP,
    "gspo": GSPO,
    "raft": RAFT,
    "raft_pp": RAFT_PP,
    "online_dpo": ONLINE_DPO,
    "ppo": PPO,
    "opd": OPD,
}

SUMMARIES: dict[str, str] = {
    "grpo": "group-normalised advantages, per-response length normalisation (DeepSeekMath)",
    "dr_grpo": "GRPO without its two biases: no std division, / a constant (Liu et al. 2025)",
    "dapo": "clip-higher, token-level loss, dynamic sampling, overlong shaping (Yu et al. 2025)",
    "rloo": "leave-one-out baseline, REINFORCE on whole responses (Ahmadian et al. 2024)",
    "reinforce_pp": "batch-normalised advantages, token-level loss (REINFORCE++, Hu 2025)",
    "gspo": "GRPO with a length-normalised sequence-level ratio (Zheng et al. 2025)",
    "raft": "rejection sampling: maximise the likelihood of correct responses (Dong et al. 2023)",
    "raft_pp": "RAFT with the clipped importance ratio to the sampler (Xiong et al. 2025)",
    "online_dpo": "each group's best and worst responses as a DPO pair (Guo et al. 2024)",
    "ppo": "a learned critic, GAE with γ = λ = 1, clipped values (Open-Reasoner-Zero)",
    "opd": "on-policy distillation: token reward log π_teacher − log π_student (Agarwal 2024)",
}
"""One line per algorithm (what `r1zero train --help` lists under --algorithm); a test
checks that every row of `ALGORITHMS` has one."""

_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AlgorithmConfig))


def get_algorithm(name: str, **overrides: Any) -> AlgorithmConfig:
    """The named preset with ``overrides`` applied, validated.

    Raises ValueError for an unknown name, an unknown field, or a bad value, naming it and
    listing what is allowed.
    """
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {sorted(ALGORITHMS)}")
    unknown = sorted(set(overrides) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown AlgorithmConfig field(s) {unknown}; allowed fields: {list(_FIELDS)}")
    return validate(replace(ALGORITHMS[name], **overrides))
