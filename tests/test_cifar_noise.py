"""experiments.cifar.noise: exact counts, the asymmetric maps, transition matrices, seeding, hashes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.cifar.noise import (
    CIFAR10_ASYM,
    CIFAR100_COARSE,
    NoisyLabels,
    cifar100_asym_map,
    load_noisy_labels,
    make_noisy_labels,
    parse_noise_spec,
    save_noisy_labels,
    transition_matrix,
)

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
C10N = SHARED / "CIFAR-10_human.pt"
C100N = SHARED / "CIFAR-100_human.pt"


def _clean(n: int, k: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, k, size=n)


# ---------------------------------------------------------------------------------------------
# Specs


@pytest.mark.parametrize(
    "spec, parsed",
    [
        ("none", ("none", 0.0)),
        ("sym:0.8", ("sym", 0.8)),
        (" SYM:.5 ", ("sym", 0.5)),
        ("symall:1", ("symall", 1.0)),
        ("asym:0", ("asym", 0.0)),
        ("human:aggre", ("human", "aggre")),
        ("human:random2", ("human", "random2")),
        ("human:noisy", ("human", "noisy")),
    ],
)
def test_parse_valid_specs(spec, parsed):
    assert parse_noise_spec(spec) == parsed


@pytest.mark.parametrize(
    "spec, message",
    [
        ("sym:1.5", r"noise rate must be in \[0, 1\], got 1.5"),
        ("sym:-0.1", r"noise rate must be in \[0, 1\]"),
        ("sym:nan", r"noise rate must be in \[0, 1\]"),
        ("gauss:0.2", "unknown noise kind 'gauss'"),
        ("sym", "malformed noise spec 'sym'"),
        ("sym:", "malformed noise spec"),
        ("sym:abc", "rate 'abc' is not a number"),
        ("human:xyz", "unknown human-noise variant 'xyz'"),
        ("none:0.3", "'none' takes no rate"),
        ("", "unknown noise kind"),
    ],
)
def test_parse_bad_specs_name_the_spec(spec, message):
    with pytest.raises(ValueError, match=message) as err:
        parse_noise_spec(spec)
    assert repr(spec) in str(err.value)


def test_normalized_spec_is_recorded():
    assert make_noisy_labels(_clean(20, 10), " SYM:.50", num_classes=10, seed=0).spec == "sym:0.5"
    assert make_noisy_labels(_clean(20, 10), "none", num_classes=10, seed=0).spec == "none"


# ---------------------------------------------------------------------------------------------
# Symmetric noise, both conventions


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.5, 0.8, 1.0])
def test_sym_flips_exactly_round_rn_labels_to_other_classes(rate):
    clean = _clean(1001, 10)
    noisy = make_noisy_labels(clean, f"sym:{rate}", num_classes=10, seed=5)
    changed = noisy.labels != clean
    assert changed.sum() == round(rate * 1001)
    assert noisy.rate == changed.mean()
    np.testing.assert_array_equal(noisy.clean, clean)
    np.testing.assert_allclose(noisy.transition.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.diag(noisy.transition).min(), 1 - rate, atol=0.1)


def test_sym_targets_are_uniform_over_the_other_classes():
    k, n = 5, 20000
    clean = np.zeros(n, dtype=np.int64)
    noisy = make_noisy_labels(clean, "sym:1.0", num_classes=k, seed=0)
    counts = np.bincount(noisy.labels, minlength=k)
    assert counts[0] == 0
    # each of the other 4 classes: Binomial(n, 1/4); 5 standard deviations
    assert np.all(np.abs(counts[1:] - n / 4) < 5 * math.sqrt(n * 0.25 * 0.75))


def test_symall_relabels_over_all_classes_rate_r_times_k_minus_1_over_k():
    k, n, rate = 10, 20000, 0.8
    clean = _clean(n, k)
    noisy = make_noisy_labels(clean, f"symall:{rate}", num_classes=k, seed=1)
    m = round(rate * n)
    changed = int((noisy.labels != clean).sum())
    assert changed <= m
    # the m relabelled examples change with probability (K-1)/K each; 5 standard deviations
    p = (k - 1) / k
    assert abs(changed - m * p) < 5 * math.sqrt(m * p * (1 - p))
    assert noisy.rate == changed / n


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(2, 20),
    n=st.integers(0, 300),
)
def test_sym_property_exact_count_and_all_flips_differ(rate, seed, k, n):
    clean = _clean(n, k, seed=seed % 1000)
    noisy = make_noisy_labels(clean, f"sym:{rate!r}", num_classes=k, seed=seed)
    assert int((noisy.labels != clean).sum()) == round(rate * n)
    assert noisy.labels.min(initial=0) >= 0 and noisy.labels.max(initial=0) < k
    np.testing.assert_allclose(noisy.transition.sum(axis=1), 1.0)


@settings(max_examples=40, deadline=None)
@given(rate=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1), k=st.integers(1, 20), n=st.integers(0, 300))
def test_symall_property_at_most_round_rn_change(rate, seed, k, n):
    clean = _clean(n, k, seed=seed % 1000)
    noisy = make_noisy_labels(clean, f"symall:{rate!r}", num_classes=k, seed=seed)
    assert int((noisy.labels != clean).sum()) <= round(rate * n)
    assert noisy.labels.max(initial=0) < k


# ---------------------------------------------------------------------------------------------
# Asymmetric noise


@pytest.mark.parametrize("rate", [0.2, 0.4, 1.0])
def test_cifar10_asym_map_and_exact_per_class_counts(rate):
    clean = _clean(3000, 10, seed=2)
    noisy = make_noisy_labels(clean, f"asym:{rate}", num_classes=10, seed=3)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    expected_map = {"truck": "automobile", "bird": "airplane", "cat": "dog", "dog": "cat", "deer": "horse"}
    assert {names[s]: names[t] for s, t in CIFAR10_ASYM.items()} == expected_map
    for c in range(10):
        members = clean == c
        changed = noisy.labels[members] != c
        if c in CIFAR10_ASYM:
            assert changed.sum() == round(rate * members.sum())
            assert np.all(noisy.labels[members][changed] == CIFAR10_ASYM[c])
            assert noisy.transition[c, CIFAR10_ASYM[c]] == changed.sum() / members.sum()
        else:
            assert not changed.any()
            assert noisy.transition[c, c] == 1.0


def test_cifar100_coarse_table_is_the_official_grouping():
    assert CIFAR100_COARSE.shape == (100,)
    assert np.bincount(CIFAR100_COARSE).tolist() == [5] * 20


@pytest.mark.skipif(not C100N.is_file(), reason=f"{C100N} is absent")
def test_cifar100_coarse_table_matches_the_cifar100n_file():
    from experiments.cifar.data import load_cifar_n

    fine, coarse = load_cifar_n(C100N, "clean"), load_cifar_n(C100N, "clean_coarse")
    np.testing.assert_array_equal(CIFAR100_COARSE[fine], coarse)


def test_cifar100_asym_goes_to_the_next_class_of_the_superclass():
    mapping = cifar100_asym_map()
    assert sorted(mapping) == list(range(100)) and sorted(mapping.values()) == list(range(100))
    for src, dst in mapping.items():
        assert src != dst and CIFAR100_COARSE[src] == CIFAR100_COARSE[dst]
    # a 5-cycle inside each superclass, in fine-label order
    for coarse in range(20):
        members = np.flatnonzero(CIFAR100_COARSE == coarse).tolist()
        assert [mapping[m] for m in members] == members[1:] + members[:1]
    clean = np.repeat(np.arange(100), 20)
    noisy = make_noisy_labels(clean, "asym:0.4", num_classes=100, seed=0)
    for c in range(100):
        got = noisy.labels[clean == c]
        assert (got != c).sum() == 8 and np.all(got[got != c] == mapping[c])
    assert noisy.rate == 0.4


def test_asym_other_class_counts_raise():
    with pytest.raises(ValueError, match="asym:0.2.*num_classes=7"):
        make_noisy_labels(_clean(50, 7), "asym:0.2", num_classes=7, seed=0)


# ---------------------------------------------------------------------------------------------
# Human noise, transition matrix, seeding, hashing, saving


def test_human_noise_uses_the_given_labels():
    clean = _clean(500, 10)
    human = clean.copy()
    human[:37] = (human[:37] + 1) % 10
    noisy = make_noisy_labels(clean, "human:aggre", num_classes=10, seed=0, human=human)
    np.testing.assert_array_equal(noisy.labels, human)
    assert noisy.rate == 37 / 500 and noisy.spec == "human:aggre"
    with pytest.raises(ValueError, match="needs the CIFAR-N labels"):
        make_noisy_labels(clean, "human:aggre", num_classes=10, seed=0)
    with pytest.raises(ValueError, match="499 human labels for 500"):
        make_noisy_labels(clean, "human:aggre", num_classes=10, seed=0, human=human[:-1])


@pytest.mark.skipif(not C10N.is_file(), reason=f"{C10N} is absent")
def test_human_noise_on_cifar10n():
    from experiments.cifar.data import load_cifar_n

    clean, worse = load_cifar_n(C10N, "clean"), load_cifar_n(C10N, "worse")
    noisy = make_noisy_labels(clean, "human:worse", num_classes=10, seed=0, human=worse)
    assert noisy.rate == np.mean(worse != clean)
    # CIFAR-10N's worst labels are class-dependent: the transition matrix is far from symmetric
    off = noisy.transition - np.diag(np.diag(noisy.transition))
    assert off.max() > 2 * off[off > 0].mean()


@pytest.mark.skipif(not C10N.is_file(), reason=f"{C10N} is absent")
def test_human_labels_line_up_with_a_dataset_subset():
    from experiments.cifar.data import Dataset, load_cifar_n
    from experiments.cifar.noise import human_labels

    clean, aggre = load_cifar_n(C10N, "clean"), load_cifar_n(C10N, "aggre")
    idx = np.sort(np.random.default_rng(0).choice(49999, 300, replace=False))  # idx + 1 stays in range
    images = np.zeros((300, 2, 2, 3), np.uint8)
    ds = Dataset(images, clean[idx], tuple(map(str, range(10))), "test", idx)
    np.testing.assert_array_equal(human_labels("human:aggre", ds), aggre[idx])
    shifted = Dataset(images, clean[idx], tuple(map(str, range(10))), "test", idx + 1)  # misaligned
    with pytest.raises(ValueError, match="clean_label disagrees with the dataset's labels"):
        human_labels("human:aggre", shifted)
    with pytest.raises(ValueError, match="needs a 'human:VARIANT'"):
        human_labels("sym:0.2", ds)
    with pytest.raises(ValueError, match="has no 'noisy_label'"):
        human_labels("human:noisy", ds)


def test_transition_matrix_counts():
    clean = np.array([0, 0, 0, 0, 1, 1, 2])
    noisy = np.array([0, 1, 1, 2, 1, 0, 2])
    t = transition_matrix(clean, noisy, 4)
    np.testing.assert_allclose(t[0], [0.25, 0.5, 0.25, 0])
    np.testing.assert_allclose(t[1], [0.5, 0.5, 0, 0])
    np.testing.assert_allclose(t[2], [0, 0, 1, 0])
    np.testing.assert_allclose(t[3], [0, 0, 0, 1])  # no examples: the identity row
    np.testing.assert_allclose(t.sum(axis=1), 1.0)


@pytest.mark.parametrize("spec", ["sym:0.4", "symall:0.4", "asym:0.4"])
def test_same_seed_same_labels_other_seed_other_labels(spec):
    clean = _clean(2000, 10)
    a = make_noisy_labels(clean, spec, num_classes=10, seed=7)
    b = make_noisy_labels(clean, spec, num_classes=10, seed=7)
    c = make_noisy_labels(clean, spec, num_classes=10, seed=8)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.sha256 == b.sha256
    assert not np.array_equal(a.labels, c.labels) and a.sha256 != c.sha256


def test_sha_changes_when_labels_change():
    clean = _clean(300, 10)
    a = make_noisy_labels(clean, "sym:0.3", num_classes=10, seed=1)
    from experiments.cifar.noise import labels_sha256

    flipped = a.labels.copy()
    flipped[0] = (flipped[0] + 1) % 10
    assert labels_sha256(flipped, a.clean, a.spec, a.seed) != a.sha256
    assert labels_sha256(a.labels, a.clean, a.spec, a.seed) == a.sha256
    none = make_noisy_labels(clean, "none", num_classes=10, seed=1)
    assert none.rate == 0.0 and none.sha256 != a.sha256
    np.testing.assert_array_equal(none.transition, np.eye(10))


def test_save_and_load_round_trip_and_tamper_detection(tmp_path):
    a = make_noisy_labels(_clean(400, 10), "asym:0.3", num_classes=10, seed=2)
    path = tmp_path / "noisy.npz"
    save_noisy_labels(path, a)
    b = load_noisy_labels(path)
    assert isinstance(b, NoisyLabels)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.clean, b.clean)
    np.testing.assert_array_equal(a.transition, b.transition)
    assert (a.spec, a.rate, a.sha256, a.seed) == (b.spec, b.rate, b.sha256, b.seed)
    with np.load(path) as z:
        fields = dict(z)
    fields["labels"][0] = (fields["labels"][0] + 1) % 10
    np.savez(tmp_path / "tampered.npz", **fields)
    with pytest.raises(ValueError, match="tampered.npz: sha256 does not match"):
        load_noisy_labels(tmp_path / "tampered.npz")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_noisy_labels(tmp_path / "missing.npz")


@pytest.mark.parametrize(
    "clean, k, message",
    [
        (np.array([0, 1, 10]), 10, r"clean labels must be in \[0, 10\)"),
        (np.array([[0, 1]]), 10, "1-D integer array"),
        (np.array([0.5, 1.0]), 10, "1-D integer array"),
        (np.array([0, 1]), 0, "num_classes must be a positive integer"),
    ],
)
def test_bad_labels(clean, k, message):
    with pytest.raises(ValueError, match=message):
        make_noisy_labels(clean, "sym:0.2", num_classes=k, seed=0)


# ----------------------------------------------------------------------------- asymmetric noise by class name


def test_asym_noise_is_applied_by_class_name_not_index():
    from experiments.cifar.data import CIFAR10_CLASSES
    from experiments.cifar.noise import CIFAR10_ASYM_NAMES

    rng = np.random.default_rng(0)
    order = rng.permutation(10)
    classes = tuple(CIFAR10_CLASSES[i] for i in order)  # the same classes in another order
    clean = np.repeat(np.arange(10), 50)
    noisy = make_noisy_labels(clean, "asym:0.4", num_classes=10, seed=0, classes=classes)
    for src, dst in CIFAR10_ASYM_NAMES.items():
        s, d = classes.index(src), classes.index(dst)
        assert noisy.transition[s, d] == pytest.approx(0.4)
    assert noisy.rate == pytest.approx(0.4 * 5 / 10)
    # The official order gives exactly what the index map gave.
    by_index = make_noisy_labels(clean, "asym:0.4", num_classes=10, seed=0)
    by_name = make_noisy_labels(clean, "asym:0.4", num_classes=10, seed=0, classes=CIFAR10_CLASSES)
    assert np.array_equal(by_index.labels, by_name.labels)


def test_asym_noise_on_other_classes_is_refused_naming_them_unless_a_map_is_given(tmp_path):
    import json

    from experiments.cifar.noise import load_asym_map

    fashion = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot")
    clean = np.repeat(np.arange(10), 20)
    with pytest.raises(ValueError, match=r"needs classes airplane, .*its 10 classes: t-shirt, trouser"):
        make_noisy_labels(clean, "asym:0.4", num_classes=10, seed=0, classes=fashion)
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"shirt": "t-shirt", "pullover": "coat", "sneaker": "sandal"}))
    noisy = make_noisy_labels(clean, "asym:0.5", num_classes=10, seed=0, classes=fashion, asym_map=load_asym_map(path))
    assert noisy.transition[fashion.index("shirt"), fashion.index("t-shirt")] == pytest.approx(0.5)
    assert noisy.rate == pytest.approx(0.5 * 3 / 10)
    path.write_text(json.dumps({"shirt": "jacket"}))
    with pytest.raises(ValueError, match="the given map needs classes jacket"):
        make_noisy_labels(clean, "asym:0.5", num_classes=10, seed=0, classes=fashion, asym_map=load_asym_map(path))
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must be a JSON object of class names"):
        load_asym_map(path)


def test_cifar100_asym_by_name_matches_the_superclass_map():
    from experiments.cifar.noise import CIFAR100_CLASSES, asym_map_for, cifar100_asym_map

    assert len(CIFAR100_CLASSES) == 100 and list(CIFAR100_CLASSES) == sorted(CIFAR100_CLASSES)
    assert asym_map_for(CIFAR100_CLASSES) == cifar100_asym_map()
    with pytest.raises(ValueError, match="the CIFAR-100 map needs classes apple"):
        asym_map_for([f"c{i}" for i in range(100)])


def test_asymmetric_noise_of_a_dataset_is_applied_by_class_name():
    """noisy_labels_for (clspec cifar train and reproduce): the CIFAR-10 map follows the class names, whatever
    their order in the dataset (truck -> automobile, cat <-> dog, ...)."""
    from experiments.cifar.data import Dataset
    from experiments.cifar.noise import CIFAR10_ASYM_NAMES, noisy_labels_for

    names = ("truck", "ship", "horse", "frog", "dog", "deer", "cat", "bird", "automobile", "airplane")  # reversed
    labels = np.repeat(np.arange(10), 20)
    ds = Dataset(images=np.zeros((200, 2, 2, 3), np.uint8), labels=labels, classes=names, source="test")
    noisy = noisy_labels_for(ds, "asym:0.5", seed=0)
    moved = noisy.labels != labels
    pairs = {(names[a], names[b]) for a, b in zip(labels[moved], noisy.labels[moved])}
    assert pairs == set(CIFAR10_ASYM_NAMES.items())
    assert noisy.spec == "asym:0.5" and moved.sum() == 10 * len(CIFAR10_ASYM_NAMES)
