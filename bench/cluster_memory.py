"""Learner memory per rank under FSDP2: the formula of docs/cluster.md against the bytes
the shards really hold, measured on CPU with 2 gloo ranks and a random-init model of the
Qwen2.5-Math-1.5B shapes with fewer layers (all of it would not fit this machine).

    .venv/bin/python bench/cluster_memory.py [--layers 2] [--world 2]

Counts the bytes of every rank's local shards of parameters, gradients and AdamW state
after one optimizer step (the persistent learner state: 4 + 4 + 8 bytes per parameter in
fp32, split over the ranks) and prints them next to 16 P / N, then the formula's figures
for the full 1.5B and 7B models on 1 and 8 GPUs.
"""

from __future__ import annotations

import argparse
import os
import socket

import torch

# Qwen2.5-Math-1.5B / -7B shapes (their config.json); weights are random here.
QWEN_1_5B = dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                 num_attention_heads=12, num_key_value_heads=2, vocab_size=151936,
                 tie_word_embeddings=True, max_position_embeddings=4096)
QWEN_7B = dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
               num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
               tie_word_embeddings=False, max_position_embeddings=4096)


def num_params(shape: dict) -> int:
    """Parameter count of a Qwen2 decoder with these shapes (embeddings once if tied)."""
    h, i, L, v = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"], shape["vocab_size"]
    kv = h // shape["num_attention_heads"] * shape["num_key_value_heads"]
    attn = h * h + 2 * h * kv + h * h + h + 2 * kv  # q, k, v (with biases), o
    mlp = 3 * h * i
    layer = attn + mlp + 2 * h  # two RMSNorms
    return v * h * (1 if shape["tie_word_embeddings"] else 2) + L * layer + h


def learner_gb(params: int, world: int) -> float:
    """Persistent learner state per rank: fp32 weights, fp32 grads, AdamW m and v = 16 B/param."""
    return 16 * params / world / 2**30


def _rank(rank: int, world: int, port: int, layers: int, out: str) -> None:
    import torch.distributed as dist
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from r1zero.cluster.fsdp import shard

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**{**QWEN_1_5B, "num_hidden_layers": layers}))
    total = sum(p.numel() for p in model.parameters())
    shard(model, world, "cpu")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()

    def local_bytes(t) -> int:
        t = t.to_local() if hasattr(t, "to_local") else t
        return t.numel() * t.element_size()

    held = sum(local_bytes(p) + local_bytes(p.grad) for p in model.parameters())
    held += sum(local_bytes(v) for s in opt.state.values() for v in s.values() if torch.is_tensor(v) and v.dim())
    sizes = [torch.zeros(1) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([float(held)]))
    if rank == 0:
        torch.save({"total": total, "held": [float(s) for s in sizes]}, out)
    dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--world", type=int, default=2)
    args = ap.parse_args()
    import tempfile

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "mem.pt")
        mp.spawn(_rank, args=(args.world, port, args.layers, out), nprocs=args.world, join=True)
        got = torch.load(out)
    shape = {**QWEN_1_5B, "num_hidden_layers": args.layers}
    print(f"Qwen2.5-Math-1.5B shapes, {args.layers} layers: {got['total'] / 1e6:.1f} M parameters "
          f"(formula count {num_params(shape) / 1e6:.1f} M)")
    for r, held in enumerate(got["held"]):
        print(f"  rank {r}: shards of weights + grads + AdamW state = {held / 2**30:.3f} GiB; "
              f"formula 16 P / N = {learner_gb(got['total'], args.world):.3f} GiB")
    for name, shape in (("Qwen2.5-Math-1.5B", QWEN_1_5B), ("Qwen2.5-Math-7B", QWEN_7B)):
        p = num_params(shape)
        print(f"{name}: P = {p / 1e9:.2f} B; learner state per GPU: 1 GPU {learner_gb(p, 1):.1f} GiB, "
              f"8 GPUs {learner_gb(p, 8):.1f} GiB; bf16 vLLM weights {2 * p / 2**30:.1f} GiB per engine")


if __name__ == "__main__":
    main()
