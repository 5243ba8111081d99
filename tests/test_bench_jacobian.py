"""`clspec bench jacobian`: job list, the summary's ratios, and one real blocked-Gram measurement."""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np
import pytest

from experiments.bench import jacobian as bj


def _args(**kw):
    base = dict(archs="resnet32,mlp", n="100,200", mlp_n="50", k=10, budget_gib=6.0, block=None, conv_impl="auto",
                rounds=1, calls=2, dense_max_n=50, no_topk=False, topk_max_n=100, nt_python="/x/python", nt_impls="1,3",
                nt_max_n=200, data=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_jobs_put_resnet_vs_neural_tangents_first_and_skip_jacobian_contraction_at_200():
    jobs = bj._jobs(_args())
    kinds = [(j["kind"], j.get("arch"), j.get("n"), j.get("impl")) for j in jobs]
    assert kinds[0] == ("matmul", None, None, None) and kinds[-1][0] == "matmul"
    assert kinds[1:6] == [("gram", "resnet32", 100, None), ("nt", "resnet32", 100, 1), ("nt", "resnet32", 100, 3),
                          ("gram", "resnet32", 200, None), ("nt", "resnet32", 200, 3)]
    assert ("dense", "mlp", 50, None) in kinds and ("topk", "resnet32", 200, None) not in kinds
    with pytest.raises(ValueError, match="--n must be"):
        bj._jobs(_args(n="0"))


def test_summary_ratios_use_the_best_time_and_the_same_runs_matmul_rate():
    def gram(s, gflops):
        call = dict(total_s=s, plan_s=0.5, jacobian_s=1.0, contract_s=1.0, eigh_s=0.1, other_s=0.0,
                    contract_gflops=gflops, full_product_gflops=1.6 * gflops, num_singular_values=1000, plan={})
        return dict(job=dict(kind="gram", arch="resnet32", n=100), first_call=dict(call, total_s=2 * s),
                    second_call=call, peak_rss_mib=100.0)

    results = [
        dict(job=dict(kind="matmul"), gflops=100.0, best_s=1.0),
        dict(job=dict(kind="matmul"), gflops=80.0, best_s=1.2),
        gram(10.0, 60.0), gram(12.0, 50.0),
        dict(job=dict(kind="nt", arch="resnet32", n=100, impl=3), impl_name="STRUCTURED_DERIVATIVES", median_s=30.0,
             first_call_incl_compile_s=60.0),
        dict(job=dict(kind="nt", arch="resnet32", n=100, impl=1), impl_name="JACOBIAN_CONTRACTION", median_s=20.0,
             first_call_incl_compile_s=50.0),
        dict(job=dict(kind="nt", arch="resnet32", n=100, impl=2), error="killed"),
    ]
    s = bj.summarize(results)
    assert s["matmul_gflops"] == 100.0
    row = next(r for r in s["rows"] if r["kind"] == "gram")
    assert row["seconds"] == 10.0 and row["nt_best_impl"] == "JACOBIAN_CONTRACTION"
    assert row["speedup_vs_nt_best"] == pytest.approx(2.0) and row["contract_fraction_of_matmul"] == pytest.approx(0.6)
    assert row["speedup_vs_nt_first_call"] == pytest.approx(50.0 / 20.0)
    assert row["full_product_fraction_of_matmul"] == pytest.approx(0.96) and row["plan_s"] == 0.5


def test_one_blocked_gram_measurement_counts_the_contraction_flops():
    from theory import jacobian as jac

    def apply(p, x):
        return jnp.tanh(x @ p["W"]) @ p["V"]

    rng = np.random.default_rng(0)
    params = {"W": jnp.asarray(rng.standard_normal((5, 7)), jnp.float32),
              "V": jnp.asarray(rng.standard_normal((7, 3)), jnp.float32)}
    x = jnp.asarray(rng.standard_normal((8, 5)), jnp.float32)
    model = jac.make_model(apply, params, x)
    r = bj._gram_once(model, x, 2**30, 2)
    # 4 blocks of 2 points (6 rows): 10 upper-triangle tiles of 6 x 6 x P
    assert r["plan"]["block"] == 2 and r["num_singular_values"] == 24
    assert r["contract_flop"] == 10 * 2 * 6 * 6 * model.P
    assert r["full_product_flop"] == 2 * 24 * 24 * model.P  # the whole product, 16 tiles' worth
    assert r["blocks_computed"] == 4  # every block held: none recomputed
