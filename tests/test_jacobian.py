"""theory.jacobian against dense jax.jacrev + SVD (an MLP, a small CNN with BatchNorm in eval
mode), in float32 (1e-5 relative) and float64 (1e-10), plus Hypothesis properties."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from theory import jacobian as jac
from theory import jacobian_lanczos as lz

RTOL = {"float32": 1e-5, "float64": 1e-10}


def mlp(dtype, *, d=6, width=12, K=3, seed=0):
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(seed), 4)
    params = {
        "W1": jax.random.normal(k1, (d, width), dtype) / np.sqrt(d),
        "b1": 0.1 * jax.random.normal(k2, (width,), dtype),
        "W2": jax.random.normal(k3, (width, K), dtype) / np.sqrt(width),
        "b2": 0.1 * jax.random.normal(k4, (K,), dtype),
    }

    def apply(p, x):
        return jnp.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]

    return apply, params


class SmallCNN(nn.Module):
    K: int = 3

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(4, (3, 3), param_dtype=x.dtype, dtype=x.dtype)(x)
        x = nn.BatchNorm(use_running_average=True, param_dtype=x.dtype, dtype=x.dtype)(x)
        x = nn.relu(x)
        x = nn.Conv(5, (3, 3), strides=(2, 2), param_dtype=x.dtype, dtype=x.dtype)(x)
        x = jnp.mean(nn.relu(x), axis=(1, 2))
        return nn.Dense(self.K, param_dtype=x.dtype, dtype=x.dtype)(x)


def cnn(dtype, *, seed=0):
    net = SmallCNN()
    x0 = jnp.zeros((1, 6, 6, 2), dtype)
    v = net.init(jax.random.PRNGKey(seed), x0)
    # non-trivial running statistics, so BatchNorm is not the identity
    stats = jax.tree_util.tree_map(
        lambda a: jnp.abs(jax.random.normal(jax.random.PRNGKey(seed + 1), a.shape, dtype)) + 0.5, v["batch_stats"]
    )

    def apply(p, x):
        return net.apply({"params": p, "batch_stats": stats}, x)

    return apply, v["params"]


def inputs(kind, n, dtype, seed=1):
    shape = (n, 6) if kind == "mlp" else (n, 6, 6, 2)
    return jax.random.normal(jax.random.PRNGKey(seed), shape, dtype)


def dense_jacobian(apply, params, x):
    theta, unravel = jax.flatten_util.ravel_pytree(params)
    J = jax.jacrev(lambda t: apply(unravel(t), x))(theta)
    return np.asarray(J).reshape(-1, theta.size)


def rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))


@pytest.mark.parametrize("kind,dtype", [("mlp", "float32"), ("mlp", "float64"), ("cnn", "float64"),
                                        pytest.param("cnn", "float32", marks=pytest.mark.slow)])
def test_blocked_gram_and_spectrum_match_dense_jacrev_svd(kind, dtype):
    apply, params = (mlp if kind == "mlp" else cnn)(jnp.dtype(dtype))
    x = inputs(kind, 7, jnp.dtype(dtype))
    model = jac.make_model(apply, params, x)
    G = jac.gram(model, x, block=3)  # 3 blocks, the last one partial
    J = dense_jacobian(apply, params, x)
    G_ref = J @ J.T
    assert G.shape == (7 * model.K, 7 * model.K)
    assert rel(G, G_ref) < RTOL[dtype]
    sigma = np.asarray(jac.spectrum(G).sigma)
    s_ref = np.linalg.svd(J.astype(np.float64), compute_uv=False)
    r = min(len(s_ref), len(sigma))
    # singular values resolved above the Gram's round-off floor (numerical_rank's rule)
    rank = int(jac.numerical_rank(jnp.asarray(sigma), len(sigma), float(jnp.finfo(dtype).eps)))
    assert rank == np.sum(s_ref > s_ref[0] * np.sqrt(len(sigma) * float(jnp.finfo(dtype).eps)))
    assert rel(sigma[:rank], s_ref[:rank]) < RTOL[dtype] * 10 ** (dtype == "float32")
    del r


def test_float64_accumulation_of_a_float32_network_is_more_accurate():
    apply, params = cnn(jnp.float32)
    x = inputs("cnn", 6, jnp.float32)
    model = jac.make_model(apply, params, x)
    # the exact Gram of the float32 Jacobian rows the blocks hold
    block = jax.jit(lambda t, xb: jac.jacobian_block(model, t, xb))
    J = np.concatenate([np.asarray(block(model.theta, x[s : s + 2]), dtype=np.float64) for s in (0, 2, 4)])
    G_ref = J @ J.T
    G64 = jac.gram(model, x, block=2, accumulate=jnp.float64)
    G32 = jac.gram(model, x, block=2)
    assert G64.dtype == np.float64 and G32.dtype == np.float32
    assert rel(G64, G_ref) < 1e-13 < rel(G32, G_ref)


def test_lanczos_top_k_matches_dense_top_k_with_small_residuals():
    apply, params = cnn(jnp.float64)
    x = inputs("cnn", 8, jnp.float64)
    model = jac.make_model(apply, params, x)
    G = jac.gram(model, x, block=4)
    lam_ref = np.linalg.eigvalsh(G)[::-1]
    matvec = lz.gram_matvec(model, x, block=3)
    lam, V, res = lz.lanczos(matvec, G.shape[0], 5, key=jax.random.PRNGKey(0))
    assert rel(lam, lam_ref[:5]) < 1e-10
    assert np.all(res < 1e-8 * lam_ref[0])
    # the matvec itself is G v
    v = np.random.default_rng(0).standard_normal(G.shape[0])
    assert rel(matvec(v), G @ v) < 1e-12


def test_deflated_frobenius_estimate_is_exact_when_the_deflation_is_complete():
    apply, params = mlp(jnp.float64, K=2)
    x = inputs("mlp", 5, jnp.float64)
    model = jac.make_model(apply, params, x)
    G = jac.gram(model, x)
    matvec = lz.gram_matvec(model, x, block=5)
    lam, V, _ = lz.lanczos(matvec, 10, 6, key=jax.random.PRNGKey(1), steps=10)
    est, se = lz.gram_fro_deflated(matvec, V, lam, key=jax.random.PRNGKey(2), samples=8)
    fro = np.linalg.norm(G)
    assert abs(est - fro) <= 1e-3 * fro + 4 * se
    # and wrong when half the spectrum is dropped from the deflation without sampling it enough
    est_bad, _ = lz.gram_fro_deflated(matvec, V[:, :1], lam[:1], key=jax.random.PRNGKey(2), samples=2)
    assert np.isfinite(est_bad)


@settings(max_examples=5)
@given(n=st.integers(2, 7), block=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_gram_symmetric_psd_and_invariant_to_block_size_and_point_order(n, block, seed):
    apply, params = mlp(jnp.float64, seed=seed % 7)
    x = inputs("mlp", n, jnp.float64, seed=seed)
    model = jac.make_model(apply, params, x)
    G = jac.gram(model, x, block=block)
    assert np.array_equal(G, G.T)
    assert np.min(np.linalg.eigvalsh(G)) > -1e-12 * np.max(np.abs(G))
    G1 = jac.gram(model, x, block=n)
    assert rel(G, G1) < 1e-12
    perm = np.random.default_rng(seed).permutation(n)
    Gp = jac.gram(model, x[perm], block=block)
    rows = (perm[:, None] * model.K + np.arange(model.K)).reshape(-1)
    assert rel(Gp, G[np.ix_(rows, rows)]) < 1e-12


@settings(max_examples=10)
@given(n=st.integers(2, 30), K=st.integers(2, 10), k=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_projections_split_the_label_energy(n, K, k, seed):
    rng = np.random.default_rng(seed)
    dim = n * K
    k = min(k, dim - 1)
    U, _ = np.linalg.qr(rng.standard_normal((dim, k)))
    labels = rng.integers(0, K, n)
    y = jac.flatten_labels(labels, K)
    pi, pn = jac.label_projections(jnp.asarray(U), y)
    assert abs(float(pi) ** 2 + float(pn) ** 2 - n) < 1e-9 * n  # ||y||^2 = n for one-hot labels
    assert float(pi) <= np.sqrt(n) + 1e-12


def test_plan_respects_the_budget_and_refuses_one_too_small():
    apply, params = mlp(jnp.float32)
    x = inputs("mlp", 12, jnp.float32)
    model = jac.make_model(apply, params, x)
    big = jac.plan_blocks(model, x, 12, budget_bytes=2**30, block=12)
    assert big.block == 12 and big.panel == 1 and big.peak_bytes <= 2**30
    # room for the workspace of 2-point blocks, the Gram and three 2-point blocks
    two = big.block_bytes // 6
    small_budget = jac._workspace_bytes(model, x, 2, 4) + (12 * model.K) ** 2 * 4 + 3 * two
    small = jac.plan_blocks(model, x, 12, budget_bytes=small_budget, block=12)
    assert small.block < 12 and small.peak_bytes <= small_budget
    assert small.panel + 1 < small.num_blocks  # J is never whole in memory: blocks are streamed
    G = jac.gram(model, x, budget_bytes=small_budget, block=12)
    J = dense_jacobian(apply, params, x)
    assert rel(G, J @ J.T) < 1e-5
    with pytest.raises(ValueError, match="budget_bytes .* too small for one block"):
        jac.plan_blocks(model, x, 12, budget_bytes=1000)


def test_resume_skips_tiles_and_their_blocks():
    apply, params = mlp(jnp.float64)
    x = inputs("mlp", 8, jnp.float64)
    model = jac.make_model(apply, params, x)
    plan = jac.BlockPlan(8, 2, 1, 0, 0, 0)
    stats = []
    all_tiles = dict(jac.gram_tiles(model, x, plan, stats=stats))
    full_blocks = stats[0].blocks_computed
    done = {t: all_tiles[t] for t in jac.tile_order(4, 1)[:7]}
    stats2 = []
    rest = dict(jac.gram_tiles(model, x, plan, skip=frozenset(done), stats=stats2))
    assert set(rest) | set(done) == set(all_tiles) and not set(rest) & set(done)
    assert stats2[0].blocks_computed < full_blocks
    G = jac.assemble({**done, **rest}, 8, model.K, 2)
    assert rel(G, jac.assemble(all_tiles, 8, model.K, 2)) == 0.0


def test_bad_models_are_refused_with_one_line_errors():
    apply, params = mlp(jnp.float64)
    x = inputs("mlp", 4, jnp.float64)
    _, other = mlp(jnp.float64, d=5)
    with pytest.raises(ValueError, match="params do not fit apply"):
        jac.make_model(apply, other, x)

    class TrainBN(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.BatchNorm(use_running_average=False)(nn.Dense(3)(x))

    net = TrainBN()
    v = net.init(jax.random.PRNGKey(0), x)
    with pytest.raises(ValueError, match="depends on the other points"):
        jac.make_model(lambda p, xb: net.apply({"params": p, "batch_stats": v["batch_stats"]}, xb,
                                               mutable=["batch_stats"])[0], v["params"], x)
    model = jac.make_model(apply, params, x)
    with pytest.raises(ValueError, match="not finite"):
        jac.check_outputs(model, x.at[1, 0].set(jnp.nan), block=2)
    with pytest.raises(ValueError, match=r"k must be in \[1, nK\)"):
        lz.lanczos(lambda v: v, 12, 12, key=jax.random.PRNGKey(0))


def test_custom_vjp_networks_are_refused_for_forward_mode_but_not_for_the_gram():
    @jax.custom_vjp
    def act(z):
        return jnp.tanh(z)

    act.defvjp(lambda z: (jnp.tanh(z), z), lambda z, g: (g * (1 - jnp.tanh(z) ** 2),))
    _, params = mlp(jnp.float64)

    def apply(p, x):
        return act(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]

    x = inputs("mlp", 4, jnp.float64)
    model = jac.make_model(apply, params, x)
    with pytest.raises(ValueError, match="custom_vjp.*conv_impl='lax'"):
        lz.gram_matvec(model, x, block=2)
    G = jac.gram(model, x)  # reverse mode only
    J = dense_jacobian(apply, params, x)
    assert rel(G, J @ J.T) < 1e-12


def test_every_cifar_conv_formulation_works_in_forward_mode():
    from experiments.cifar.models import Classifier, make_encoder

    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3), jnp.float32)
    for impl in ("shiftdot", "cols", "lax"):
        net = Classifier(make_encoder("tiny", conv_impl=impl), 3)
        v = net.init(jax.random.PRNGKey(0), x, train=False)
        model = jac.make_model(lambda p, xb: net.apply({"params": p, "batch_stats": v["batch_stats"]}, xb,
                                                       train=False), v["params"], x)
        jac.check_forward_mode(model, x)
        G = jac.gram(model, x).astype(np.float64)
        u = np.random.default_rng(0).standard_normal(6)
        assert rel(lz.gram_matvec(model, x, block=2)(u), G @ u) < 1e-4


def test_jacobian_conv_choice_gives_the_lax_gram():
    """`auto` picks cols for Jacobian work on CPU; its Gram is lax's (float32, 1e-5)."""
    from experiments.analysis.jacobian import apply_fn, build_network, jacobian_conv_impl

    assert jacobian_conv_impl("auto") == ("cols" if jax.default_backend() == "cpu" else "lax")
    assert jacobian_conv_impl("hybrid") == "hybrid"
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 8, 8, 3), jnp.float32)
    grams = []
    for impl in ("auto", "lax"):
        module, v = build_network("tiny", K=3, seed=0, image_shape=(8, 8, 3), conv_impl=impl)
        model = jac.make_model(apply_fn(module, v), v["params"], x)
        grams.append(jac.gram(model, x, block=2).astype(np.float64))
    assert rel(grams[0], grams[1]) < 1e-5
