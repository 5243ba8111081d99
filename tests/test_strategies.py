"""theory.strategies: every strategy keeps its promise over 200 draws (checked with the project's meters),
impossible requests are refused at definition time, draws print as calls that rebuild them, and the
claim helpers fail with both numbers."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import strategies as S
from theory import tightness, tolerances
from theory.graph import Partition, balanced_partition, measure_structured, partition
from theory.spectrum import alignment_curve, basis, prominent_count

ATOL = tolerances.eig_atol("float64")
PROMISE = settings(max_examples=200)


# ----------------------------------------------------------------------------- promises, 200 draws each

@PROMISE
@given(st.data())
def test_partitions_keep_their_bounds(data):
    k, kb, z, balanced = (data.draw(x) for x in (
        st.tuples(st.integers(1, 3), st.integers(0, 2)).map(lambda t: (t[0], t[0] + t[1])),
        st.tuples(st.integers(1, 4), st.integers(0, 3)).map(lambda t: (t[0], t[0] + t[1])),
        st.tuples(st.integers(1, 5), st.integers(0, 4)).map(lambda t: (t[0], t[0] + t[1])),
        st.sampled_from([None, True, False])))
    if kb[1] < k[0] or (balanced is False and (z[0] == z[1] or kb[1] < 2)):
        with pytest.raises(ValueError, match="n_sub|balanced=False"):
            S.partitions(n_classes=k, n_sub=kb, sizes=z, balanced=balanced)
        return
    max_n = data.draw(st.none() | st.integers(max(kb[0], k[0], 2 if balanced is False else 1) * z[0]
                                               + (balanced is False), 40))
    part = data.draw(S.partitions(n_classes=k, n_sub=kb, sizes=z, balanced=balanced, max_n=max_n))
    assert isinstance(part, Partition)
    assert k[0] <= part.n_classes <= k[1] and kb[0] <= part.n_sub <= kb[1]
    assert part.n_sub >= part.n_classes and set(part.sub_to_class) == set(range(part.n_classes))
    assert all(z[0] <= s <= z[1] for s in part.sizes)
    assert max_n is None or part.n <= max_n
    if balanced is not None:
        assert part.balanced == balanced
    assert eval(repr(part), {"Partition": Partition}) == part


@PROMISE
@given(S.augmentation_graphs(partition=S.partitions(n_sub=(1, 3), sizes=(1, 4)), delta=(0.0, 0.9), xi=(0.0, 0.2)))
def test_augmentation_graphs_keep_their_promise(g):
    W = g.dense()
    assert W.dtype == np.float64 and W.shape == (g.part.n, g.part.n)
    np.testing.assert_array_equal(W, W.T)
    assert W.min() >= 0
    assert 0.0 <= g.delta_max <= 0.9 and 0.0 <= g.xi_max <= 0.2
    S.assert_bound(g.delta, g.delta_max, "<=", atol=tolerances.METER_ATOL, what="realized delta")
    S.assert_bound(g.xi, g.xi_max, "<=", atol=tolerances.METER_ATOL, what="realized xi")
    if g.kind in ("two-level", "hub") and max(g.part.sizes) >= 2:  # at the edge of Assumption 4.1
        S.assert_bound(g.delta, g.delta_max, "==", atol=tolerances.METER_ATOL, what="realized delta")
        # every cross entry is xi and some within entry 1: at the edge of Assumption 4.2 (a hub graph whose
        # sub-classes are all single points has only within entries 1 + delta: its realized xi is xi / (1 + delta))
        S.assert_bound(g.xi, g.xi_max if g.part.n_sub > 1 else 0.0, "==", atol=tolerances.METER_ATOL, what="realized xi")


@pytest.mark.parametrize("kind", ["two-level", "hub", "ascent"])
@settings(max_examples=10)
@given(part=S.partitions(sizes=(2, 5), n_sub=(2, 3)), delta=st.floats(0.01, 0.9), xi=st.floats(0, 0.1),
       seed=S.SEEDS)
def test_extremal_kinds_sit_at_the_edge_of_the_assumptions(kind, part, delta, xi, seed):
    """The tightest constructions, not random matrices: two-level and hub at exactly the requested delta and
    xi; the ascent's blocks score at least as high as the two-level blocks it starts from (Eq. 12's tail)."""
    g = S.augmentation_graph(part, delta, xi, kind=kind, seed=seed)
    if kind != "ascent":
        S.assert_bound(g.delta, delta, "==", atol=tolerances.METER_ATOL)
        S.assert_bound(g.xi, xi, "==", atol=tolerances.METER_ATOL)
        return
    two = S.augmentation_graph(part, delta, xi, kind="two-level")
    for lo, hi in zip(part.offsets[:-1], part.offsets[1:]):
        if hi - lo >= 2:
            tail = [float(tightness.tail_sq(*tightness.block_spectrum(jnp.asarray(x.W[lo:hi, lo:hi])), delta)) for x in (g, two)]
            S.assert_bound(tail[0], tail[1], ">=", what="ascent's tail")
    assert g.xi <= xi + tolerances.METER_ATOL


def test_structured_graphs_keep_their_promise_matrix_free_at_n_4000():
    g = S.augmentation_graph(balanced_partition(40, 100, 10), 0.2, 1e-3, kind="structured", seed=3)
    assert g.part.n == 4000 and not hasattr(g.W, "shape")
    m = measure_structured(g.W)
    assert (g.delta, g.xi) == (m.delta, m.xi) and 0 < g.delta <= 0.2 and 0 < g.xi <= 1e-3
    with pytest.raises(ValueError, match="balanced"):
        S.augmentation_graph(partition([3, 4], n_classes=2), 0.2, 0.0, kind="structured")


@PROMISE
@given(S.representations(partition=S.partitions(n_sub=(2, 3), sizes=(3, 5))))
def test_representations_have_the_planted_spectrum(r):
    F = jnp.asarray(r.F)
    kb = r.part.n_sub
    B = basis(F)
    np.testing.assert_allclose(np.asarray(B.s), r.sigma, rtol=0, atol=ATOL)
    assert int(prominent_count(B.s)) == kb == r.prominent
    A = np.asarray(alignment_curve(B, jnp.asarray(r.Y)))
    assert abs(A[kb - 1] - r.alignment) <= ATOL and np.all(np.abs(A[kb:] - r.alignment) <= ATOL)  # the tail: no labels
    assert 0.5 <= r.alignment <= 1.0 and r.sigma[kb] / r.sigma[kb - 1] == pytest.approx(r.gap, rel=1e-12)
    np.testing.assert_array_equal(r.labels, r.part.class_of_point)
    np.testing.assert_array_equal(r.Y.argmax(axis=1), r.labels)


@PROMISE
@given(S.label_noise())
def test_label_noise_flips_exactly_and_reports_its_c_max(ln):
    part, fl = ln.part, ln.flips
    K = part.n_classes
    clean, sub = part.class_of_point, part.sub_of_point
    changed = fl.labels != clean
    np.testing.assert_array_equal(changed, fl.flipped)  # every flip moves the label, nothing else moves
    m = np.bincount(sub[changed], minlength=part.n_sub)
    np.testing.assert_array_equal(m, np.floor(ln.alpha * np.asarray(part.sizes) + 1e-9).astype(int))
    # the realized c_max, recomputed from the labels alone: max over sub-classes of the largest share of a wrong class
    shares = [np.bincount(fl.labels[changed & (sub == k)], minlength=K).max() / m[k] for k in range(part.n_sub) if m[k]]
    assert fl.c_max == (max(shares) if shares else 0.0)
    if not shares:
        return
    assert 1 / (K - 1) - 1e-12 <= fl.c_max <= 1.0
    least = max(math.ceil(mk / (K - 1)) / mk for mk in m if mk)
    if ln.kind == "asymmetric":
        assert fl.c_max == 1.0
        np.testing.assert_array_equal(fl.labels[changed], (clean[changed] + ln.shift) % K)
    elif ln.kind == "symmetric":
        assert fl.c_max == pytest.approx(least, rel=1e-12)
    elif ln.kind == "concentrated":
        assert all(s <= max(ln.c_max, math.ceil(mk / (K - 1)) / mk) + 1e-12 for s, mk in zip(shares, m[m > 0]))


@PROMISE
@given(S.sweeps(top=(1e-3, 0.5), decades=(2.0, 5.0), points=7))
def test_sweeps_span_their_decades(sw):
    assert sw.x.shape == (7,) and np.all(np.diff(sw.x) > 0)
    assert 1e-3 <= sw.x[-1] == sw.top <= 0.5
    assert math.log10(sw.x[-1] / sw.x[0]) == pytest.approx(sw.decades, rel=1e-12) and sw.decades >= 2.0


# ----------------------------------------------------------------------------- reproducible calls

def test_draws_print_as_the_call_that_rebuilds_them():
    from hypothesis.vendor.pretty import pretty

    names = {n: getattr(S, n) for n in S.__all__} | {"Partition": Partition, "tightness": tightness}
    part = partition([3, 4, 3], sub_to_class=[1, 0, 1])
    draws = [S.augmentation_graph(part, 0.3, 0.01, kind=k, seed=5) for k in ("random", "two-level", "hub", "ascent")]
    draws += [S.augmentation_graph(balanced_partition(3, 4, 2), 0.3, 0.01, kind="structured", seed=5),
              S.planted_representation(partition([4, 5, 3], n_classes=2), alignment=0.8, gap=0.2, tail_len=3, seed=2),
              S.noisy_labels(part, 0.5, kind="asymmetric", shift=1, seed=4),
              S.noisy_labels(partition([5, 6, 7], n_classes=3), 0.6, kind="concentrated", c_max=0.75, seed=4),
              S.sweep(0.1, 2.5, 5)]
    for d in draws:
        assert pretty(d) == repr(d)
        again = eval(repr(d), names)
        for a, b in zip(d, again):
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(a, b)
            elif hasattr(a, "labels") and hasattr(a, "c_max"):
                np.testing.assert_array_equal(a.labels, b.labels)
        assert repr(again) == repr(d)


# ----------------------------------------------------------------------------- refused at definition time

@pytest.mark.parametrize("make, match", [
    (lambda: S.augmentation_graphs(delta=-0.1), r"^delta must be in \[0, 1\), got -0\.1$"),
    (lambda: S.augmentation_graphs(delta=(0.0, 1.0)), r"^delta must be in \[0, 1\), got \(0\.0, 1\.0\)$"),
    (lambda: S.augmentation_graphs(xi=1.5), r"^xi must be in \[0, 1\), got 1\.5$"),
    (lambda: S.augmentation_graphs(xi=(-0.01, 0.1)), r"^xi must be in \[0, 1\), got \(-0\.01, 0\.1\)$"),
    (lambda: S.augmentation_graphs(delta=(0.4, 0.2)), r"^delta must have low <= high, got \(0\.4, 0\.2\)$"),
    (lambda: S.augmentation_graphs(kinds=("star",)), r"^kinds must be a non-empty selection"),
    (lambda: S.augmentation_graphs(partition=partition([2, 3], n_classes=2), kinds=("structured",)),
     r"needs a balanced partition, got sizes \(2, 3\)"),
    (lambda: S.partitions(n_classes=3, n_sub=2), r"^n_sub \(K-bar\) must allow K-bar >= K, got n_sub=2 with n_classes=3$"),
    (lambda: S.partitions(n_classes=(4, 5), n_sub=(1, 3)), r"^n_sub \(K-bar\) must allow K-bar >= K"),
    (lambda: S.partitions(sizes=0), r"^sizes must be >= 1, got 0$"),
    (lambda: S.partitions(sizes=(0, 4)), r"^sizes must be >= 1, got \(0, 4\)$"),
    (lambda: S.partitions(n_sub=0), r"^n_sub must be >= 1, got 0$"),
    (lambda: S.partitions(sizes=2.5), r"^sizes must be an integer or a \(low, high\) pair, got 2\.5$"),
    (lambda: S.partitions(sizes=3, balanced=False), r"^balanced=False needs two sizes"),
    (lambda: S.partitions(max_n=3, n_sub=2, sizes=2), r"^max_n must be an int >= 4"),
    (lambda: S.representations(alignment=0.0), r"^alignment must be in \(0, 1\], got 0\.0$"),
    (lambda: S.representations(gap=(0.1, 0.9)), r"^gap must be below 1/max\(spread, 2\^decay\)"),
    (lambda: S.representations(tail_len=0), r"^tail_len must be >= 1, got 0$"),
    (lambda: S.representations(partition=partition([2, 2], n_classes=2)), r"^partition must have n >= 2 K-bar"),
    (lambda: S.label_noise(alpha=1.5), r"^alpha must be in \[0, 1\], got 1\.5$"),
    (lambda: S.label_noise(c_max=(0.5, 2.0)), r"^c_max must be in \[0, 1\]"),
    (lambda: S.label_noise(partition=partition([3, 3], n_classes=1)), r"^partition must have K >= 2"),
    (lambda: S.sweeps(decades=1.0), r"^decades must be >= 2, got 1\.0$"),
])
def test_impossible_requests_are_refused_when_defined(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ----------------------------------------------------------------------------- claim helpers

def test_assert_bound_shows_both_numbers_and_uses_the_project_tolerance():
    rtol = tolerances.bound_rtol("float64")
    assert S.assert_bound(1.0, 2.0) == 0.5
    S.assert_bound(1.0 + 0.5 * rtol, 1.0)  # round-off passes
    with pytest.raises(AssertionError, match=r"^measured = 1\.000000002 is not <= bound = 1\.0: ratio 1, difference 2e-09"):
        S.assert_bound(1.0 + 2 * rtol, 1.0)
    with pytest.raises(AssertionError, match=r"lambda = 0\.5 is not >= bound = 0\.75: ratio 0\.666667"):
        S.assert_bound(0.5, 0.75, ">=", what="lambda")
    with pytest.raises(AssertionError, match=r"at index \(2,\) \(1 of 3 entries fail\)"):
        S.assert_bound(np.array([0.1, 0.2, 0.9]), 0.5)
    with pytest.raises(AssertionError, match="nan"):
        S.assert_bound(float("nan"), 1.0)
    S.assert_bound(1e-16, 0.0, "==", atol=tolerances.METER_ATOL)
    with pytest.raises(ValueError, match="relation must be one of"):
        S.assert_bound(1.0, 1.0, "<")


def test_assert_order_passes_the_claimed_order_and_fails_half_an_order_lower():
    x = S.sweep(0.1, 3.0).x
    fit = S.assert_order(x, 3 * x * (1 + 0.01 * np.sin(np.arange(x.size))), 1.0)
    assert abs(float(fit.slope) - 1.0) < 0.02
    with pytest.raises(AssertionError, match=r"y = O\(x\^1\) as x -> 0: fitted slope 0\.\d+.*lies above the interval"):
        S.assert_order(x, 3 * x + 3 * x[-1] ** 0.5 * x**0.5, 1.0)
    S.assert_order(x, x**2, 3.0, limit="inf")
    with pytest.raises(AssertionError, match="lies below the interval"):
        S.assert_order(x, x**2, 1.0, limit="inf")
    with pytest.raises(ValueError, match=r"x must span >= 2 decades.*got 1"):
        S.assert_order(np.geomspace(0.01, 0.1, 5), np.ones(5), 1.0)
    S.assert_order(x, -x, 1.0)  # <= 0 everywhere: trivially O(anything)
