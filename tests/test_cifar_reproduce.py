"""`clspec cifar reproduce`: Table 1 on the smoke preset end to end (with a resume after an
interrupted grid), Table 3 on a tiny generated image folder, the table definitions and bad input."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from experiments.cifar import configs, grids, reproduce
from experiments.cli import main
from tests.test_cifar_cli import _cache, folder, run  # noqa: F401  (fixtures: a private cache, the image folder)


def test_table1_smoke_end_to_end_with_a_resume_after_an_interrupted_grid(tmp_path, folder, capsys):  # noqa: F811
    g = reproduce.grid(1, "smoke")
    runs = g.runs()
    assert len(runs) == 8 and {c.label for c, _ in runs} == {
        "CE (random init)", "ELR", "Mixup", "Crust", "CL+E2E", "CL+ELR", "CL+Mixup", "CL+Crust"}
    results = tmp_path / "results"
    # Interrupted: run 1 (ELR from random init) stops after its first epoch, as a kill would.
    assert reproduce.run_grid(g, data=str(folder), results=results, stop_after=(1, 1)) is None
    out = reproduce.grid_dir(g, results)
    first = out / "runs" / f"{runs[0][0].name()}-seed0"
    done_bytes = (first / "checkpoint.msgpack").read_bytes()
    assert reproduce.run_status(first, 2) == "done"
    assert reproduce.run_status(out / "runs" / f"{runs[1][0].name()}-seed0", 2) == "resume"
    assert not (out / "table.md").exists()

    code, stdout, err = run(["cifar", "reproduce", "--table", "1", "--preset", "smoke", "--data", str(folder),
                             "--results", str(results), "--no-progress"], capsys)
    assert code == 0, err
    assert "[1/8] CE (random init) sym:0.8 seed 0: done" in err and "[2/8] ELR sym:0.8 seed 0: resume" in err
    assert (first / "checkpoint.msgpack").read_bytes() == done_bytes  # the finished run was not redone
    assert "reproduce: pre-training tiny (new)" in err
    table = json.loads((out / "table.json").read_text())
    rows = {r["label"]: r for r in table["rows"]}
    assert len(rows) == 8 and all(r["last"]["n"] == 1 for r in rows.values())
    for r in rows.values():
        run_dir = out / "runs" / f"{reproduce.Cell(r['method'], r['init'], r['noise']).name()}-seed0"
        epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert r["last"]["mean"] == pytest.approx(100 * epochs[-1]["test_acc"])
        assert r["best"]["mean"] == pytest.approx(100 * max(e["test_acc"] for e in epochs))
    assert rows["CL+ELR"]["paper"] == 77.7 and rows["CE (random init)"]["paper"] is None
    assert rows["CL+ELR"]["last_minus_paper"] == pytest.approx(rows["CL+ELR"]["last"]["mean"] - 77.7)
    md = (out / "table.md").read_text()
    assert "selected on the test set" in md and "| CL+ELR | sym:0.8 | 1 |" in md and "77.7" in md
    assert md in stdout
    # The resumed ELR run has both epochs, in one metrics file.
    elr = out / "runs" / f"{runs[1][0].name()}-seed0"
    assert len((elr / "metrics.jsonl").read_text().splitlines()) == 2

    # Nothing left to do: a second call only rewrites the table.
    code, _, err = run(["cifar", "reproduce", "--table", "1", "--preset", "smoke", "--data", str(folder),
                        "--results", str(results), "--no-progress"], capsys)
    assert code == 0 and err.count(": done") == 8 and "pre-training" not in err
    # --collect runs nothing: the same table (and the evidence file) from the finished runs.
    evidence = tmp_path / "evidence.json"
    code, _, err = run(["cifar", "reproduce", "--table", "1", "--preset", "smoke", "--results", str(results),
                        "--collect", "--evidence", str(evidence)], capsys)
    assert code == 0 and "seed 0" not in err, err
    assert json.loads((out / "table.json").read_text())["rows"] == table["rows"]
    ev = json.loads(evidence.read_text())
    assert len(ev["runs"]) == 8 and {"command", "commit", "date", "machine", "settings"} <= set(ev)
    elr_ev = next(r for r in ev["runs"] if r["label"] == "ELR")
    assert elr_ev["last_test_acc"] == rows["ELR"]["last"]["mean"] and len(elr_ev["curves"]["test_acc"]) == 2


def test_extra_seeds_of_chosen_cells_resume_and_record_the_checkpoint(tmp_path, folder, capsys):  # noqa: F811
    """--cells and --seed-start (stage 2 of methods_cpu): only those cells, only those seeds; an interrupted
    CL-init run resumes (its checkpoint's sha256 is part of the run's identity); the evidence records it."""
    results = tmp_path / "results"
    g = reproduce.select(reproduce.grid(1, "smoke"), cells="ce/sym:0.8")
    g = dataclasses.replace(g, seed_start=2)
    assert [(c.name(), s) for c, s in g.runs()] == [("ce-random-sym0.8", 2), ("ce-pretrained-sym0.8", 2)]
    assert reproduce.run_grid(g, data=str(folder), results=results, stop_after=(1, 1)) is None
    out = reproduce.grid_dir(g, results)
    assert reproduce.run_status(out / "runs" / "ce-pretrained-sym0.8-seed2", 2) == "resume"
    argv = ["cifar", "reproduce", "--table", "1", "--preset", "smoke", "--cells", "ce/sym:0.8", "--seed-start", "2",
            "--data", str(folder), "--results", str(results), "--no-progress"]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert "[1/2] CE (random init) sym:0.8 seed 2: done" in err and "[2/2] CL+E2E sym:0.8 seed 2: resume" in err
    assert "seed 0" not in err and "ELR" not in err
    code, _, err = run(argv, capsys)  # a rerun skips both
    assert code == 0 and err.count(": done") == 2
    evidence = tmp_path / "stage2.json"
    code, _, err = run(argv + ["--collect", "--evidence", str(evidence)], capsys)
    assert code == 0, err
    ev = json.loads(evidence.read_text())
    sha = hashlib.sha256((reproduce.pretrain_path(g, "tiny", results) / "checkpoint.msgpack").read_bytes()).hexdigest()
    assert ev["pretrain_checkpoint_sha256"] == [sha] and "--seed-start 2" in ev["command"]
    assert {(r["init"], r["seed"], r.get("init_sha256")) for r in ev["runs"]} == {("random", 2, None),
                                                                                ("pretrained", 2, sha)}


def test_table3_on_a_generated_image_folder(tmp_path, folder, capsys):  # noqa: F811
    results = tmp_path / "results"
    code, stdout, err = run(["cifar", "reproduce", "--table", "3", "--preset", "smoke", "--data", str(folder),
                             "--results", str(results), "--methods", "ce", "--no-progress"], capsys)
    assert code == 0, err
    table = json.loads((reproduce.grid_dir(reproduce.grid(3, "smoke"), results) / "table.json").read_text())
    (row,) = table["rows"]
    assert row["label"] == "CL+E2E" and row["noise"] == "none" and row["paper"] == 71.84
    assert row["paper_top5"] == 88.84 and row["last_top5"]["mean"] >= row["last"]["mean"]
    assert "last top-5" in stdout


def test_tables_are_defined_for_every_preset():
    for table in reproduce.TABLES:
        for preset in configs.PRESETS:
            g = reproduce.grid(table, preset)
            assert g.cells and g.seeds >= 1
            for cell, seed in g.runs():
                g.train_config(cell, seed)  # valid settings
    paper = reproduce.grid(1, "paper")
    assert len(paper.runs()) == 4 * 2 * 4 * 3 and paper.train.epochs == 120
    t2 = reproduce.grid(2, "paper")
    assert {c.arch for c in t2.cells} == {"resnet32", "resnet34"} and {c.method for c in t2.cells} == {"mixup"}
    assert {c.label for c in reproduce.grid(3, "paper").cells} == set(grids.PAPER_T3)
    cpu = reproduce.grid(1, "cpu")
    assert len(cpu.runs()) == 32 and cpu.subset is None and cpu.train.epochs == 8
    assert [c.noise for c in cpu.cells] == ["sym:0.8"] * 8 + ["asym:0.4"] * 8
    # seed-major: every cell's seed 0 comes before any seed 1
    assert [s for _, s in cpu.runs()] == [0] * 16 + [1] * 16
    # --noises keeps one noise setting's cells, in order
    sym = reproduce.select(cpu, noises="sym:0.8")
    assert [c.noise for c in sym.cells] == ["sym:0.8"] * 8 and len(sym.runs()) == 16
    # --cells keeps exact method/noise pairs (both inits); --seed-start shifts the seeds
    two = reproduce.select(cpu, cells="elr/sym:0.8, crust/asym:0.4")
    assert [c.name() for c in two.cells] == ["elr-random-sym0.8", "elr-pretrained-sym0.8", "crust-random-asym0.4",
                                             "crust-pretrained-asym0.4"]
    assert [s for _, s in dataclasses.replace(two, seed_start=3).runs(2)] == [3] * 4 + [4] * 4


def test_dry_run_prints_the_grid_and_an_estimate_from_the_rates(tmp_path):
    g = reproduce.select(reproduce.grid(1, "cpu"), noises="sym:0.8")
    rates = {"train_images_per_s": 20.0, "eval_images_per_s": 100.0}
    text = reproduce.dry_run(g, seeds=1, results=tmp_path, n_train=1000, n_test=1000, rates=rates)
    assert "8 runs" in text and "CL+Crust" in text and "pretrain resnet32: new" in text
    # CE: 8 epochs x (1000 / 20 + (500 + 1000) / 100) s = 8 x 65 s.
    assert reproduce.estimate_s(g.train_config(g.cells[0], 0), 1000, 1000, rates) == pytest.approx(8 * 65)
    # Crust: 4 warm-up epochs, then 4 epochs on half the points plus a pass over all of them.
    crust = next(c for c in g.cells if c.method == "crust")
    assert reproduce.estimate_s(g.train_config(crust, 0), 1000, 1000, rates) == pytest.approx(
        4 * 65 + 4 * (500 / 20 + 2500 / 100))


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--table", "4"], "table must be one of (1, 2, 3), got 4"),
        (["--table", "1", "--seeds", "0"], "--seeds must be >= 1, got 0"),
        (["--table", "1", "--methods", "ce,sgd"], "'sgd'"),
        (["--table", "1", "--inits", "imagenet"], "'imagenet'"),
        (["--table", "1", "--preset", "cpu", "--noises", "sym:0.3"], "--noises: must be a comma-separated subset"),
        (["--table", "1", "--preset", "huge"], "preset must be one of"),
        (["--table", "3"], "--table 3 needs --data"),
        (["--table", "1", "--data", "/nonexistent/x"], "does not exist"),
        (["--table", "1", "--seed-start", "-1"], "--seed-start must be >= 0, got -1"),
        (["--table", "1", "--preset", "cpu", "--cells", "elr/sym:0.3"], "--cells: each item must be METHOD/NOISE"),
        (["--table", "1", "--preset", "cpu", "--cells", "elr"], "got 'elr'"),
        (["--table", "1", "--preset", "cpu", "--cells", "elr/sym:0.8", "--noises", "asym:0.4"], "no cell of the grid"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(extra, words, capsys):
    code, _, err = run(["cifar", "reproduce", "--dry-run"] + extra, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and words in lines[0], err


def test_bad_method_setting_on_train_is_one_line_and_exit_2(folder, capsys):  # noqa: F811
    argv = ["cifar", "train", "--preset", "smoke", "--data", str(folder), "--init", "random", "--no-progress"]
    for extra, words in ((["--mixup-alpha", "0"], "mixup_alpha must be > 0"),
                         (["--crust-ratio", "1.5"], "crust_ratio must be in (0, 1]"),
                         (["--elr-beta", "1"], "elr_beta must be in [0, 1)")):
        code, _, err = run(argv + extra, capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and words in err, err
    code = main(argv + ["--method", "sgd"])  # argparse's choices: one line, status 2
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "'sgd'" in err


def test_a_grid_pretraining_on_more_images_trains_on_the_training_presets_own_images(folder):  # noqa: F811
    import numpy as np

    from experiments.cifar.data import load_dataset

    g = reproduce.grid(1, "smoke")
    g = dataclasses.replace(g, pretrain=dataclasses.replace(g.pretrain, train_limit=60),
                            train=dataclasses.replace(g.train, train_limit=30))
    pre_train, _, train, _ = reproduce.load_data(g, str(folder))
    assert len(pre_train.labels) == 60 and len(train.labels) == 30
    own = load_dataset(folder, "train", limit=30, seed=0)
    assert np.array_equal(train.indices, own.indices) and np.array_equal(train.images, own.images)
    assert np.isin(train.indices, pre_train.indices).all()  # nested draws: trained on pre-trained images
    assert reproduce.train_images(g) == 30  # what the evidence file records as the training images


def test_the_evidence_names_the_training_and_the_pretraining_image_counts():
    g = reproduce.grid(1, "cpu")
    assert (reproduce.train_images(g), g.pretrain.train_limit) == (4000, 8000)
    assert reproduce.train_images(reproduce.grid(1, "paper")) is None  # all of the training split
