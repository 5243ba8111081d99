"""The training methods behind the seam (experiments.cifar.methods): ELR, Mixup, Crust and the
facility-location greedy on tiny problems that could fail, and exact resume with method state."""

from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.cifar import checkpoint as ckpt
from experiments.cifar import configs
from experiments.cifar import loop
from experiments.cifar import train as loops
from experiments.cifar.methods import crust, elr, facility, mixup
from experiments.cifar.noise import make_noisy_labels
from tests.test_cifar_cli import folder  # noqa: F401  (the generated image folder fixture)
from tests.test_cifar_train import make_dataset, read_jsonl, same_tree, strip_timing

# The smoke settings of `clspec cifar reproduce --preset smoke` (so the compiled steps are shared).
TRAIN = dataclasses.replace(configs.train_preset("smoke"), epochs=3, noise="sym:0.5", crust_warmup=1)


# ----------------------------------------------------------------------------- ELR


def test_elr_loss_and_gradient_by_hand():
    # p = softmax(log 3, 0) = (3/4, 1/4); t = 0.5 (0, 1) + 0.5 p = (3/8, 5/8); <t, p> = 7/16.
    # loss = CE(y=1) + 3 log(1 - 7/16) = log 4 + 3 log(9/16).
    # dCE/dz = p - e_1 = (3/4, -3/4); d/dz log(1 - <t, p>) = -p (t - <t, p>) / (1 - <t, p>) = (1/12, -1/12),
    # so the gradient is (3/4 + 3/12, -3/4 - 3/12) = (1, -1).
    with jax.enable_x64(True):
        z = jnp.array([[math.log(3.0), 0.0]])
        loss, target = elr.elr_loss(z, jnp.array([1]), jnp.array([[0.0, 1.0]]), 0.5, 3.0)
        grad = jax.grad(lambda z: elr.elr_loss(z, jnp.array([1]), jnp.array([[0.0, 1.0]]), 0.5, 3.0)[0])(z)
    assert float(loss) == pytest.approx(math.log(4.0) + 3.0 * math.log(9.0 / 16.0), rel=1e-12)
    np.testing.assert_allclose(np.asarray(target), [[3 / 8, 5 / 8]], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(grad), [[1.0, -1.0]], rtol=1e-10)


def test_elr_gradient_matches_finite_differences_with_the_targets_held_fixed():
    # ELR's targets carry no gradient: d loss / d z is the derivative of
    # CE(z) + lambda mean log(1 - <t*, p(z)>) with t* the updated targets held fixed.
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(0)
        z = jax.random.normal(key, (4, 5), jnp.float64) * 2
        y = jnp.array([0, 3, 1, 4])
        t_prev = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(1), (4, 5), jnp.float64), axis=-1)
        beta, lam = 0.7, 3.0
        _, t_star = elr.elr_loss(z, y, t_prev, beta, lam)
        grad = jax.grad(lambda z: elr.elr_loss(z, y, t_prev, beta, lam)[0])(z)

        def fixed(z):
            p = jnp.clip(jax.nn.softmax(z, axis=-1), 1e-4, 1 - 1e-4)
            ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(z, y))
            return ce + lam * jnp.mean(jnp.log(1 - jnp.sum(t_star * p, axis=-1)))

        eps = 1e-6
        fd = np.zeros(z.shape)
        for i, j in itertools.product(range(4), range(5)):
            e = jnp.zeros(z.shape).at[i, j].set(eps)
            fd[i, j] = (fixed(z + e) - fixed(z - e)) / (2 * eps)
        # Differentiating through the targets' dependence on z too gives another gradient.
        def through(z):
            p = jnp.clip(jax.nn.softmax(z, axis=-1), 1e-4, 1 - 1e-4)
            t = beta * t_prev + (1 - beta) * p / jnp.sum(p, axis=-1, keepdims=True)
            ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(z, y))
            return ce + lam * jnp.mean(jnp.log(1 - jnp.sum(t * p, axis=-1)))

        other = jax.grad(through)(z)
    np.testing.assert_allclose(np.asarray(grad), fd, rtol=1e-6, atol=1e-9)
    assert np.max(np.abs(np.asarray(other) - fd)) > 1e-3


