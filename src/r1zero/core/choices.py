"""The allowed values of the algorithm switches (`r1zero.core.algorithms.AlgorithmConfig`).

Kept free of torch so that reading or validating a config (`r1zero.config`, the CLI,
reward workers, `r1zero grade`) never imports it; the modules that implement each switch
(advantages.py, losses.py) re-export the tuple they own.
"""

from __future__ import annotations

from typing import Literal

Baseline = Literal["group_mean", "leave_one_out", "batch_mean", "none", "value"]
StdScale = Literal["group", "batch", "none"]
Aggregation = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"]
KLEstimator = Literal["k1", "k2", "k3"]

BASELINES: tuple[str, ...] = ("group_mean", "leave_one_out", "batch_mean", "none", "value")
"""``value`` = a learned critic (PPO): token-level advantages from `advantages.gae`."""
STD_SCALES: tuple[str, ...] = ("group", "batch", "none")
AGGREGATIONS: tuple[str, ...] = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum",
                                 "seq-mean-token-sum-norm")
KL_ESTIMATORS: tuple[str, ...] = ("k1", "k2", "k3")
RATIO_LEVELS: tuple[str, ...] = ("token", "sequence")
POLICY_TERMS: tuple[str, ...] = ("clipped", "logprob")
SAMPLE_FILTERS: tuple[str, ...] = ("none", "correct")
OBJECTIVES: tuple[str, ...] = ("pg", "dpo")
IS_CORRECTIONS: tuple[str, ...] = ("auto", "none", "token_tis", "seq_tis", "token_mis", "seq_mis",
                                   "geo_mask", "opsm", "decoupled", "coupled")
"""Off-policy corrections (rows of `r1zero.core.corrections.CORRECTIONS`); ``auto`` =
token_tis when a cap is set (--algo.tis-cap, on by default with --max-staleness), else none."""
CAPPED_CORRECTIONS: tuple[str, ...] = ("token_tis", "seq_tis")
"""The rows that truncate at --algo.tis-cap (and so need one)."""
TOKEN_REWARDS: tuple[str, ...] = ("none", "teacher")
"""``teacher`` = on-policy distillation: each response token also earns
log pi_teacher(o_t) - log pi_student(o_t) (r1zero.train.distill)."""
