"""Where `clspec verify`'s time goes: compilation against running, per check module, and the machine's matmul rate.

:class:`Recorder` listens to JAX's own monitoring events (``jax.monitoring``) while a block runs:
every XLA backend compilation (``/jax/core/compile/backend_compile_duration``, with the name of the
compiled function), the tracing to a jaxpr and the lowering to StableHLO, and the hits of the
persistent compilation cache. It also takes the process's CPU time (all threads), which a busy,
shared machine inflates far less than the wall time. What is left of the wall time after tracing,
lowering and compiling is the time spent running the computations (and in Python and LAPACK).

:func:`settings` is the one place that fixes how `clspec verify` uses the machine: one BLAS
thread for numpy and scipy (their LAPACK calls are on small matrices, where a second thread costs
far more than it gives) and the persistent compilation cache of JAX under the
user's cache folder, so a second run compiles nothing it compiled before. Neither changes a result.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

_COMPILE = "/jax/core/compile/backend_compile_duration"
_TRACE = "/jax/core/compile/jaxpr_trace_duration"
_LOWER = "/jax/core/compile/jaxpr_to_mlir_module_duration"
_CACHE_HIT = "/jax/compilation_cache/cache_hits"


class Recorder:
    """Compile, trace and lower seconds, compilations by function name, and process CPU time of a block.

    ``with Recorder() as rec: ...`` then ``rec.summary()``. Recorders may nest (each listens on its own).
    """

    def __init__(self):
        self.compiles, self.compile_s, self.trace_s, self.lower_s, self.cache_hits = 0, 0.0, 0.0, 0.0, 0
        self.by_function: dict[str, list] = {}  # name -> [compilations, seconds, longest single one]
        self.wall_s = self.cpu_s = 0.0

    def _on_duration(self, event: str, seconds: float, **kw) -> None:
        if event == _COMPILE:
            self.compiles += 1
            self.compile_s += seconds
            entry = self.by_function.setdefault(str(kw.get("fun_name", "?")), [0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += seconds
            entry[2] = max(entry[2], seconds)
        elif event == _TRACE:
            self.trace_s += seconds
        elif event == _LOWER:
            self.lower_s += seconds

    def _on_event(self, event: str, **kw) -> None:
        if event == _CACHE_HIT:
            self.cache_hits += 1

    def __enter__(self):
        import jax.monitoring as monitoring

        monitoring.register_event_duration_secs_listener(self._on_duration)
        monitoring.register_event_listener(self._on_event)
        self._t0, self._c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        import jax.monitoring as monitoring

        self.wall_s = time.perf_counter() - self._t0
        self.cpu_s = time.process_time() - self._c0
        monitoring.unregister_event_duration_listener(self._on_duration)
        monitoring.unregister_event_listener(self._on_event)
        return False

    def summary(self, top: int = 5) -> dict:
        """JSON-able: wall, CPU, compile / trace / lower / run seconds, and the ``top`` functions by compile time."""
        largest = sorted(self.by_function.items(), key=lambda kv: -kv[1][1])[:top]
        return {
            "wall_s": self.wall_s, "cpu_s": self.cpu_s, "compile_s": self.compile_s, "compilations": self.compiles,
            "trace_s": self.trace_s, "lower_s": self.lower_s, "cache_hits": self.cache_hits,
            "run_s": max(self.wall_s - self.compile_s - self.trace_s - self.lower_s, 0.0),
            "largest_compilations": [{"function": name, "compilations": n, "seconds": s, "longest_s": m}
                                     for name, (n, s, m) in largest],
        }


def one_line(p: dict) -> str:
    """``compile 12.1 s (405 compilations), trace + lower 3.2 s, run 16.6 s; CPU 40.2 s``."""
    hits = f", {p['cache_hits']} from the cache" if p.get("cache_hits") else ""
    return (f"compile {p['compile_s']:.1f} s ({p['compilations']} compilations{hits}), trace + lower "
            f"{p['trace_s'] + p['lower_s']:.1f} s, run {p['run_s']:.1f} s; CPU {p['cpu_s']:.1f} s")


def table(sections: list[dict], top: int = 3) -> str:
    """The ``--profile`` report: one line per module, then its largest compilations."""
    lines = ["profile (wall seconds; CPU = process time of all threads, steadier on a busy machine):",
             f"  {'module':<14} {'wall':>7} {'compile':>8} {'n':>5} {'trace+lower':>12} {'run':>7} {'CPU':>7}"
             f"  lane (0: main process), from - to (s after the checks began)"]
    for sec in sections:
        p = sec.get("profile")
        if not p:
            continue
        name = sec["module"].rsplit(".", 1)[-1]
        lines.append(f"  {name:<14} {p['wall_s']:7.1f} {p['compile_s']:8.1f} {p['compilations']:5d} "
                     f"{p['trace_s'] + p['lower_s']:12.1f} {p['run_s']:7.1f} {p['cpu_s']:7.1f}"
                     + (f"  {p['lane']:4d} {p['started_s']:6.1f} - {p['ended_s']:5.1f}" if "lane" in p else ""))
        for c in p["largest_compilations"][:top]:
            lines.append(f"      {c['function'][:48]:<48} {c['compilations']:4d} x, {c['seconds']:6.2f} s "
                         f"(longest {c['longest_s']:.2f} s)")
    return "\n".join(lines)


def cache_dir() -> Path:
    """The persistent compilation cache: ``$CLSPEC_XLA_CACHE``, else ``xla/`` of the clspec cache folder."""
    if os.environ.get("CLSPEC_XLA_CACHE"):
        return Path(os.environ["CLSPEC_XLA_CACHE"]).expanduser()
    from experiments.common.runs import user_cache_dir

    return user_cache_dir() / "xla"


# XLA's CPU compiler at LLVM O1 and with its classic fusion emitters rather than the MLIR ones: a cold `clspec verify`
# spends most of its time compiling some 500 small programs that each run a few times. Measured in one session on a
# 2-core Xeon (cold cache, two lanes): compile 29.7 -> 15.4 s (CPU seconds summed over the modules), wall 39.8 ->
# 31.1 s, run time unchanged; the rows identical but for C31, a round-off residual (1.26e-15 -> 1.08e-15 against
# 1e-9). LLVM O1 alone: 37.4 s, rows identical; the classic emitters alone: 34.0 s; O0 (an earlier session): compile
# faster, run twice as slow. The optimization level is XLA's for every backend, so it is set only where JAX runs on
# the CPU alone (:func:`_cpu_only`); the emitter flag is the CPU compiler's own.
XLA_CPU_FLAGS = ("--xla_backend_optimization_level=1", "--xla_cpu_use_fusion_emitters=false")
_XLA_FLAGS_SET: tuple[str, ...] = ()


def _cpu_only() -> bool:
    """Whether JAX will run on the CPU only: ``$JAX_PLATFORMS`` names the CPU first, or, unset, no accelerator
    plugin (JAX's ``jax_plugins`` entry points and namespace package, where ``jax[cuda12]`` installs) is there."""
    platforms = os.environ.get("JAX_PLATFORMS", "").strip()
    if platforms:
        return platforms.split(",")[0].strip().lower() == "cpu"
    import importlib.metadata
    import pkgutil

    if list(importlib.metadata.entry_points(group="jax_plugins")):
        return False
    try:
        import jax_plugins
    except ImportError:
        return True
    return not list(pkgutil.iter_modules(jax_plugins.__path__))


def set_xla_flags() -> tuple[str, ...]:
    """Add :data:`XLA_CPU_FLAGS` to ``$XLA_FLAGS`` if JAX has not started a backend yet (XLA reads the variable
    once, when it starts), keeping any of these flags the user set there (and only the CPU compiler's own
    where an accelerator may be used: :func:`_cpu_only`); ``CLSPEC_XLA_FLAGS=off`` leaves XLA's
    defaults. Returns the flags in effect from this call or an earlier one. Once set they stay set for the life
    of the process, so that the worker processes it starts compile as it does."""
    global _XLA_FLAGS_SET
    from jax._src import xla_bridge

    if _XLA_FLAGS_SET or os.environ.get("CLSPEC_XLA_FLAGS", "").lower() in ("off", "0", "none") \
            or xla_bridge.backends_are_initialized():
        return _XLA_FLAGS_SET
    current = os.environ.get("XLA_FLAGS", "").split()
    names = {f.split("=", 1)[0] for f in current}
    wanted = XLA_CPU_FLAGS if _cpu_only() else tuple(f for f in XLA_CPU_FLAGS if f.startswith("--xla_cpu_"))
    added = tuple(f for f in wanted if f.split("=", 1)[0] not in names)
    os.environ["XLA_FLAGS"] = " ".join(current + list(added))
    _XLA_FLAGS_SET = added
    return added


_CACHE_OPTIONS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
                  "jax_persistent_cache_min_entry_size_bytes")


