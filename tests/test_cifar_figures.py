"""`clspec cifar figures`: Fig. 1, 2c-d and 3 drawn from saved run folders only."""

from __future__ import annotations

import json

import numpy as np

from experiments.cifar import figures
from experiments.cli import main


def write_run(root, name, *, mode, init, noise, method="ce", epochs=5, seed=0):
    rng = np.random.default_rng([seed, sum(name.encode())])
    d = root / name
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"mode": mode, "init": init, "noise": noise, "method": method,
                                               "seed": seed}))
    rows = [{"epoch": e + 1, "test_acc": float(rng.uniform(0.1, 0.7)), "test_loss": 2.0 - 0.1 * e,
             "train_acc_clean": float(rng.uniform(0.1, 0.7)), "train_loss_clean": 2.1 - 0.1 * e,
             "noisy_points_loss": 1.9 - 0.01 * e} for e in range(epochs)]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def test_every_figure_is_drawn_from_saved_runs_and_only_from_them(tmp_path, capsys):
    runs = [write_run(tmp_path, f"probe-{z}", mode="probe", init="pretrained", noise=z) for z in ("sym:0.2", "sym:0.8")]
    runs += [write_run(tmp_path, f"ft-{i}-{s}", mode="finetune", init=i, noise="sym:0.8", seed=s)
             for i in ("random", "pretrained") for s in (0, 1)]
    runs.append(write_run(tmp_path, "elr", mode="finetune", init="random", noise="sym:0.8", method="elr"))
    out = tmp_path / "figs"
    assert main(["cifar", "figures", *map(str, runs), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(figures.FIGURES)
    first = {n: (out / n).read_bytes() for n in names}
    # Re-plotting the same runs gives the same files; changing a saved metric changes its figure.
    figures.draw(runs, out)
    assert {n: (out / n).read_bytes() for n in names} == first
    jsonl = runs[2] / "metrics.jsonl"
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    rows[0]["test_acc"] = 0.99
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    figures.draw(runs, out)
    assert (out / "fig2cd_early.png").read_bytes() != first["fig2cd_early.png"]
    assert (out / "fig1_probe.png").read_bytes() == first["fig1_probe.png"]


def test_a_figure_without_its_runs_is_not_drawn(tmp_path, capsys):
    run = write_run(tmp_path, "ft", mode="finetune", init="random", noise="sym:0.8")
    drawn = figures.draw([run], tmp_path / "figs")
    assert drawn == {name: None for name in figures.FIGURES}
    assert main(["cifar", "figures", str(run), "--out", str(tmp_path / "f2")]) == 0
    assert "not drawn" in capsys.readouterr().err
    code = main(["cifar", "figures", str(tmp_path / "nothing")])
    assert code == 2 and "not a training run folder" in capsys.readouterr().err
