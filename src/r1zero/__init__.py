"""r1zero: R1-Zero-like RL training (GRPO, Dr. GRPO, ...) with honest evaluation and analysis."""

__version__ = "0.1.0"
