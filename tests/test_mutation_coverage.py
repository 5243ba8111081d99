"""Every PASS-able row of the ledger has a mutation test that flips it (``tests/mutations.py``).

Every check module of ``experiments.ledger.checks.MODULES`` has a ``tests/test_mutations_<family>.py``
(or is declared in :data:`NO_PASSABLE_ROWS`, and then must have no PASS-able row): none is
skipped. The row keys its MUTATIONS cover must equal the keys of the module's rows whose verdict
is PASS or FAIL (not INFO) at the smoke preset; a file that judges synthetic evidence instead of a
run (methods_cpu: its evidence file is replaced by each new grid) provides ``saved()`` returning
``(rows, data)``. The lists are printed (``pytest -s``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import mutations
from experiments.ledger import checks

HERE = Path(__file__).resolve().parent

# Check modules whose every row is INFO (nothing to mutate); each entry is verified below.
NO_PASSABLE_ROWS: frozenset[str] = frozenset()


def _mutation_files():
    out = {}
    for path in sorted(HERE.glob("test_mutations_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        out[mod.MODULE] = mod
    return out


FILES = _mutation_files()


def _rows(module):
    saved = getattr(FILES.get(module), "saved", None)
    return saved()[0] if saved is not None else mutations.saved_run(module)[0]


def test_every_check_module_has_mutations_or_is_declared_without_passable_rows():
    missing = [m for m in checks.MODULES if m not in FILES and m not in NO_PASSABLE_ROWS]
    assert not missing, f"check modules with neither tests/test_mutations_*.py nor a NO_PASSABLE_ROWS entry: {missing}"
    assert not (set(FILES) & NO_PASSABLE_ROWS) and set(FILES) <= set(checks.MODULES)


@pytest.mark.parametrize("module", checks.MODULES)
def test_mutations_cover_every_passable_row(module):
    passable = mutations.passable_keys(_rows(module))
    if module in NO_PASSABLE_ROWS:
        assert passable == [], f"{module} is declared without PASS-able rows but has {passable}"
        return
    covered = sorted({m.key for m in FILES[module].MUTATIONS})
    print(f"\n{module}: PASS-able rows {passable}\n{module}: covered by mutations {covered}")
    assert covered == sorted(passable)
