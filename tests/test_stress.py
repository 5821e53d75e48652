"""The stress measures: accuracy under a shift against an independent numpy forward pass, the
test-set-noise ratio against its Bernoulli null on synthetic correctness, the ensemble shortcut;
and the analysis of a small sweep with the suite on."""
import csv
import json

import numpy as np
import pytest
import torch

from underspec.measures.results import Analysis
from underspec.measures.stress import (
    ensemble_correct,
    logits,
    noise_null,
    noise_ratio,
    run_outputs,
    seeds_logits,
    spread_stats,
    std_ratio,
)
from underspec.measures.targets import SeedData
from underspec.spec.config import AnalyzeConfig, ConfigError, SweepConfig
from underspec.spec.parsing import stress_families
from underspec.steps import stress as stress_step
from underspec.steps.analyze import run_analysis
from underspec.steps.loading import analysis_images
from underspec.steps.sweep import run_sweep
from underspec.training.data import fold_labels
from underspec.training.shifts import all_shifts, digest, make_shift

NEAR_TIE = 1e-4  # top-two logit margin below which float32 summation order may flip a prediction


def numpy_correct(net, x_u8, y):
    """(correct (n,) bool, top-two margin (n,)) of a float64 numpy forward pass over uint8 images."""
    X = x_u8.reshape(len(x_u8), -1).astype(np.float64) / 255
    W1, b1, W2, b2 = (np.asarray(net[k], np.float64) for k in ("W1", "b1", "W2", "b2"))
    z = np.maximum(X @ W1.T + b1, 0) @ W2.T + b2
    top = np.sort(z, 1)
    return z.argmax(1) == y, top[:, -1] - top[:, -2]


def test_accuracy_under_a_shift_equals_an_independent_numpy_forward_pass(tiny_data):
    rng = np.random.default_rng(3)
    x = (tiny_data.test_x * 255).round().to(torch.uint8).reshape(-1, 28, 28).numpy()
    for C in (3, 10):
        y = fold_labels(tiny_data.test_y, C)
        net = {"W1": rng.normal(0, 0.05, (16, 784)).astype(np.float32), "b1": rng.normal(0, 0.1, 16).astype(np.float32),
               "W2": rng.normal(0, 0.3, (C, 16)).astype(np.float32), "b2": np.zeros(C, np.float32)}
        for s in all_shifts()[::3]:
            shifted = make_shift(x, s)
            X = torch.from_numpy(shifted.reshape(len(x), 784)).to(torch.float32).div(255)
            out = run_outputs(net, X, y)
            correct, margin = numpy_correct(net, shifted, y.numpy())
            sure = margin >= NEAR_TIE
            assert np.array_equal((out.pred == y.numpy())[sure], correct[sure]), s.name
            assert abs(out.acc * len(x) - correct.sum()) <= (~sure).sum()
            hidden = np.maximum(X.double().numpy() @ net["W1"].T.astype(np.float64) + net["b1"], 0)
            logp = torch.log_softmax(torch.from_numpy(hidden @ net["W2"].T + net["b2"]), 1)
            assert abs(out.loss + float(logp[torch.arange(len(y)), y].mean())) < 1e-5


def test_the_seeds_first_layers_as_one_product_give_each_network_its_own_logits(tiny_data):
    rng = np.random.default_rng(4)
    nets = [{"W1": rng.normal(0, 0.05, (16, 784)).astype(np.float32), "b1": rng.normal(0, 0.1, 16).astype(np.float32),
             "W2": rng.normal(0, 0.3, (5, 16)).astype(np.float32), "b2": rng.normal(0, 0.1, 5).astype(np.float32)}
            for _ in range(4)]
    X = tiny_data.test_x.reshape(len(tiny_data.test_x), -1)
    for net, z in zip(nets, seeds_logits(nets, X), strict=True):
        alone = logits(net, X)
        assert z.shape == alone.shape and torch.allclose(z, alone, atol=1e-5, rtol=0)


