"""Learner memory with and without LoRA: a formula, checked against the learner's real
tensors at small scale, then applied to Qwen2.5-Math-1.5B and -7B (their architectures
built from their published configs on the meta device: no weights, no hub access).

The learner's resident state just before an optimizer step (weights, gradients, AdamW's
two moments; activations and the one micro-batch's transient bf16 gradient excluded),
P = base parameters (a tied output layer counted once), A = adapter parameters:

    full fp32   4P weights + 4P grads + 8P Adam                        = 16 P
    full bf16   4P fp32 master + 2P bf16 compute copy + 4P grads + 8P   = 18 P
    LoRA fp32   4P base + (4 + 4 + 8) A                                 = 4 P + 16 A
    LoRA bf16   2P bf16 base (frozen: no master, no grads) + 16 A        = 2 P + 16 A

A = sum over targeted linear layers of r (d_in + d_out). Usage:
    python bench/lora_memory.py [--rank 16]     (prints the check and the table)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from r1zero.config import LORA_TARGETS, LoraConfig

GIB = 2**30

QWEN25_MATH = {
    # config.json of Qwen/Qwen2.5-Math-1.5B and -7B (the fields that set the parameter count).
    "Qwen2.5-Math-1.5B": dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960,
                              num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                              tie_word_embeddings=True, max_position_embeddings=4096, rope_theta=10000.0),
    "Qwen2.5-Math-7B": dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944,
                            num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                            tie_word_embeddings=False, max_position_embeddings=4096, rope_theta=10000.0),
}


def state_bytes(p: int, a: int, precision: str, lora: bool) -> int:
    """The module docstring's formula, in bytes."""
    if lora:
        return (2 if precision == "bf16" else 4) * p + 16 * a
    return (18 if precision == "bf16" else 16) * p


def counts(model: torch.nn.Module, rank: int, targets=LORA_TARGETS) -> tuple[int, int]:
    """(P, A): the model's unique parameters and a rank-``rank`` adapter's on ``targets``."""
    p = sum(t.numel() for t in model.parameters())  # parameters() yields a tied tensor once
    a = sum(rank * (m.in_features + m.out_features) for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets)
    return p, a


def qwen(name: str) -> torch.nn.Module:
    """The named architecture with meta tensors (shapes only)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    with torch.device("meta"):
        return Qwen2ForCausalLM(Qwen2Config(**QWEN25_MATH[name]))


def measured_bytes(lrn) -> int:
    """Bytes of the distinct storages a `LocalLearner` holds: its weights, its compute
    copy, their gradients and the optimizer's state."""
    seen: dict[int, int] = {}

    def add(t) -> None:
        if isinstance(t, torch.Tensor) and t.numel():
            s = t.untyped_storage()
            seen[s.data_ptr()] = s.nbytes()

    for module in (lrn.policy, lrn.compute):
        for p in module.parameters():
            add(p)
            add(p.grad)
    for state in lrn.optimizer.state.values():
        for v in state.values():
            if v.dim():  # the step counter is a scalar
                add(v)
    return sum(seen.values())


def small_check(model_dir: str, rank: int = 8) -> list[tuple[str, int, int]]:
    """(case, formula, measured) for a small model at fp32 / bf16, full / LoRA: two
    updates, measured just before the second optimizer step."""
    from r1zero.config import TrainConfig
    from r1zero.learner import local
    from r1zero.learner.batching import TrainSequence
    from r1zero.learner.build import build_learner
    from r1zero.models import load_model

    rows = []
    for precision in ("fp32", "bf16"):
        for lora in (False, True):
            cfg = TrainConfig(model=model_dir, precision=precision, lr=1e-3, max_new_tokens=8,
                              lora=LoraConfig(rank=rank if lora else 0))
            lrn = build_learner(cfg, model_path=model_dir, device=torch.device("cpu"), precision=precision)
            seqs = [TrainSequence([5, 6, 7], [8, 9, 10, 11], a) for a in (1.0, -1.0)]
            seen = []
            step = local.optimizer_step
            local.optimizer_step = lambda lr, **kw: (seen.append(measured_bytes(lr)), step(lr, **kw))[1]
            try:
                lrn.update(seqs, 0)
                lrn.update(seqs, 1)
            finally:
                local.optimizer_step = step
            p, a = counts(load_model(model_dir)[0], rank if lora else 0)  # the plain model's shapes
            rows.append((f"{'LoRA' if lora else 'full'} {precision}", state_bytes(p, a, precision, lora), seen[-1]))
    return rows


def table(rank: int) -> str:
    lines = ["| model | P | A (rank %d, all 7 projections) | full fp32 | full bf16 | LoRA fp32 | LoRA bf16 |" % rank,
             "|---|---|---|---|---|---|---|"]
    for name in QWEN25_MATH:
        p, a = counts(qwen(name), rank)
        cells = [f"{state_bytes(p, a, prec, lora) / GIB:.1f} GiB"
                 for lora, prec in ((False, "fp32"), (False, "bf16"), (True, "fp32"), (True, "bf16"))]
        lines.append(f"| {name} | {p / 1e9:.3f} B | {a / 1e6:.1f} M | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rank", type=int, default=16)
    args = ap.parse_args()
    import tempfile

    from r1zero.testing import tiny_model

    with tempfile.TemporaryDirectory() as d:
        model, tok = tiny_model(seed=0)
        model.save_pretrained(d)
        tok.save_pretrained(d)
        for case, formula, measured in small_check(d):
            print(f"check {case:<10} formula {formula:>12,d} B  measured {measured:>12,d} B  "
                  f"{'ok' if formula == measured else 'DIFFERS'}")
    print(table(args.rank))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    main()
