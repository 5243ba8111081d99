"""theory.strategies as a user meets it: ``import theory`` without Hypothesis installed, and a property test
written outside the package (a temporary folder, run by pytest in a subprocess) that passes for a true claim
and reports a shrunk, reproducible counterexample for a false one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(args, cwd, timeout=300):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.pop("HYPOTHESIS_PROFILE", None)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


BLOCK_HYPOTHESIS = textwrap.dedent("""
    import importlib.abc, pkgutil, sys

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "hypothesis" or name.startswith("hypothesis."):
                raise ImportError(f"hypothesis is not installed (blocked: {name})")
            return None

    sys.meta_path.insert(0, Blocker())
    import theory
    names = [m.name for m in pkgutil.iter_modules(theory.__path__, "theory.") if m.name != "theory.strategies"]
    for name in names:
        __import__(name)
    assert "hypothesis" not in sys.modules, "a theory module imported hypothesis"
    try:
        import theory.strategies
    except ImportError as e:
        print("strategies needs hypothesis:", e)
    print("imported", len(names), "modules:", " ".join(sorted(names)))
""")


def test_import_theory_does_not_need_hypothesis(tmp_path):
    out = _run(["-c", BLOCK_HYPOTHESIS], tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "strategies needs hypothesis: hypothesis is not installed" in out.stdout  # the blocker works
    listed = out.stdout.split("modules:")[1].split()
    assert {"theory.graph", "theory.bounds", "theory.spectrum", "theory.tightness", "theory.noise"} <= set(listed)
    with_it = _run(["-c", "import theory.strategies as S; print(S.__file__, len(S.__all__))"], tmp_path, timeout=120)
    assert with_it.returncode == 0 and "strategies" in with_it.stdout, with_it.stderr


USER_TEST = textwrap.dedent('''
    """A user's own properties: a Lemma A.3 variant (true) and Eq. 15 without its delta term (false)."""
    import jax
    import numpy as np
    from hypothesis import given, settings

    jax.config.update("jax_enable_x64", True)

    from theory import bounds
    from theory.head import bias_variance
    from theory.representation import block_normalized_adjacency, block_spectra, normalized_adjacency, optimal_representation
    from theory.graph import balanced_partition
    import theory.strategies as S

    PART = balanced_partition(3, 4, 3)  # one shape: JAX compiles once


    @settings(S.JAX_SETTINGS, max_examples=30, derandomize=True, database=None)
    @given(S.augmentation_graphs(partition=S.partitions(n_sub=(2, 3), sizes=(2, 5)), xi=0.0,
                                 kinds=("random", "two-level", "hub")))
    def test_perron_vector_l1_mass(g):
        """Lemma A.3 at the realized delta: ||v_k||_1^2 >= n_k^2 / (1 + (n_k - 1)(1 + delta')^2)."""
        Ab = np.asarray(block_normalized_adjacency(g.W, g.part))
        blocks = [Ab[lo:hi, lo:hi] for lo, hi in zip(g.part.offsets[:-1], g.part.offsets[1:])]
        spec = block_spectra(blocks, g.part.n_sub)
        S.assert_bound(np.asarray(spec.l1_sq), bounds.perron_l1_sq_lower(np.asarray(g.part.sizes), g.delta), ">=",
                       what="||v_k||_1^2")


    @settings(S.JAX_SETTINGS, max_examples=30, derandomize=True, database=None)
    @given(S.augmentation_graphs(partition=PART, delta=(0.0, 0.5), xi=0.0, kinds=("random",)))
    def test_bias_without_its_delta_term(g):
        """Eq. 15 with its delta term dropped (false): bias^2 <= (beta/(1+beta))^2."""
        S_ = optimal_representation(normalized_adjacency(g.W), 6, n_sub=3)
        bias2 = bias_variance(S_.eigvecs, S_.eigvals, g.part.labels(), 0.1, 0.0).bias2
        lead, _ = bounds.bias_bound_eq15(0.1, g.delta, g.part.n, 3)
        S.assert_bound(float(bias2), float(lead), "<=", what="bias^2")
''')


def test_a_users_property_passes_for_a_true_claim_and_shrinks_a_false_one(tmp_path):
    (tmp_path / "test_user_claims.py").write_text(USER_TEST)
    out = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "test_user_claims.py"],
               tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode == 1 and "1 failed, 1 passed" in text, text[-4000:]
    assert "FAILED test_user_claims.py::test_bias_without_its_delta_term" in text
    # the shrunk counterexample: a call that rebuilds it (seed and parameters) and both numbers
    call = re.search(r"g=(augmentation_graph\(Partition\(.*?\), delta=(\S+), xi=0\.0, kind='random', seed=(\d+)\))", text)
    assert call, text[-4000:]
    assert re.search(r"AssertionError: bias\^2 = \S+ is not <= bound = \S+: ratio", text)
    delta, seed = float(call.group(2)), int(call.group(3))
    assert 0 < delta <= 0.5 and seed == 0  # shrunk: the seed to 0 (delta > 0: at delta = 0 the claim holds)
    # the printed call rebuilds the counterexample, and the claim fails on it here too
    check = _run(["-c", textwrap.dedent(f"""
        import jax; jax.config.update("jax_enable_x64", True)
        from theory import Partition
        from theory.strategies import augmentation_graph
        import test_user_claims as t
        g = {call.group(1)}
        try:
            t.test_bias_without_its_delta_term.hypothesis.inner_test(g)
        except AssertionError as e:
            print("fails again:", e)
    """)], tmp_path, timeout=120)
    assert "fails again: bias^2 = " in check.stdout, check.stdout + check.stderr
