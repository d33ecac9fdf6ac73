"""`r1zero plot`: figures from a synthetic metrics.jsonl, skipping of absent / null
metrics, the derived length gap, run overlays, and clear errors when nothing is there."""

from __future__ import annotations

import json
import random

import pytest

from r1zero.plotting import LEN_GAP, load_metrics, plot_compare, plot_run


def _write_metrics(run_dir, n_steps=60, *, kl=False, seed=0):
    """A GRPO-like run: wrong answers grow longer than right ones. No KL unless asked
    (beta = 0), no reflection rate at all, entropy null on some steps."""
    rng = random.Random(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "metrics.jsonl", "w") as f:
        for s in range(1, n_steps + 1):
            rec = {
                "step": s, "time": 1000.0 + s,
                "reward/mean": 0.2 + 0.005 * s + rng.uniform(-0.05, 0.05),
                "reward/accuracy": 0.2 + 0.005 * s,
                "reward/zero_var_group_frac": 0.3,
                "rollout/len_mean": 60 + s, "rollout/len_correct": 50.0,
                "rollout/len_incorrect": 60.0 + 2 * s, "rollout/len_truncated": 96.0,
                "rollout/truncated_frac": 0.1,
                "policy/entropy": None if s % 7 == 0 else 1.2 - 0.01 * s,
                "policy/clip_frac_low": 0.01, "policy/clip_frac_high": 0.02,
                "optim/grad_norm": 0.5, "perf/step_s": 20.0, "perf/gen_s": 4.0,
            }
            if kl:
                rec["policy/kl"] = 0.001 * s
            if s % 10 == 0:
                rec.update({"eval/accuracy": 0.3, "eval/len_mean": 70.0})
            f.write(json.dumps(rec) + "\n")


def test_plot_run_writes_pngs_and_skips_absent_groups(tmp_path):
    run = tmp_path / "run"
    _write_metrics(run)
    paths = plot_run(run)
    names = [p.name for p in paths]
    assert names == ["reward.png", "length.png", "entropy.png", "clip.png", "optim.png", "throughput.png"]
    for p in paths:
        assert p.parent == run / "plots"
        assert p.stat().st_size > 1000 and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # No reflection rate and no KL logged -> no such figures (rather than empty axes).
    assert not (run / "plots" / "reflection.png").exists()
    assert not (run / "plots" / "kl.png").exists()


def test_plot_run_custom_out_dir_and_kl_when_present(tmp_path):
    run = tmp_path / "run"
    _write_metrics(run, n_steps=5, kl=True)
    paths = plot_run(run, out_dir=tmp_path / "figs")
    assert (tmp_path / "figs" / "kl.png") in paths
    assert all(p.parent == tmp_path / "figs" for p in paths)


def test_plot_run_tolerates_truncated_last_line(tmp_path):
    run = tmp_path / "run"
    _write_metrics(run, n_steps=3)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "reward/me')
    assert plot_run(run)


def test_length_gap_is_derived(tmp_path):
    _write_metrics(tmp_path, n_steps=3)
    records = load_metrics(tmp_path)
    # len_incorrect - len_correct = (60 + 2s) - 50
    assert [r[LEN_GAP] for r in records] == [12.0, 14.0, 16.0]


def test_plot_run_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        plot_run(tmp_path)


def test_plot_run_empty_file_names_it(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(ValueError, match="metrics.jsonl"):
        plot_run(tmp_path)


def test_plot_run_only_unknown_metrics_gives_no_figures(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "custom/x": 1.0, "reward/mean": null}\n')
    assert plot_run(tmp_path) == []


def test_plot_compare_overlays_runs(tmp_path):
    _write_metrics(tmp_path / "grpo", seed=0)
    _write_metrics(tmp_path / "dr_grpo", seed=1)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "metrics.jsonl").write_text('{"step": 1, "reward/mean": 0.1}\n')
    out = tmp_path / "cmp" / "len.png"
    with pytest.warns(UserWarning, match="rollout/len_incorrect"):
        path = plot_compare([tmp_path / "grpo", tmp_path / "dr_grpo", tmp_path / "other"],
                            "rollout/len_incorrect", out)
    assert path == out and out.stat().st_size > 1000


def test_plot_compare_metric_absent_everywhere(tmp_path):
    _write_metrics(tmp_path / "a", n_steps=3)
    with pytest.raises(ValueError, match="policy/kl"), pytest.warns(UserWarning):
        plot_compare([tmp_path / "a"], "policy/kl", tmp_path / "x.png")


def test_plot_overlay_and_the_multi_run_command(tmp_path, capsys):
    from r1zero import cli
    from r1zero.plotting import plot_overlay

    a, b = tmp_path / "grpo", tmp_path / "dr_grpo"
    _write_metrics(a, 20)
    _write_metrics(b, 20, seed=1)
    out = plot_overlay([a, b], tmp_path / "cmp.png", labels=["grpo", "dr_grpo"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="labels"):
        plot_overlay([a, b], tmp_path / "x.png", labels=["one"])
    assert cli.cmd_plot([str(a), str(b), "--labels", "grpo", "dr_grpo"]) == 0
    printed = capsys.readouterr().out.split()
    assert str(a / "plots" / "compare.png") in printed and str(b / "plots" / "length.png") in printed
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "metrics.jsonl").write_text(json.dumps({"step": 1, "other/x": 1.0}) + "\n")
    with pytest.raises(ValueError, match="accuracy or length"):
        plot_overlay([empty], tmp_path / "y.png")


