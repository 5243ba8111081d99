"""End-to-end smoke test of `clspec bench simclr` on the tiny network."""

import json

import pytest

from experiments import cli


def test_bench_simclr_tiny_writes_the_json_fields(tmp_path, capsys):
    out = tmp_path / "bench.json"
    status = cli.main(
        ["bench", "simclr", "--arch", "tiny", "--batch", "8", "--image-size", "16", "--steps", "1",
         "--conv-impl", "lax", "--matmul-size", "256", "--out", str(out)]
    )
    assert status == 0
    rep = json.loads(out.read_text())
    assert rep["arch"] == "tiny" and rep["batch"] == 8 and rep["views_per_step"] == 16
    # the fast formulation is the baseline here (one compile instead of two): the ratio is 1
    assert rep["baseline_impl"] == "lax" and rep["fast_impl"] == "lax"
    assert set(rep["results"]) == {"lax"}
    assert rep["matmul"]["gflops"] > 0
    for r in rep["results"].values():
        for k in ("step_no_aug", "step_aug", "augment_only"):
            assert r[k]["images_per_s"] > 0 and r[k]["best_s"] > 0
        assert 0 < r["augment_only"]["fraction_of_aug_step"]
        assert r["step_gflop"] > 0 and 0 < r["fraction_of_matmul"]
        assert [s["part"] for s in r["stages"]] == ["stem", "stage1", "head/loss"]
        assert all(s["fwd_bwd_ms"] > 0 for s in r["stages"])
    assert rep["ratio_fast_over_baseline"]["step_no_aug"] == pytest.approx(1.0)
    printed = capsys.readouterr().out
    assert "img/s" in printed and "stage1" in printed


@pytest.mark.parametrize("argv,match", [
    (["--arch", "vgg"], "--arch"),
    (["--batch", "1"], "--batch"),
    (["--steps", "0"], "--steps"),
    (["--conv-impl", "fft"], "conv_impl"),
])
def test_bench_bad_input_is_a_one_line_error(argv, match, tmp_path, capsys):
    status = cli.main(["bench", "simclr", "--out", str(tmp_path / "x.json"), *argv])
    assert status == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1
