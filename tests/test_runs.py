"""experiments.common.runs: atomic writes with the user's umask, all-or-nothing output sets, output checks;
experiments.common.argtypes: every typed option refuses what lies outside its range."""

from __future__ import annotations

import argparse
import errno
import os
import stat

import pytest

from experiments.common import argtypes, runs


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_get_the_users_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        runs.atomic_write_text(tmp_path / "a.txt", "x")
        with runs.OutputSet() as outputs:
            outputs.write_text(tmp_path / "b.txt", "y")
            outputs.commit()
    finally:
        os.umask(old)
    for name in ("a.txt", "b.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_an_output_set_moves_everything_in_or_nothing(tmp_path):
    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "a.png").write_bytes(b"old a")
    (tmp_path / "ledger.md").write_text("old ledger")
    with runs.OutputSet() as outputs:
        staged = outputs.stage_dir(tmp_path / "figs")
        (staged / "a.png").write_bytes(b"new a")
        outputs.write_text(tmp_path / "ledger.md", "new ledger")
        assert (tmp_path / "ledger.md").read_text() == "old ledger"  # nothing moved before commit
        assert outputs.final_path(staged / "a.png") == tmp_path / "figs" / "a.png"
    # Left without commit: as before, no temporary file or folder left.
    assert (tmp_path / "figs" / "a.png").read_bytes() == b"old a" and (tmp_path / "ledger.md").read_text() == "old ledger"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "figs", "ledger.md"]
    with runs.OutputSet() as outputs:
        staged = outputs.stage_dir(tmp_path / "figs")
        (staged / "a.png").write_bytes(b"new a")
        outputs.write_text(tmp_path / "ledger.md", "new ledger")
        outputs.commit()
    assert (tmp_path / "figs" / "a.png").read_bytes() == b"new a" and (tmp_path / "ledger.md").read_text() == "new ledger"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "figs", "ledger.md"]


def test_a_failed_write_names_the_path(tmp_path, monkeypatch):
    def full(f, data, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs, "_write", full)
    target = tmp_path / "metrics.json"
    with pytest.raises(OSError, match=f"cannot write {target}: No space left on device") as info:
        runs.write_json(target, {"a": 1})
    assert info.value.errno == errno.ENOSPC and list(tmp_path.iterdir()) == []


def test_output_checks_create_nothing_and_name_the_option(tmp_path):
    runs.check_writable_dir(tmp_path / "new" / "deeper", "--out")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="--out .*file/x: .*file is not a folder"):
        runs.check_writable_dir(tmp_path / "file" / "x", "--out")
    with pytest.raises(IsADirectoryError, match=f"--ledger {tmp_path} is a folder"):
        runs.check_writable_file(tmp_path, "--ledger")


@pytest.mark.parametrize("parse, good, bad", [
    (argtypes.positive_int, ["1", "100000"], ["0", "-5", "1.5", "x"]),
    (argtypes.nonnegative_int, ["0", "7"], ["-1"]),
    (argtypes.seed, ["0", str(argtypes.SEED_MAX)], ["-1", str(argtypes.SEED_MAX + 1), "99999999999999999999999"]),
    (argtypes.positive_float, ["1e-9", "0.5"], ["0", "-1", "inf", "nan", "x"]),
    (argtypes.nonnegative_float, ["0", "3"], ["-1e-9", "inf"]),
    (argtypes.probability, ["0", "1", "0.4"], ["1.01", "-0.1", "nan"]),
    (argtypes.fraction_below_one, ["0", "0.9"], ["1", "1.5"]),
    (argtypes.int_at_least(2), ["2"], ["1"]),
    (argtypes.finite_float, ["-3.5"], ["inf", "-inf", "nan"]),
])
def test_typed_options_accept_their_range_only(parse, good, bad):
    for text in good:
        parse(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)
    with pytest.raises(ValueError, match="--x "):
        argtypes.check("--x", bad[0], parse)


def test_bench_checks_its_output_before_benchmarking(capsys):
    from experiments.cli import main

    assert main(["bench", "simclr", "--out", "/dev/null/x.json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["clspec bench simclr: error: --out /dev/null/x.json: /dev/null is not a folder"]


def _subparsers(parser, path=()):
    import argparse as ap

    for action in parser._actions:
        if isinstance(action, ap._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _subparsers(sub, (*path, name))


# The sub-commands whose --help text is checked here.
HELP_CHECKED = {("verify",), ("cifar", "pretrain"), ("cifar", "train"), ("cache",), ("jacobian-fig2a",)}


def test_every_option_of_these_commands_says_its_default():
    from experiments.cli import build_parser

    seen = set()
    for path, sub in _subparsers(build_parser()):
        if path not in HELP_CHECKED:
            continue
        seen.add(path)
        assert sub.description, path
        for action in sub._actions:
            if not action.option_strings or action.option_strings == ["-h", "--help"]:
                continue
            text = action.help or ""
            assert "default" in text, (path, action.option_strings, text)
            if action.choices:
                assert action.metavar is None, (path, action.option_strings)  # argparse lists the choices
    assert seen == HELP_CHECKED