def test_the_noise_ratio_is_inside_its_null_for_independent_errors_and_above_it_for_a_block():
    """20 seeds, 10,000 images, fixed p_i: independent draws fall inside the null's 95% range (19 of
    20 expected; at least 17 of 20 data sets asked) and average about 1; a block of 300 images half
    the seeds get wrong and half right lies above the range."""
    rng = np.random.default_rng(0)
    k, n = 20, 10000
    p = rng.beta(8, 1, n)  # fixed per-image chances of being right, mean about 0.89
    inside, ratios = 0, []
    for t in range(20):
        independent = rng.random((k, n)) < p
        lo, hi = np.percentile(noise_null(independent, draws=100, rng_seed=t), [2.5, 97.5])
        ratios.append(noise_ratio(independent))
        inside += bool(lo < ratios[-1] < hi) and lo < 1 < hi
    assert inside >= 17 and abs(np.mean(ratios) - 1) < 0.15, (inside, np.mean(ratios))
    block = independent.copy()
    block[: k // 2, :300], block[k // 2 :, :300] = False, True
    assert noise_ratio(block) > np.percentile(noise_null(block, draws=100), 97.5)
    assert np.isnan(noise_ratio(np.ones((5, 100), bool)))  # every seed right everywhere: no noise


def test_the_ensemble_shortcut_equals_averaging_every_image():
    rng = np.random.default_rng(1)
    k, n, C = 5, 400, 4
    logits = rng.normal(0, 1, (1, n, C)) + rng.normal(0, 0.7, (k, n, C))
    prob = (np.exp(logits) / np.exp(logits).sum(2, keepdims=True)).astype(np.float32)
    pred, y = prob.argmax(2), rng.integers(0, C, n)
    weights = rng.integers(0, 3, (30, k)).astype(np.float32)
    weights[weights.sum(1) == 0, 0] = 1
    brute = [(np.einsum("k,knc->nc", w, prob).argmax(1) == y).sum() for w in weights]
    assert ensemble_correct(prob, pred, y, weights).tolist() == brute


def test_the_seed_spread_and_its_ratio():
    acc, iid = np.array([0.9, 0.92, 0.95]), np.array([0.97, 0.975, 0.98])
    idx = np.random.default_rng(0).integers(0, 3, (500, 3))
    s = spread_stats(acc, idx)
    assert s["acc"][0] == pytest.approx(0.92333333) and s["acc_range"][0] == pytest.approx(0.05)
    assert s["acc_std"][0] == pytest.approx(acc.std(ddof=1)) and s["acc"][2] <= s["acc"][0] <= s["acc"][3]
    ratio = std_ratio(acc, iid, idx)
    assert ratio[0] == pytest.approx(acc.std(ddof=1) / iid.std(ddof=1)) and np.isfinite(ratio[2:4]).all()


def test_the_stress_parameter_picks_families_or_turns_the_suite_off():
    assert stress_families("all")[0] == "rotate" and stress_families("none") is None
    assert stress_families("blur, stripe") == ("blur", "stripe")
    with pytest.raises(ConfigError, match="stress='blurr'"):
        stress_families("blurr")
    with pytest.raises(ConfigError, match="stress='blurr'"):
        AnalyzeConfig.from_strings(stress="blurr")  # refused with the other bad input, before any store is read
    assert AnalyzeConfig().stress == "all" and AnalyzeConfig.from_strings(stress=" none ").stress == "none"


def read_rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_a_small_sweep_has_the_stress_rows_and_each_training_run_its_stress_metrics(tracking, tiny_root, tmp_path):
    """3 seeds x lambda {0, 0.01} x C {3, 10}, 2 epochs (tiny MNIST): every shift's rows in
    metrics.csv, the noise ratio with its null range, the ensemble rows; `stress.*` on each
    training run; the identity's correct count is test_acc's; the suite as dataset inputs."""
    cfg = SweepConfig(name="small", seeds=(0, 1, 2), lambdas=(0.0, 0.01), classes=(3, 10), epochs=2,
                      probe_size=30, workers=1, analyze=False, data_dir=str(tiny_root),
                      storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    run_sweep(cfg)
    assert run_analysis(AnalyzeConfig(sweep="small", bootstrap=50, out_dir=str(tmp_path / "r"),
                                      data_dir=str(tiny_root))) == 0
    out = tmp_path / "r" / "small"
    every = read_rows(out / "metrics.csv")
    rows = [r for r in every if r["target"] == "stress"]
    interval = {}
    for r in every:
        interval.setdefault(r["mode"], set()).add(r["interval"])
    assert interval["seeds"] == {"min_max"} and interval["seed_min"] == interval["measured"] == {"none"}
    assert interval["all_pairs"] == interval["seed_bootstrap"] == {"bootstrap_95"}
    assert interval["chance_bernoulli"] == {"null_range_95"}
    assert interval["reference"] == {"bootstrap_95_given_reference"}
    names = [s.name for s in all_shifts()]
    have = {(r["lambda"], r["classes"], r["metric"], r["mode"]) for r in rows}
    for lam in ("0.0", "0.01"):
        for C in ("3", "10"):
            for name in names:
                want = [(f"acc.{name}", m) for m in ("seed_bootstrap", "seed_min", "seed_max")] + [
                    (f"acc_std.{name}", "seed_bootstrap"), (f"disagreement.{name}", "all_pairs"),
                    (f"ensemble_acc.{name}", "ensemble"), (f"ensemble_gain.{name}", "ensemble"),
                    (f"noise_ratio.{name}", "measured"), (f"noise_ratio.{name}", "chance_bernoulli")]
                want += [(f"std_ratio.{name}", "seed_bootstrap")] if name != "identity" else []
                assert {(lam, C, m, mode) for m, mode in want} <= have, (lam, C, name)
    null = [r for r in rows if r["mode"] == "chance_bernoulli"]
    assert all(float(r["ci_low"]) <= float(r["ci_high"]) for r in null if r["ci_low"] != "nan")
    assert {"stress.png", "stress_scatter.png", "stress_samples.png"} <= {p.name for p in (out / "figures").iterdir()}
    assert "## Does the difference matter? Seeds under shift" in (out / "report.md").read_text()
    trends = {r["contrast"]: r for r in read_rows(out / "trends.csv")}
    for stat in ("acc_std", "disagreement"):
        for c in ("falls_with_lambda", "at_0.01_minus_0.0", "falls_with_C"):
            assert np.isfinite(float(trends[f"{stat}_{c}"]["tie_margin"])), (stat, c)
    assert {"stress_disagreement_vs_pe", "stress_disagreement_vs_loss_barrier"} <= set(trends)
    exp = tracking.get_experiment_by_name("underspec-test").experiment_id
    x = None
    for run in tracking.search_runs([exp], "tags.`underspec.role` = 'train'"):
        m = run.data.metrics
        assert {f"stress.{n}.acc" for n in names} | {f"stress.{n}.loss" for n in names} <= set(m)
        path = tracking.download_artifacts(run.info.run_id, "trajectory.npz", str(tmp_path / run.info.run_id))
        with np.load(path) as z:
            net = {k: z[k][-1] for k in ("W1", "b1", "W2", "b2")}
        if x is None:
            from underspec.training.data import load_mnist
            data = load_mnist(tiny_root)
            x = (data.test_x * 255).round().to(torch.uint8).reshape(-1, 28, 28).numpy()
        correct, margin = numpy_correct(net, x, fold_labels(data.test_y, int(run.data.params["classes"])).numpy())
        ties = int((margin < NEAR_TIE).sum())
        assert abs(round(m["stress.identity.acc"] * len(x)) - round(m["test_acc"] * len(x))) <= ties
        assert abs(round(m["stress.identity.acc"] * len(x)) - correct.sum()) <= ties
    analysis = tracking.search_runs([exp], "tags.`underspec.role` = 'analysis'")[0]
    inputs = [d for d in analysis.inputs.dataset_inputs if any(t.value == "stress" for t in d.tags)]
    digests = {d.dataset.name.split("/", 1)[1]: d.dataset.digest for d in inputs}
    assert digests == {s.name: digest(make_shift(x, s)) for s in all_shifts()}  # independent of the runs
    assert json.loads(inputs[0].dataset.source)["suite"].startswith("mnist-stress-v1-")


def test_the_background_queue_gives_the_serial_results_in_the_serial_places(tiny_root):
    """The cells' stress work on a background thread: the rows, per-run metrics and trend inputs
    of a serial run (threads=0), each cell's stress rows right after the cell's own row."""
    images = stress_step.with_suite(analysis_images(str(tiny_root)),
                                    AnalyzeConfig(data_dir=str(tiny_root), stress="rotate,gauss"))
    rng = np.random.default_rng(5)
    def traj(C):  # two epochs of a 784-16-C network
        return {"W1": rng.normal(0, 0.05, (2, 16, 784)), "b1": rng.normal(0, 0.1, (2, 16)),
                "W2": rng.normal(0, 0.3, (2, C, 16)), "b2": np.zeros((2, C))}

    cells = {(lam, C): {s: SeedData(f"r{lam}-{C}-{s}", {k: v.astype(np.float32) for k, v in traj(C).items()})
                        for s in (0, 1, 2)} for lam, C in ((0.0, 3), (0.0, 10), (0.01, 3))}

    final = {(cell, s): sd.traj["W1"][-1].copy() for cell, seeds in cells.items() for s, sd in seeds.items()}

    def analysis(threads: int) -> Analysis:
        out = Analysis()
        out.per_run["r0.0-3-0"] = {"test_acc": 0.5}  # a run's own metrics, kept beside its stress metrics
        with stress_step.Queue(images, 30, threads) as queue:
            for cell, seeds in cells.items():
                out.rows.append({"own row of": cell})
                queue.submit(cell, seeds, out)
                for sd in seeds.values():  # what the analysis drops after submit never reaches the worker
                    sd.traj["W1"][-1] += 1.0
            queue.drain(out)
        for (cell, s), w in final.items():
            cells[cell][s].traj["W1"][-1] = w  # exactly: (w + 1) - 1 rounds
        return out

    serial, overlapped = analysis(0), analysis(1)
    assert repr(overlapped.rows) == repr(serial.rows) and overlapped.per_run == serial.per_run
    assert overlapped.loaded.stress["accs"] == serial.loaded.stress["accs"]
    for cell, sc in serial.loaded.stress_cells.items():
        other = overlapped.loaded.stress_cells[cell]
        assert np.array_equal(sc.acc, other.acc) and repr(sc.on_images) == repr(other.on_images)
        assert repr(sc.dis) == repr(other.dis)
    cell, count = None, {}
    for r in overlapped.rows:
        cell = r.get("own row of", cell)
        assert "own row of" in r or (r["lambda"], r["classes"]) == cell
        count[cell] = count.get(cell, 0) + ("own row of" not in r)
    assert count == {cell: count[(0.0, 3)] for cell in cells} and count[(0.0, 3)] > 10
    assert len(overlapped.per_run) == 9 and overlapped.per_run["r0.0-3-0"]["test_acc"] == 0.5
    assert set(overlapped.loaded.stress["samples"]) == set(stress_step.suite_of(images).X)