def test_elr_method_updates_only_the_rows_of_the_batch():
    m = elr.make(elr_beta=0.7, elr_lambda=3.0)
    state = m.init(np.zeros(6, np.int64), 3)
    logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    _, new = m.loss(state, logits, jnp.array([0, 2]), jnp.array([4, 1]), None)
    t = np.asarray(new["target"])
    assert np.all(t[[0, 2, 3, 5]] == 0)
    p = np.clip(np.asarray(jax.nn.softmax(logits)), 1e-4, 1 - 1e-4)
    np.testing.assert_allclose(t[[4, 1]], 0.3 * p / p.sum(1, keepdims=True), rtol=1e-6)


# ----------------------------------------------------------------------------- Mixup


def test_mixup_targets_and_loss():
    key = jax.random.PRNGKey(3)
    x = jax.random.normal(jax.random.PRNGKey(0), (8, 4))
    labels = jnp.array([0, 1, 2, 3, 0, 1, 2, 3])
    x_hat, lam, perm = mixup.mix(key, x, 1.0)
    assert sorted(np.asarray(perm).tolist()) == list(range(8)) and 0 < float(lam) < 1
    np.testing.assert_allclose(x_hat, lam * x + (1 - lam) * x[perm], rtol=1e-6)
    t = np.asarray(mixup.mixed_targets(labels, lam, perm, 4))
    np.testing.assert_allclose(t.sum(1), 1.0, rtol=1e-6)
    for i in range(8):
        expect = np.zeros(4)
        expect[int(labels[i])] += float(lam)
        expect[int(labels[perm[i]])] += 1 - float(lam)
        np.testing.assert_allclose(t[i], expect, rtol=1e-6)
    # The method's loss is the cross-entropy against the mixed targets.
    m = mixup.make(mixup_alpha=1.0)
    x2, aux = m.prepare(key, x, labels, jnp.arange(8), {})
    np.testing.assert_allclose(x2, x_hat, rtol=1e-6)
    logits = jax.random.normal(jax.random.PRNGKey(5), (8, 4))
    loss, _ = m.loss({}, logits, labels, jnp.arange(8), aux)
    ref = jnp.mean(optax.softmax_cross_entropy(logits, jnp.asarray(t)))
    assert float(loss) == pytest.approx(float(ref), rel=1e-5)


def test_mixup_lambda_follows_beta_alpha_alpha():
    lams = np.array([float(mixup.mix(jax.random.PRNGKey(i), jnp.zeros((2, 1)), 0.4)[1]) for i in range(400)])
    # Beta(0.4, 0.4): mean 1/2, variance 1/(4 (2 alpha + 1)) = 0.139; U-shaped (mass near 0 and 1).
    assert abs(lams.mean() - 0.5) < 4 * math.sqrt(0.139 / 400)
    assert abs(lams.var() - 0.139) < 0.03
    assert np.mean((lams < 0.1) | (lams > 0.9)) > 0.35


# ----------------------------------------------------------------------------- facility location and Crust


def test_greedy_facility_location_against_brute_force_on_10_points():
    rng = np.random.default_rng(0)
    for trial in range(3):
        x = rng.normal(size=(10, 2))
        d = facility.pairwise_distances(x)
        sim = d.max() - d
        for budget in range(1, 6):
            greedy = facility.greedy_facility_location(sim, budget)
            assert len(set(greedy.tolist())) == budget
            value = facility.facility_value(sim, greedy)
            best = max(facility.facility_value(sim, s) for s in itertools.combinations(range(10), budget))
            assert value >= (1 - 1 / math.e) * best - 1e-9  # Nemhauser et al.
            if budget == 1:
                assert value == pytest.approx(best, rel=1e-6)
            # Each pick maximizes the marginal gain at its step.
            for k in range(budget):
                gains = [facility.facility_value(sim, list(greedy[:k]) + [j]) for j in range(10)]
                assert facility.facility_value(sim, greedy[: k + 1]) == pytest.approx(max(gains), rel=1e-6)


def test_crust_picks_the_medoids_of_well_separated_clusters_with_cluster_size_weights():
    # Cluster 0 is point-symmetric about its centre point (0, 0), and cluster 2 mirrors cluster 1
    # through the origin, so the first greedy pick (the 1-medoid of all points) is cluster 0's
    # medoid; each later pick covers a new cluster with that cluster's medoid.
    rng = np.random.default_rng(1)
    half = rng.normal(size=(2, 2))
    c0 = np.concatenate([np.zeros((1, 2)), half, -half])
    c1 = np.array([100.0, 0.0]) + rng.normal(size=(7, 2))
    x = np.concatenate([c0, c1, -c1])
    cluster = np.repeat(np.arange(3), (5, 7, 7))
    chosen, weights = facility.medoids(x, 3)
    d = facility.pairwise_distances(x)
    expected = [int(np.flatnonzero(cluster == c)[np.argmin(d[np.ix_(cluster == c, cluster == c)].sum(1))])
                for c in range(3)]
    assert expected[0] == 0
    assert sorted(chosen.tolist()) == sorted(expected)
    assert dict(zip(cluster[chosen].tolist(), weights.tolist())) == {0: 5.0, 1: 7.0, 2: 7.0}
    # A point that is not its cluster's medoid would not be picked: perturb the cluster so that
    # another point becomes its medoid, and the selection follows.
    x2 = x.copy()
    x2[5:12] = x2[5:12][::-1]  # same points, another order: the medoid's index moves
    chosen2, _ = facility.medoids(x2, 3)
    assert sorted(chosen2.tolist()) == sorted([0, 11 - (expected[1] - 5), expected[2]])

    # Per class: ratio * |c| medoids, weights summing to the class size.
    labels = np.array([0] * 10 + [1] * 6)
    proxies = rng.normal(size=(16, 3))
    subset, weight = crust.select_coreset(proxies, labels, 2, 0.5)
    assert len(subset) == 5 + 3 and np.all(weight[subset] > 0) and np.count_nonzero(weight) == 8
    assert weight[labels == 0].sum() == 10 and weight[labels == 1].sum() == 6


def test_crust_gradient_proxies_are_the_cross_entropy_gradient_wrt_the_features():
    rng = np.random.default_rng(2)
    h, w, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=5)
    y = np.array([1, 4, 0])
    g = crust.gradient_proxies(h, h @ w + b, y, w)
    with jax.enable_x64(True):
        ref = jax.grad(lambda h: jnp.sum(optax.softmax_cross_entropy_with_integer_labels(h @ w + b, y)))(jnp.asarray(h))
    np.testing.assert_allclose(g, np.asarray(ref), rtol=1e-9)


def test_crust_relabels_a_random_fraction_and_blends_same_label_partners():
    labels = np.zeros(10, np.int64)
    new = crust.relabel(labels, np.ones(10, np.int64), 0.5, np.random.default_rng(0))
    assert np.sum(new == 1) == 5
    y = jnp.array([0, 1, 0, 1, 2, 2, 0, 3])
    partners = np.asarray(crust.same_label_partners(jax.random.PRNGKey(0), y))
    assert np.all(np.asarray(y)[partners] == np.asarray(y))
    assert partners[7] == 7  # the only point of its label


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("method", "sgd", "method must be one of"),
        ("mixup_alpha", 0.0, "mixup_alpha must be > 0, got 0.0"),
        ("crust_ratio", 1.5, "crust_ratio must be in (0, 1], got 1.5"),
        ("crust_ratio", 0.0, "crust_ratio must be in (0, 1], got 0.0"),
        ("elr_beta", 1.0, "elr_beta must be in [0, 1), got 1.0"),
        ("crust_warmup", -1, "crust_warmup must be >= 0"),
    ],
)
def test_bad_method_settings_name_the_field(field, value, words):
    with pytest.raises(ValueError) as err:
        dataclasses.replace(TRAIN, **{field: value})
    assert words in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------- in the training loop


