"""Every check module of ``experiments.ledger.checks.MODULES`` speaks one protocol (the package's docstring):
the claim registry ``CLAIMS`` and ``C``, ``run(preset, *, seed=0, progress=no_progress)``, ``judge(data)``
and ``plot(data, outdir)``; and no check module switches float64 on or sets a PASS/FAIL verdict by hand."""

from __future__ import annotations

import ast
import inspect

import pytest

from experiments.ledger import checks, claims

MODULES = checks.load()


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_the_protocol(module):
    assert isinstance(module.CLAIMS, tuple) and module.CLAIMS and module.C == claims.by_id(module.CLAIMS)
    run = inspect.signature(module.run)
    assert list(run.parameters)[:3] == ["preset", "seed", "progress"]
    assert run.parameters["seed"].default == 0 and run.parameters["progress"].default is claims.no_progress
    assert list(inspect.signature(module.judge).parameters) == ["data"]
    assert list(inspect.signature(module.plot).parameters)[:2] == ["data", "outdir"]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_no_hand_set_pass_or_fail_and_no_x64_switch(module):
    source = inspect.getsource(module)
    assert "jax_enable_x64" not in source and "use_float64" not in source
    hand_set = [ast.unparse(k) for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
                for k in node.keywords if k.arg == "verdict"
                and any(isinstance(n, ast.Name) and n.id in ("PASS", "FAIL") for n in ast.walk(k.value))]
    assert not hand_set, f"verdicts set by hand: {hand_set}"
