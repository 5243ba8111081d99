"""`clspec verify`: run every theory check, print the claim table, write figures, results and the ledger.

Each check module in :mod:`experiments.checks` evaluates its claims at a preset and
returns rows (measured, bound, ratio, verdict). A claim that does not hold is a FAIL
row; only a check that crashes is an ERROR, and then the exit status is 1 and the
ledger is left as it was (no partial result overwrites a good one).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

from experiments import checks, runs
from experiments.claims import ERROR, FAIL, INFO, PASS, Row, error_row


def _project_root() -> Path:
    """The source checkout when clspec is installed editable, else the working directory."""
    root = runs.REPO_ROOT
    return root if (root / "pyproject.toml").exists() else Path.cwd()


def add_parser(subparsers) -> None:
    root = _project_root()
    p = subparsers.add_parser(
        "verify",
        help="run every theory check, print the claim table, write figures and paper_checks.md",
        description=(
            "Run every check of the paper's theory (Theorem 4.3 and its lemmas, the linear head under "
            "label noise, trained encoders) on the CPU in float64, print one row per claim (measured "
            "value, bound, measured/bound, verdict), save config.json, env.json and metrics.json, "
            "draw the figures and regenerate the ledger. Exit status: 0 when every check ran (FAIL rows "
            "are findings, not errors), 1 when a check crashed, 2 on bad arguments."
        ),
    )
    p.add_argument("--preset", default="cpu", metavar="NAME",
                   help=f"sizes of the sweeps: {', '.join(checks.PRESETS)} (default: cpu, about 2 minutes on 2 cores; "
                        "large: n = 20,000 points, 200 sub-classes, matrix-free)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder for config.json, env.json, metrics.json (default: results/verify-PRESET)")
    p.add_argument("--figures", default=str(root / "figures"), metavar="DIR", help="folder for the PNGs (default: figures/)")
    p.add_argument("--ledger", default=str(root / "paper_checks.md"), metavar="FILE",
                   help="the ledger to regenerate (default: paper_checks.md)")
    p.add_argument("--seed", type=int, default=0, help="base seed of every PRNG key (default: 0)")
    p.add_argument("--only", nargs="+", default=None, metavar="MODULE",
                   help=f"run only these check modules ({', '.join(m.rsplit('.', 1)[-1] for m in checks.MODULES)})")
    p.add_argument("--replot", default=None, metavar="RUN_DIR",
                   help="re-draw the figures and the ledger from a saved run's metrics.json, without recomputing")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=main)


def _progress(enabled: bool):
    if not enabled:
        return lambda it, **kw: it
    from tqdm.auto import tqdm

    def wrap(it, desc=None, **kw):
        return tqdm(it, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True, **kw)

    return wrap


def _select(only) -> list:
    modules = checks.load()
    if only is None:
        return modules
    names = {m.__name__.rsplit(".", 1)[-1]: m for m in modules}
    for name in only:
        if name not in names:
            raise ValueError(f"--only must name check modules from {sorted(names)}, got {name!r}")
    return [names[name] for name in only]


def _fmt_num(x) -> str:
    if x is None:
        return "-"
    x = float(x)
    if x != x:
        return "nan"
    if x == 0:
        return "0"
    a = abs(x)
    return f"{x:.3e}" if (a < 1e-3 or a >= 1e5) else f"{x:.4g}"


def format_table(rows: list[Row]) -> str:
    head = ("ID", "source", "measured", "rel", "bound", "ratio", "verdict", "setting")
    body = [(r.claim, r.source, _fmt_num(r.measured), r.relation or "", _fmt_num(r.bound), _fmt_num(r.ratio), r.verdict,
             r.setting[:60]) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(tuple("-" * w for w in widths))] + [line(b) for b in body])


def _summary(rows: list[Row]) -> dict:
    return {v: sum(r.verdict == v for r in rows) for v in (PASS, FAIL, INFO, ERROR)}


def write_ledger(path: Path, sections: list[dict], meta: dict, figures_dir: Path) -> None:
    """Render paper_checks.md from the evaluated rows (see :func:`experiments.ledger`)."""
    from experiments.ledger import render

    runs.atomic_write_text(path, render(sections, meta, figures_dir, path.parent))


def main(args: argparse.Namespace) -> int:
    if args.preset not in checks.PRESETS:
        raise ValueError(f"--preset must be one of {', '.join(checks.PRESETS)}, got {args.preset!r}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    modules = _select(args.only)
    import jax

    jax.config.update("jax_enable_x64", True)  # theory checks run in float64
    figures_dir, ledger = Path(args.figures), Path(args.ledger)

    if args.replot is not None:
        return _replot(Path(args.replot), modules, figures_dir, ledger)

    out = Path(args.out) if args.out else _project_root() / "results" / f"verify-{args.preset}"
    config = {"preset": args.preset, "seed": args.seed, "modules": [m.__name__ for m in modules],
              "figures": str(figures_dir), "ledger": str(ledger)}
    runs.start_run(out, config, seed=args.seed)
    progress = _progress(not args.no_progress and sys.stderr.isatty())

    t_start = time.perf_counter()
    sections, all_rows, errors = [], [], []
    for module in modules:
        name = module.__name__.rsplit(".", 1)[-1]
        print(f"[{name}] running ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        data, figs = {}, []
        try:
            rows, data = module.run(args.preset, seed=args.seed, progress=progress)
            seen = {r.claim for r in rows}
            missing = [c for c in module.CLAIMS if c.id not in seen]
            rows = rows + [error_row(c, RuntimeError("the check returned no row for this claim")) for c in missing]
        except KeyboardInterrupt:
            raise
        except Exception as err:  # a crashing check is an ERROR row, not a crash of the job
            if os.environ.get("CLSPEC_DEBUG"):
                raise
            rows = [error_row(c, err) for c in module.CLAIMS]
            errors.append(f"{name}: {type(err).__name__}: {err}")
        seconds = time.perf_counter() - t0
        if data:
            try:
                figs = [str(p) for p in module.plot(data, figures_dir)]
            except Exception as err:
                if os.environ.get("CLSPEC_DEBUG"):
                    raise
                errors.append(f"{name} figures: {type(err).__name__}: {err}")
        print(f"[{name}] {len(rows)} rows in {seconds:.1f} s", file=sys.stderr, flush=True)
        sections.append({"module": module.__name__, "title": (module.__doc__ or name).strip().splitlines()[0],
                         "rows": [r.as_dict() for r in rows], "seconds": seconds, "figures": figs, "data": data})
        all_rows += rows

    total = time.perf_counter() - t_start
    meta = {"preset": args.preset, "seed": args.seed, "seconds": total, "summary": _summary(all_rows),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": runs.git_commit(), "errors": errors, "command": "clspec verify --preset " + args.preset,
            "machine": machine()}
    runs.write_json(out / "metrics.json", {"meta": meta, "sections": sections})

    print(format_table(all_rows))
    s = meta["summary"]
    print(f"\n{len(all_rows)} rows: {s[PASS]} PASS, {s[FAIL]} FAIL, {s[INFO]} INFO, {s[ERROR]} ERROR "
          f"in {total:.1f} s (preset {args.preset}); results in {out}")
    _print_extras(sections)
    if errors:
        for e in errors:
            print(f"error: {e}", file=sys.stderr)
        print(f"ledger {ledger} left unchanged because a check errored", file=sys.stderr)
        return 1
    write_ledger(ledger, sections, meta, figures_dir)
    print(f"figures in {figures_dir}; ledger {ledger}")
    return 0


def _print_extras(sections) -> None:
    for sec in sections:
        for note in (sec["data"] or {}).get("notes", []):
            print(note)


def machine() -> str:
    """The machine a ledger is made on (another CPU's LAPACK may round differently): CPU model, cores, LAPACK."""
    import platform

    import numpy as np

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["lapack"]["name"]
    except Exception:  # noqa: BLE001 - the config layout differs across numpy versions
        blas = "unknown LAPACK"
    return f"{cpu} ({os.cpu_count()} cores, {platform.system()}, numpy {np.__version__} with {blas})"


def _replot(run_dir: Path, modules, figures_dir: Path, ledger: Path) -> int:
    path = run_dir / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(f"--replot: no metrics.json in {run_dir}")
    saved = json.loads(path.read_text())
    by_name = {m.__name__: m for m in modules}
    for sec in saved["sections"]:
        module = by_name.get(sec["module"])
        if module is not None and sec["data"]:
            sec["figures"] = [str(p) for p in module.plot(sec["data"], figures_dir)]
    write_ledger(ledger, saved["sections"], saved["meta"], figures_dir)
    print(f"re-drew figures in {figures_dir} and {ledger} from {path}")
    return 0
