"""Test helpers: a tiny randomly initialised Llama with SmolLM2's real tokenizer.

Tests across the project use `tiny_model` so they exercise real tokenisation, chat
templates and EOS handling while a forward pass costs milliseconds on a CPU.
"""

from __future__ import annotations

import functools

import torch

from r1zero.models import (
    DEFAULT_MODEL,
    eos_token_ids,
    prepare_tokenizer,
    resolve_tokenizer_path,
)


@functools.lru_cache(maxsize=4)
def _tokenizer_dir(name: str) -> str:
    # Only the GGUF's tokenizer is converted (seconds, once per machine); the weights never.
    return resolve_tokenizer_path(name)


def tiny_tokenizer(name: str = DEFAULT_MODEL):
    """A fresh copy of the real tokenizer of ``name`` (left padding, pad token set)."""
    from transformers import AutoTokenizer

    return prepare_tokenizer(AutoTokenizer.from_pretrained(_tokenizer_dir(name)))


def tiny_model(
    seed: int = 0,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    dtype: torch.dtype = torch.float32,
    tokenizer_name: str = DEFAULT_MODEL,
):
    """``(model, tokenizer)``: a random `LlamaForCausalLM` (SmolLM2's architecture family:
    GQA, RoPE, SwiGLU, tied embeddings) over the real SmolLM2 vocabulary.

    Deterministic in ``seed`` without touching the global RNG. Every call returns new
    objects, so a test may train or mutate them freely.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer(tokenizer_name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=2048,
        rope_theta=100000.0,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).to(dtype)
    model.generation_config.eos_token_id = eos_token_ids(model, tokenizer)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer
