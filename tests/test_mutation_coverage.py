"""Every PASS-able row of the ledger has a mutation test that flips it (``tests/mutations.py``).

For each check module with a ``tests/test_mutations_<family>.py``, the row keys its MUTATIONS
cover must equal the keys of the module's rows whose verdict is PASS or FAIL (not INFO) at the
smoke preset. The lists are printed (``pytest -s``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import mutations
from experiments import checks

HERE = Path(__file__).resolve().parent


def _mutation_files():
    out = {}
    for path in sorted(HERE.glob("test_mutations_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        out[mod.MODULE] = mod
    return out


FILES = _mutation_files()


@pytest.mark.parametrize("module", checks.MODULES)
def test_mutations_cover_every_passable_row(module):
    if module not in FILES:
        pytest.skip(f"no tests/test_mutations_*.py for {module} yet")
    rows, _ = mutations.saved_run(module)
    passable = mutations.passable_keys(rows)
    covered = sorted({m.key for m in FILES[module].MUTATIONS})
    print(f"\n{module}: PASS-able rows {passable}\n{module}: covered by mutations {covered}")
    assert covered == sorted(passable)