@contextlib.contextmanager
def settings(*, compile_cache: bool = True):
    """How `clspec verify` runs: one BLAS thread (threadpoolctl) and JAX's persistent compilation cache (its XLA
    flags, :func:`set_xla_flags`, are set before JAX starts, and reach its worker processes through the environment).

    The cache keeps every compilation (however short: a run makes hundreds of small ones); it is
    skipped, with nothing else changed, when its folder cannot be made, and ``CLSPEC_XLA_CACHE=off``
    turns it off. It never decides a result. JAX's settings are restored on exit.
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    saved = {name: getattr(jax.config, name) for name in _CACHE_OPTIONS}
    if compile_cache and os.environ.get("CLSPEC_XLA_CACHE", "").lower() not in ("off", "0", "none"):
        try:
            path = cache_dir()
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            path = None
        if path is not None and not os.access(path, os.W_OK | os.X_OK):
            path = None  # a read-only cache folder: compile as without one
        if path is not None:
            compilation_cache.reset_cache()
            for name, value in zip(_CACHE_OPTIONS, (str(path), 0.0, 0)):
                jax.config.update(name, value)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # numpy and scipy keep their own thread count
        limits = contextlib.nullcontext()
    else:
        import numpy  # noqa: F401  the limit reaches only the BLAS libraries loaded when it is set:
        import scipy.linalg  # noqa: F401  numpy's, and scipy's (which jaxlib's LAPACK kernels call too)

        limits = threadpool_limits(limits=1, user_api="blas")
    try:
        with limits:
            yield
    finally:
        if any(getattr(jax.config, name) != value for name, value in saved.items()):
            for name, value in saved.items():
                jax.config.update(name, value)
            compilation_cache.reset_cache()


def matmul_rate(n: int = 2048, repeats: int = 5) -> dict:
    """The float32 matmul rate of this machine in JAX: the best time of an ``n x n x n`` product after a
    warm-up call, as ``{"n", "best_s", "gflops"}``. Printed beside a total time so that a reader on another
    machine can scale it; the benchmarks (``experiments.bench``) report their ratios against it."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    f = jax.jit(lambda a, b: jnp.dot(a, b, precision=jax.lax.Precision.HIGHEST)).lower(a, b).compile()
    f(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a, b).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return {"n": n, "best_s": best, "gflops": 2 * n**3 / best / 1e9}
