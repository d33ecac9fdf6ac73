"""Learner-side model calls: per-token log-probs (and entropy) of response tokens.

Only response positions go through the output layer: the prompt's logits are never
needed, and the vocabulary projection is a large share of a small model's compute.
"""

from __future__ import annotations

import contextlib

import torch

from r1zero.train.batching import MicroBatch


def autocast_context(device: torch.device, precision: str):
    """bf16 autocast (fp32 master weights, bf16 matmuls) or nothing for fp32.

    On this 2-core CPU bf16 autocast measured 18.9 s vs 43.7 s per step in fp32
    (shared/notes/cpu-speed.md); log-softmax is still done in fp32 below.
    """
    if precision == "bf16-autocast":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def response_logprobs(
    model: torch.nn.Module,
    mb: MicroBatch,
    *,
    temperature: float = 1.0,
    with_entropy: bool = False,
    precision: str = "fp32",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs of each response token under ``model`` at ``temperature``.

    Returns ``(logprobs [n, L-1], entropy [n, L-1] | None)``, zero outside
    ``mb.response_mask``. log π(o_t | q, o_<t) = logits_t[o_t]/T − logsumexp(logits_t/T).
    The entropy is computed without gradient (it is a metric unless an entropy bonus is
    used, in which case the caller asks for it with gradient via ``with_entropy="grad"``).
    """
    device = next(model.parameters()).device
    input_ids = mb.input_ids.to(device)
    mask = mb.response_mask.to(device).bool()  # [n, L-1]
    with autocast_context(device, precision):
        hidden = model.get_decoder()(
            input_ids=input_ids, attention_mask=mb.attention_mask.to(device), use_cache=False
        ).last_hidden_state  # [n, L, d]
        h = hidden[:, :-1][mask]  # [k, d]  response positions only
        logits = model.get_output_embeddings()(h)  # [k, V]
    logits = logits.float() / temperature  # [k, V]  log-softmax in fp32
    targets = input_ids[:, 1:][mask]  # [k]
    lse = torch.logsumexp(logits, dim=-1)  # [k]
    lp = logits.gather(-1, targets[:, None]).squeeze(-1) - lse  # [k]
    logprobs = torch.zeros(mask.shape, device=device, dtype=lp.dtype)
    logprobs = logprobs.masked_scatter(mask, lp)  # [n, L-1]
    entropy = None
    if with_entropy:
        grad_ctx = contextlib.nullcontext() if with_entropy == "grad" else torch.no_grad()
        with grad_ctx:
            p = torch.softmax(logits, dim=-1)  # [k, V]
            ent = lse - (p * logits).sum(-1)  # [k]  H = logsumexp(z) − Σ p z
            entropy = torch.zeros(mask.shape, device=device, dtype=ent.dtype).masked_scatter(mask, ent)
    return logprobs, entropy