def test_length_study_summary(tmp_path):
    """`make study`'s table and gap line from two runs' metrics (no training here)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "length_study", Path(__file__).resolve().parents[1] / "scripts" / "length_study.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    _write_metrics(tmp_path / "grpo", 30)  # len_incorrect = 60 + 2 s
    runs = {"grpo": tmp_path / "grpo", "dr_grpo": tmp_path / "dr"}
    (tmp_path / "dr").mkdir()
    (tmp_path / "dr" / "metrics.jsonl").write_text("".join(
        json.dumps({"step": s, "rollout/len_incorrect": 50.0, "reward/accuracy": 0.5}) + "\n"
        for s in range(1, 31)))
    table, gap = study.summary(runs)
    # last third of steps 1..30 = steps 21..30: mean of 60 + 2 s = 60 + 2 * 25.5 = 111
    assert gap == pytest.approx(111.0 - 50.0)
    assert table.count("\n") == 3 and "| grpo |" in table


# ----------------------------------------------------------------------------- what is drawn
@pytest.fixture
def saved_figures(monkeypatch):
    """The matplotlib Figures that `savefig` was called on (still written to disk)."""
    from matplotlib.figure import Figure

    figures, real = [], Figure.savefig

    def keep(self, *args, **kwargs):
        figures.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


def test_the_x_axis_says_what_the_steps_are(tmp_path, saved_figures):
    """Before: "optimizer step" under rollout steps (a step may hold several optimizer
    steps). Now every figure's x axis is the training step of r1zero/logging.py."""
    from r1zero.logging import STEP_AXIS
    from r1zero.plotting import plot_overlay

    _write_metrics(tmp_path / "a", n_steps=5)
    _write_metrics(tmp_path / "b", n_steps=5, seed=1)
    plot_run(tmp_path / "a")
    plot_compare([tmp_path / "a", tmp_path / "b"], "reward/mean", tmp_path / "c.png")
    plot_overlay([tmp_path / "a", tmp_path / "b"], tmp_path / "o.png")
    assert saved_figures and all(f.axes[-1].get_xlabel() == STEP_AXIS for f in saved_figures)
    assert "optimizer" not in STEP_AXIS


def test_a_one_step_run_is_drawn_as_points(tmp_path, saved_figures):
    """A 1-step run has one value per metric: a line without markers draws nothing."""
    _write_metrics(tmp_path / "run", n_steps=1)
    plot_run(tmp_path / "run")
    lines = [ln for f in saved_figures for ax in f.axes for ln in ax.get_lines()
             if len(ln.get_xdata()) == 1]
    assert lines and all(ln.get_marker() not in (None, "None", "", " ") for ln in lines)


def test_a_long_run_keeps_plain_lines(tmp_path, saved_figures):
    _write_metrics(tmp_path / "run", n_steps=60)
    plot_run(tmp_path / "run")
    reward = saved_figures[0].axes[0].get_lines()[0]  # mean reward: 60 points, smoothed
    assert reward.get_marker() in (None, "None", "")


def test_mismatch_figure_when_the_run_logged_it(tmp_path):
    """A run that logged mismatch/* gets mismatch.png; one that did not (above) gets none."""
    run = tmp_path / "run"
    _write_metrics(run, n_steps=5)
    with open(run / "metrics.jsonl", "a") as f:
        for s in range(6, 9):
            f.write(json.dumps({"step": s, "mismatch/kl_k1": 0.01 * s, "mismatch/kl_k3": 0.008 * s,
                                "mismatch/is_ratio_p99": 1.5, "mismatch/is_ratio_p50": 1.0,
                                "mismatch/masked_frac": 0.02, "rollout/token_staleness_mean": 1.4}) + "\n")
    paths = plot_run(run)
    assert run / "plots" / "mismatch.png" in paths
    assert (run / "plots" / "mismatch.png").read_bytes()[:4] == b"\x89PNG"


def test_correction_study_table(tmp_path):
    """`make study ARGS="--corrections ..."`: reward / accuracy over the last third, the
    mismatch columns over every step (no training here)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "length_study", Path(__file__).resolve().parents[1] / "scripts" / "length_study.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    run = tmp_path / "token_tis"
    run.mkdir()
    # kl_k3 = 0.01 s over steps 1..6: mean 0.035; reward = s / 10, last third (5, 6): 0.55.
    (run / "metrics.jsonl").write_text("".join(
        json.dumps({"step": s, "reward/mean": s / 10, "mismatch/kl_k3": 0.01 * s,
                    **({"eval/accuracy": 0.1 * s} if s % 3 == 0 else {})}) + "\n" for s in range(1, 7)))
    table = study.correction_summary({"token_tis": run})
    row = table.splitlines()[-1].split(" | ")
    head = table.splitlines()[0].split(" | ")
    assert row[head.index("reward (last ⅓)")] == "0.550" and row[head.index("KL k3")] == "0.035"
    assert row[-1].startswith("0.30 → 0.60") and row[head.index("r p99")] == "-"
