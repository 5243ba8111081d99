"""End-to-end smoke tests of `clspec bench simclr` on the tiny network, with and without the PyTorch worker."""

import json
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from experiments import cli

TINY = ["bench", "simclr", "--arch", "tiny", "--batch", "8", "--image-size", "16", "--steps", "2",
        "--matmul-size", "256", "--finetune-batch", "4", "--eval-batch", "8"]
TORCH_PYTHON = os.environ.get("CLSPEC_TORCH_PYTHON", "/work/venvs/torch/bin/python")

# A stand-in for a Python with torch: it speaks the worker protocol of experiments/bench/torch_reference.py
# and reports every job as taking exactly TORCH_S seconds, so the per-round ratios are known.
TORCH_S = 0.25
FAKE_WORKER = textwrap.dedent(f"""
    import json, sys
    jobs = ["step_no_aug", "finetune_step", "eval_forward", "stage:stem", "stage:stage1", "stage:head/loss",
            "ft:input", "ft:stem", "ft:stage1", "ft:head/loss", "ft:update"]
    print(json.dumps({{"ready": True, "jobs": jobs, "torch": "fake", "threads": 2}}), flush=True)
    for line in sys.stdin:
        print(json.dumps({{"job": json.loads(line)["job"], "s": {TORCH_S}, "cpu_s": 2 * {TORCH_S}}}), flush=True)
""")


def _fake_python(tmp_path: Path, body: str) -> str:
    script = tmp_path / "worker.py"
    script.write_text(body)
    exe = tmp_path / "python"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")  # ignores the reference's arguments
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(exe)


@pytest.mark.slow  # compiles every timed job of the benchmark (about 2 minutes on a 2-core Xeon)
def test_bench_simclr_tiny_writes_the_json_fields_and_pairs_torch_rounds(tmp_path, capsys):
    out = tmp_path / "bench.json"
    status = cli.main([*TINY, "--conv-impl", "lax", "--torch-python", _fake_python(tmp_path, FAKE_WORKER),
                       "--out", str(out)])
    assert status == 0
    rep = json.loads(out.read_text())
    assert rep["arch"] == "tiny" and rep["batch"] == 8 and rep["views_per_step"] == 16
    assert rep["finetune_batch"] == 4 and rep["eval_batch"] == 8
    # the fast formulation is the baseline here (one compile instead of two): the ratio is 1
    assert rep["baseline_impl"] == "lax" and rep["fast_impl"] == "lax" and set(rep["results"]) == {"lax"}
    assert rep["matmul"]["gflops"] > 0
    r = rep["results"]["lax"]
    for k in ("step_no_aug", "step_aug", "augment_only", "finetune_step", "eval_forward"):
        assert r[k]["images_per_s"] > 0 and r[k]["best_s"] > 0 and len(r[k]["rounds_s"]) == 2
    assert r["finetune_step"]["images_per_s"] == pytest.approx(4 / r["finetune_step"]["best_s"])
    assert 0 < r["augment_only"]["fraction_of_aug_step"]
    assert r["step_gflop"] > 0 and 0 < r["fraction_of_matmul"]
    assert [s["part"] for s in r["stages"]] == ["stem", "stage1", "head/loss"]
    assert all(s["fwd_bwd_ms"] > 0 for s in r["stages"])
    assert rep["ratio_fast_over_baseline"]["step_no_aug"] == pytest.approx(1.0)
    # every round's ratio is the torch time of that round over clspec's time of the same round
    ratios = rep["ratio_over_torch"]["lax"]
    for job in ("step_no_aug", "finetune_step", "eval_forward", "stage:stem", "stage:stage1", "stage:head/loss"):
        mine = r[job]["rounds_s"] if not job.startswith("stage:") else None
        if mine is not None:
            assert ratios[job]["rounds"] == pytest.approx([TORCH_S / t for t in mine])
            assert ratios[job]["cpu_rounds"] == pytest.approx([2 * TORCH_S / t for t in r[job]["rounds_cpu_s"]])
        assert ratios[job]["min"] == min(ratios[job]["rounds"])
    # the fine-tuning step taken apart: every part timed, their sum set beside the whole step
    ft = r["finetune_parts"]
    assert [row["part"] for row in ft["rows"]] == ["input", "stem", "stage1", "head/loss", "update"]
    assert all(row["median_ms"] > 0 for row in ft["rows"])
    assert ft["rows"][1]["input_shape"] == [4, 16, 16, 3]
    assert ft["sum_of_parts_median_ms"] == pytest.approx(sum(row["median_ms"] for row in ft["rows"]))
    assert ft["step_median_ms"] == pytest.approx(1e3 * r["finetune_step"]["median_s"])
    assert set(ratios) >= {"ft:input", "ft:stem", "ft:stage1", "ft:head/loss", "ft:update"}
    printed = capsys.readouterr().out
    assert "img/s" in printed and "stage1" in printed and "clspec / PyTorch" in printed
    assert "fine-tuning step taken apart" in printed and "whole step" in printed


@pytest.mark.parametrize("argv,match", [
    (["--arch", "vgg"], "--arch"),
    (["--batch", "1"], "--batch"),
    (["--finetune-batch", "1"], "--finetune-batch"),
    (["--steps", "0"], "--steps"),
    (["--conv-impl", "fft"], "conv_impl"),
    (["--conv-impl", "hybrid,fft"], "conv_impl"),
    (["--torch-threads", "0"], "--torch-threads"),
    (["--torch-python", "/nonexistent/python"], "--torch-python"),
])
def test_bench_bad_input_is_a_one_line_error(argv, match, tmp_path, capsys):
    status = cli.main(["bench", "simclr", "--out", str(tmp_path / "x.json"), *argv])
    assert status == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1


def test_a_python_without_torch_is_a_one_line_error_before_any_compiling(tmp_path, capsys):
    broken = _fake_python(tmp_path, "import torch_that_is_not_there\n")
    status = cli.main([*TINY, "--torch-python", broken, "--out", str(tmp_path / "x.json")])
    assert status == 2
    err = capsys.readouterr().err
    assert "--torch-python" in err and "ModuleNotFoundError" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.skipif(not Path(TORCH_PYTHON).is_file(), reason="no Python with torch (set CLSPEC_TORCH_PYTHON)")
@pytest.mark.parametrize("arch", ["resnet32", "resnet18"])
def test_torch_reference_has_the_same_architecture_as_the_flax_models(arch):
    # same parameter counts (convolutions, BatchNorm scales/offsets, head and classifier biases)
    import subprocess

    import jax
    import jax.numpy as jnp

    from experiments.cifar.models import Classifier, ProjectionHead, SimCLRModel, make_encoder, param_count

    script = Path(__file__).parents[1] / "experiments" / "bench" / "torch_reference.py"
    proc = subprocess.run(
        [TORCH_PYTHON, str(script), "--arch", arch, "--batch", "2", "--finetune-batch", "2", "--eval-batch", "2",
         "--image-size", "8", "--no-stages"],
        input="", capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    info = json.loads(proc.stdout.splitlines()[0])

    def count(model):
        shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((2, 32, 32, 3)), train=False))
        return param_count(shapes["params"])

    assert info["params_simclr"] == count(SimCLRModel(make_encoder(arch), ProjectionHead()))
    assert info["params_classifier"] == count(Classifier(make_encoder(arch), 10))
