"""The `r1zero` command: user errors exit 2 with one clear line; grade end to end."""

import json

import pytest

from r1zero.cli import main


def _run(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.mark.parametrize("args, message", [
    (["train", "--preset", "nope"], "unknown preset 'nope'"),
    (["train", "--algorithm", "ppo2"], "unknown algorithm 'ppo2'"),
    (["train", "--group-size", "0"], "group_size must be >= 1"),
    (["train", "--preset", "math"], "needs --task.train-path"),
    (["train", "--algo.clip-low", "1.5"], "clip_low"),
    (["frobnicate"], "unknown command"),
])
def test_user_errors_exit_2_before_loading_a_model(args, message, capsys):
    code, _, err = _run(args, capsys)
    assert code == 2 and message in err


def test_grade_command(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([
        json.dumps({"response": "so \\boxed{\\frac{1}{2}}", "gold": "0.5"}),
        "not json",
        json.dumps({"response": "<think>x</think> <answer>7</answer>", "gold": "7", "template": "r1"}),
    ]) + "\n")
    out = tmp_path / "out.jsonl"
    code, stdout, _ = _run(["grade", "--input", str(src), "--output", str(out)], capsys)
    assert code == 0 and "accuracy 0.6667" in stdout
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["correct"] for r in rows] == [True, False, True]
    assert rows[1]["reason"] == "bad_input"


def test_plot_missing_run_dir(tmp_path, capsys):
    code, _, err = _run(["plot", str(tmp_path / "nowhere")], capsys)
    assert code == 2 and "metrics.jsonl" in err