@pytest.fixture(scope="module")
def data():
    return make_dataset(96, 0), make_dataset(40, 1)


@pytest.fixture(scope="module")
def noisy(data):
    return make_noisy_labels(data[0].labels, TRAIN.noise, num_classes=10, seed=0)


# ELR carries the method state through a resume in the default run; Crust (the same machinery, a
# longer coreset selection) is slow
@pytest.mark.parametrize("method", ["elr", pytest.param("crust", marks=pytest.mark.slow)])
def test_kill_and_resume_with_method_state_is_exact(method, tmp_path, data, noisy):
    cfg = dataclasses.replace(TRAIN, method=method)
    full = loops.train(cfg, tmp_path / "full", *data, noisy)
    loops.train(cfg, tmp_path / "killed", *data, noisy, stop_after_epochs=2)
    resumed = loops.train(cfg, tmp_path / "killed", *data, noisy, resume=True)
    assert strip_timing(read_jsonl(tmp_path / "killed" / "metrics.jsonl")) == strip_timing(
        read_jsonl(tmp_path / "full" / "metrics.jsonl"))
    state, meta = ckpt.load_raw(tmp_path / "full")
    assert same_tree(ckpt.load_raw(tmp_path / "killed")[0], state) and meta["method"] == method
    assert resumed["method"] == method and full["epochs_done"] == 3
    if method == "elr":
        target = np.asarray(state["method"]["target"])
        # t = sum over visits of (1 - beta) beta^(later visits) p / sum p: its sum is 1 - 0.7^visits.
        visits = np.zeros(96, int)
        for e in range(3):
            visits[loop.epoch_order(cfg.seed, e, 96)[: 96 // cfg.batch_size * cfg.batch_size]] += 1
        np.testing.assert_allclose(target.sum(1), 1 - 0.7 ** visits, rtol=1e-5, atol=1e-6)
    else:  # from epoch 2 (after the 1-epoch warm-up) the epochs visit the coreset only
        rows = read_jsonl(tmp_path / "full" / "metrics.jsonl")
        labels = np.asarray(state["method"]["labels"])
        expected = sum(max(1, int(0.5 * np.sum(labels == c))) for c in range(10) if np.any(labels == c))
        assert [r["points_trained"] for r in rows] == [96, expected, expected]
        assert int(state["method"]["active"]) == 1
        assert np.count_nonzero(labels != np.asarray(noisy.labels)) <= 48  # at most the relabelled half
        w = np.asarray(state["method"]["weight"])
        assert np.count_nonzero(w) == expected and w.sum() == pytest.approx(96)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["elr", "crust"])
def test_sigkill_then_resume_with_method_state_matches_an_uninterrupted_run(method, tmp_path, folder):  # noqa: F811
    """A real kill -9 of `clspec cifar train --method M` after its first checkpoint, then --resume:
    the per-epoch metrics and the final checkpoint (method state included) equal a run that went through."""
    from tests.processes import clspec, kill_after_first_checkpoint

    env = {"CLSPEC_CACHE": str(tmp_path / "cache")}
    base = ["cifar", "train", "--preset", "smoke", "--data", str(folder), "--init", "random", "--method", method,
            "--crust-warmup", "1", "--epochs", "4", "--no-progress"]
    full = clspec(base + ["--out", str(tmp_path / "full")], env)
    assert full.returncode == 0, full.stderr
    killed = tmp_path / "killed"
    kill_after_first_checkpoint(base + ["--out", str(killed)], killed, env)
    assert len(read_jsonl(killed / "metrics.jsonl")) < 4
    resumed = clspec(base + ["--out", str(killed), "--resume"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert strip_timing(read_jsonl(killed / "metrics.jsonl")) == strip_timing(read_jsonl(tmp_path / "full" / "metrics.jsonl"))
    assert same_tree(ckpt.load_raw(killed)[0], ckpt.load_raw(tmp_path / "full")[0])
