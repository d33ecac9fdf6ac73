"""The kernel checks of the one-shot device check (`scripts/gpu_check.py`): compiled
FlexAttention against the dense segment path, its compiles as lengths change, and a CUDA
IPC handoff between two processes (the colocated weight sync's mechanism)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import torch

from gpu_check import Ctx, NeedsCuda
from gpu_check_learner import expect, sequences
from r1zero.learner.batching import TrainSequence


# ----------------------------------------------------------------------------- FlexAttention
def use_kernel(model: torch.nn.Module, name: str, device: torch.device) -> None:
    """The learner's kernel choice (`set_attention`); FlexAttention where it cannot train
    (CPU: no backward) is set directly, for forward passes only."""
    from r1zero.learner import varlen_attention
    from r1zero.learner.attention import set_attention

    if name == varlen_attention.NAME and not varlen_attention.available(device):
        varlen_attention.register()
        model.set_attn_implementation(name)
    else:
        set_attention(model, name, device, packed=True)


def packed_pass(model: torch.nn.Module, seqs: list[TrainSequence], budget: int, grads: bool):
    """Log-probs and entropies ``{sequence: ([R], [R])}`` of ``seqs`` in packed micro-batches
    at T = 0.9, and with ``grads`` the gradient of Σ A·log π (one per parameter)."""
    from r1zero.learner.batching import make_micro_batches
    from r1zero.learner.logprobs import response_logprobs

    device = next(model.parameters()).device
    model.zero_grad(set_to_none=True)
    out = {}
    for mb in make_micro_batches(seqs, budget, 0, packed=True):
        with torch.set_grad_enabled(grads):
            lp, ent = response_logprobs(model, mb, temperature=0.9, with_entropy=True)
        if grads:
            (lp * mb.advantages.to(device)[:, None]).sum().backward()
        for r, i in enumerate(mb.index):
            keep = mb.response_mask[r].bool().to(device)
            out[i] = (lp[r][keep].detach(), ent[r][keep].detach())
    return out, ([p.grad.detach().clone() for p in model.parameters()] if grads else None)


def max_gap(a: dict, b: dict, part: int) -> float:
    return max(float((a[i][part] - b[i][part]).abs().max()) for i in b)


def graphs_compiled(run: Callable[[list[TrainSequence]], object],
                    batches: list[list[TrainSequence]]) -> list[int]:
    """How many new graphs torch.compile built during each ``run(batch)``."""
    from torch._dynamo.utils import counters

    out = []
    for batch in batches:
        before = counters["stats"]["unique_graphs"]
        run(batch)
        out.append(counters["stats"]["unique_graphs"] - before)
    return out


def length_ladder(ctx: Ctx, steps: int = 5) -> list[list[TrainSequence]]:
    """One prompt group per step, each with longer responses than the last (up to the
    largest response length): a new packed length every time."""
    lo, hi = ctx.sizes.response_len
    rng, out = random.Random(7), []
    for k in range(steps):
        n = lo + (hi - lo) * (k + 1) // steps
        prompt = [rng.randrange(5, 2000) for _ in range(ctx.sizes.prompt_len[0])]
        out.append([TrainSequence(prompt, [rng.randrange(5, 2000) for _ in range(n)], 1.0)
                    for _ in range(ctx.sizes.group)])
    return out


def check_flex_vs_dense(ctx: Ctx) -> dict:
    """(b) FlexAttention (compiled on CUDA) against the dense segment path on the same packed
    micro-batches, fp32: log-probs, entropies, gradients; then the graphs torch.compile
    builds as the packed length changes (after the second length: none). On CPU the
    forward comparison runs (eager FlexAttention); gradients and compiles need CUDA."""
    from r1zero.testing import tiny_model
    from r1zero.learner import segment_attention, varlen_attention

    s = ctx.sizes
    model, _ = tiny_model(seed=0, hidden_size=s.hidden, num_layers=s.layers, num_heads=s.heads,
                          num_kv_heads=s.kv_heads, intermediate_size=s.ffn)
    model = model.to(ctx.device)
    seqs = sequences(ctx, seed=1)
    runs = {}
    for kernel in (varlen_attention.NAME, segment_attention.NAME):
        use_kernel(model, kernel, ctx.device)
        runs[kernel] = packed_pass(model, seqs, s.micro_batch_tokens, grads=ctx.cuda)
    (flex, g_flex), (dense, g_dense) = runs[varlen_attention.NAME], runs[segment_attention.NAME]
    out = {"sequences": len(seqs), "tokens": sum(len(q.prompt_ids) + len(q.response_ids) for q in seqs),
           "max_abs_dlogp": max_gap(flex, dense, 0), "max_abs_dentropy": max_gap(flex, dense, 1)}
    expect(out["max_abs_dlogp"] < 1e-4 and out["max_abs_dentropy"] < 1e-4,
           f"FlexAttention vs dense: log-prob gap {out['max_abs_dlogp']:.3g}, "
           f"entropy gap {out['max_abs_dentropy']:.3g}")
    if not ctx.cuda:
        raise NeedsCuda("FlexAttention's backward and its compiled kernel (the forward "
                        "log-probs and entropies above match the dense path)", out)
    out["rel_grad_err"] = max(float((a - b).norm() / b.norm().clamp_min(1e-30))
                              for a, b in zip(g_flex, g_dense))
    expect(out["rel_grad_err"] < 1e-3, f"FlexAttention's gradient differs by {out['rel_grad_err']:.3g}")
    use_kernel(model, varlen_attention.NAME, ctx.device)
    torch._dynamo.reset()  # count this ladder's compiles from nothing
    ladder = length_ladder(ctx)
    out["ladder_tokens"] = [sum(len(q.prompt_ids) + len(q.response_ids) for q in b) for b in ladder]
    out["graphs_per_length"] = graphs_compiled(
        lambda b: packed_pass(model, b, 1 << 30, grads=True), ladder)
    expect(out["graphs_per_length"][0] > 0, "FlexAttention did not compile (eager: the full score matrix)")
    expect(sum(out["graphs_per_length"][2:]) == 0,
           f"FlexAttention recompiles as lengths change: {out['graphs_per_length']}")
    return out


# ----------------------------------------------------------------------------- CUDA IPC
def _receiver(conn) -> None:
    """The second process: open the handle, report the sum, double the tensor in place,
    and hold it until the sender has looked."""
    try:
        from torch.multiprocessing.reductions import rebuild_cuda_tensor

        rebuild, args = conn.recv()
        if rebuild is rebuild_cuda_tensor:  # as vLLM's receiver does: its own device index
            args = list(args)
            args[6] = torch.cuda.current_device()
        t = rebuild(*args)
        total = float(t.double().sum())
        t.mul_(2)
        if t.is_cuda:
            torch.cuda.synchronize()
        conn.send({"sum": total, "device": str(t.device), "numel": t.numel()})
        conn.recv()
    except Exception as e:  # noqa: BLE001 - the sender reports it as the check's failure
        conn.send({"error": f"{type(e).__name__}: {e}"})


def check_cuda_ipc(ctx: Ctx) -> dict:
    """(f) A tensor handed to a second process by its IPC handle (torch's ``reduce_tensor``,
    what vLLM's IPC weight transfer sends): the receiver reads the same memory and writes
    to it, and the sender sees the write (no copy). On CPU the same code runs over shared
    memory, which checks the plumbing but not CUDA IPC."""
    import torch.multiprocessing as mp
    from torch.multiprocessing.reductions import reduce_tensor

    n = (256 << 20) // 4 if ctx.cuda else 1 << 16  # 256 MiB of fp32 on the GPU
    t = torch.arange(n, dtype=torch.float32, device=ctx.device) % (1 << 20)
    want = float(t.double().sum())
    spawn = mp.get_context("spawn")
    here, there = spawn.Pipe()
    proc = spawn.Process(target=_receiver, args=(there,), daemon=True)
    proc.start()
    try:
        start = time.perf_counter()
        here.send(reduce_tensor(t))
        expect(here.poll(120), "the receiving process answered nothing in 120 s")
        got = here.recv()
        seconds = time.perf_counter() - start
        expect("error" not in got, f"receiver: {got.get('error')}")
        expect(got["sum"] == want, f"receiver read sum {got['sum']}, sent {want}")
        if ctx.cuda:
            torch.cuda.synchronize()
        doubled = torch.equal(t, (torch.arange(n, dtype=torch.float32, device=ctx.device) % (1 << 20)) * 2)
        expect(doubled, "the receiver's write did not reach the sender's memory (a copy?)")
        here.send("done")
        proc.join(30)
    finally:
        if proc.is_alive():
            proc.kill()
    out = {"mib": n * 4 / 2**20, "round_trip_s": seconds, "receiver_device": got["device"],
           "mechanism": "cuda ipc" if ctx.cuda else "cpu shared memory"}
    if not ctx.cuda:
        raise NeedsCuda("CUDA IPC (the same handoff passed over CPU shared memory)", out)
    return out
