"""Typed configuration: every dataclass field is a CLI flag and its docstring is the help.

Parsed once by `r1zero.cli` (tyro); resolved once by `derive` (config/derive.py: the
algorithm's switches, a resume, the run directory, validation); presets are named configs
(config/presets.py). Validation is pure: no hardware or file checks while parsing; what
the machine decides is resolved when a run is built (r1zero/machine.py, train/setup.py).
"""

from r1zero.config.commands import ExportConfig, GradeConfig, PlotConfig
from r1zero.config.derive import (
    RESUME_MAY_CHANGE,
    RESUME_PLACEMENT,
    STALE_TIS_CAP,
    config_diff,
    config_from_dict,
    derive,
    flag,
    resolve_algorithm,
    saved_config,
    with_algorithm,
)
from r1zero.config.presets import PRESETS
from r1zero.config.sections import (
    JUDGE_ENDPOINTS,
    JUDGED_TASKS,
    LORA_TARGETS,
    SHAPERS,
    ClusterConfig,
    ConfigError,
    CriticConfig,
    JudgeConfig,
    LoraConfig,
    RewardConfig,
    SamplingConfig,
    TaskConfig,
    TeacherConfig,
)
from r1zero.config.sft_config import SFTConfig
from r1zero.config.train_config import (
    UNSET_ALGO,
    TrainConfig,
    budget_at,
    token_budget_schedule,
)

__all__ = [
    "JUDGED_TASKS", "JUDGE_ENDPOINTS", "PRESETS", "RESUME_MAY_CHANGE", "RESUME_PLACEMENT", "SHAPERS",
    "STALE_TIS_CAP", "UNSET_ALGO", "ClusterConfig", "ConfigError", "CriticConfig", "ExportConfig", "GradeConfig",
    "JudgeConfig", "LORA_TARGETS", "LoraConfig", "PlotConfig", "RewardConfig", "SamplingConfig", "TaskConfig",
    "SFTConfig", "TeacherConfig", "TrainConfig", "budget_at",
    "config_diff", "config_from_dict", "derive", "flag", "resolve_algorithm", "saved_config",
    "token_budget_schedule", "with_algorithm",
]
