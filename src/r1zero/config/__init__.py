"""Typed configuration: every dataclass field is a CLI flag and its docstring is the help.

Parsed once by `r1zero.cli` (tyro; help laid out by config/help.py); resolved once by
`derive` (config/derive.py: the algorithm's switches, a resume, the run directory,
validation, and config/readers.py: no flag the run does not read); presets are named configs
(config/presets.py). Validation is pure: no hardware or file checks while parsing; what the
machine decides is resolved when a run is built (r1zero/machine.py, train/setup.py).
"""

from r1zero.config.commands import ExportConfig, GradeConfig, PlotConfig
from r1zero.config.derive import (
    RESUME_MAY_CHANGE,
    RESUME_PLACEMENT,
    STALE_TIS_CAP,
    config_diff,
    config_from_dict,
    derive,
    resolve_algorithm,
    saved_config,
    with_algorithm,
)
from r1zero.config.envs import SANDBOX_MODES, TOOLS, EnvConfig, SandboxConfig
from r1zero.config.presets import PRESETS, preset_summary
from r1zero.config.readers import READERS, check_read, flag
from r1zero.config.sections import (
    JUDGE_ENDPOINTS,
    JUDGED_TASKS,
    LORA_TARGETS,
    SHAPERS,
    ClusterConfig,
    ConfigError,
    CriticConfig,
    JudgeConfig,
    MissingDependency,
    LoraConfig,
    RewardConfig,
    RolloutConfig,
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
    "JUDGED_TASKS", "JUDGE_ENDPOINTS", "LORA_TARGETS", "PRESETS", "READERS", "RESUME_MAY_CHANGE",
    "RESUME_PLACEMENT", "SANDBOX_MODES", "SHAPERS", "STALE_TIS_CAP", "TOOLS", "UNSET_ALGO",
    "ClusterConfig", "ConfigError", "CriticConfig", "EnvConfig", "ExportConfig", "GradeConfig",
    "JudgeConfig", "LoraConfig", "MissingDependency", "PlotConfig", "RewardConfig", "RolloutConfig",
    "SFTConfig", "SamplingConfig", "SandboxConfig", "TaskConfig", "TeacherConfig", "TrainConfig",
    "budget_at", "check_read", "config_diff", "config_from_dict", "derive", "flag", "preset_summary",
    "resolve_algorithm", "saved_config", "token_budget_schedule", "with_algorithm",
]
