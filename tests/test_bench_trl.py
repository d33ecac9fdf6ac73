"""bench/bench_trl.py's compute floor: the FLOP count it charges a step, on SmolLM2-135M's
shapes (checked by hand: 134.5M parameters, of which the 49,152 x 576 output layer 28.3M)."""

import pytest

from tests.test_bench_learner_gpu import load_bench


def test_compute_floor_counts_the_unavoidable_flops(tmp_path):
    from transformers import LlamaConfig

    LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True).save_pretrained(tmp_path)
    decoder = 30 * (2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536)
    head = 49152 * 576
    assert decoder + head == pytest.approx(134.5e6, rel=1e-3)  # the packaged model's size
    # 3,600 generated tokens, 4,000 learner tokens, at 100 GFLOP/s
    want = (2 * (decoder + head) * 3600 + 6 * decoder * 4000 + 6 * head * 3600) / 100e9
    assert load_bench("bench_trl").compute_floor_s(str(tmp_path), 3600, 4000, 100.0) == pytest.approx(want)
    assert want == pytest.approx(41.3, rel=0.01)  # ~4.1 TFLOP: 41 s at 100 GFLOP/s
