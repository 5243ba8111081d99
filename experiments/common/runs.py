"""Saving results: run folders, env.json, atomic writes, all-or-nothing output sets.

Every run writes ``config.json``, ``env.json`` and ``metrics.json`` into its folder, and a
``README.md`` saying what each file there is. Run folders go under :func:`results_dir`
(``./results`` of the current directory, or ``$CLSPEC_RESULTS``) unless ``--out`` says otherwise.
Writes go through a temporary file and ``os.replace``, so an interrupted run never leaves a
half-written file in place of a good one; :class:`OutputSet` extends this to every output of a
run (stage all, then move all in). Files get the user's umask (``0666 & ~umask``), not
``mkstemp``'s 0600, so a shared ``--out`` works. A write that fails (a full disk) raises
``OSError`` naming the path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import shutil
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]

# How many runs this process has started (:func:`mark_started`): the command line tells an error raised
# once a run has started (its inputs were accepted: exit 1) from one raised before (bad input: exit 2).
_STARTED = [0]


def mark_started() -> None:
    """Record that a run's work has started: every check of its inputs is behind it."""
    _STARTED[0] += 1


def runs_started() -> int:
    """How many runs this process has started so far (see :func:`mark_started`)."""
    return _STARTED[0]


def _to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy / jax arrays and scalars
        return _to_jsonable(np.asarray(obj).tolist())
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)  # JSON has no NaN/inf; keep them readable
    return obj


def results_dir() -> Path:
    """Where run folders go by default, for every command: ``$CLSPEC_RESULTS``, else ``./results``."""
    return Path(os.environ.get("CLSPEC_RESULTS") or "results")


def user_cache_dir() -> Path:
    """clspec's cache folder (decoded image folders, compiled programs): ``$CLSPEC_CACHE``, else ``~/.cache/clspec``."""
    return Path(os.environ.get("CLSPEC_CACHE") or Path.home() / ".cache" / "clspec").expanduser()


def file_mode() -> int:
    """``0o666 & ~umask``: the mode ``open()`` would give a new file."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _named_oserror(err: OSError, path: Path | str) -> OSError:
    """``err`` with the path in its message (a full disk says only "No space left on device")."""
    if getattr(err, "filename", None) is not None:
        return err
    code = err.errno if err.errno is not None else errno.EIO
    return type(err)(code, f"cannot write {path}: {err.strerror or err}")


def _write(f, data: bytes, path: Path) -> None:
    """Every file clspec writes goes through here (one seam for the fault-injection tests)."""
    f.write(data)


def _temp_beside(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, file_mode())
    return fd, tmp


def _keep_as(path: Path, previous: Path) -> None:
    """Make ``previous`` a copy of ``path`` atomically (a hard link where the file system has them)."""
    fd, tmp = _temp_beside(previous)
    os.close(fd)
    os.unlink(tmp)
    try:
        try:
            os.link(path, tmp)
        except OSError:
            shutil.copy2(path, tmp)
        os.replace(tmp, previous)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_writer(path: Path | str, keep_previous: Path | str | None = None):
    """Open a temporary file beside ``path`` for binary writing; on success it replaces ``path``.

    Readers see the old file or the new one, never a torn one; on an exception (or an
    interruption) the temporary file is removed and ``path`` is left as it was. A failed write
    (``ENOSPC``...) raises ``OSError`` naming ``path``. With ``keep_previous``, the file that is
    replaced stays there (the last good checkpoint, say); at every moment ``path`` is a whole file.
    """
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            if keep_previous is not None and path.exists():
                _keep_as(path, Path(keep_previous))
            os.replace(tmp, path)
        except OSError as err:
            raise _named_oserror(err, path) from err
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path | str, data: bytes, keep_previous: Path | str | None = None) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, keep_previous) as f:
        _write(f, data, Path(path))


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path | str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(_to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(seed: int | None = None) -> dict:
    """What env.json records: git commit, versions, device, x64, seed and the command line."""
    import jax

    return {
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.read("jax_enable_x64")),
        "seed": seed,
        "command": sys.argv,
    }


def start_run(out: Path | str, config: Any, seed: int | None = None, files: dict[str, str] | None = None) -> Path:
    """Create the run folder and write config.json, env.json and README.md (:func:`write_index`) into it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config)
    write_json(out / "env.json", environment(seed))
    if files is not None:
        write_index(out, files)
    return out


# What every run folder holds; jobs add their own files.
COMMON_FILES = {
    "config.json": "the settings of the run (every option, after the preset was applied)",
    "env.json": "git commit, Python/JAX versions, device, float64 on or off, seed and the command line",
    "metrics.json": "the results: the summary a job prints at its end, with every number in full",
}


def write_index(out: Path | str, files: dict[str, str], title: str | None = None) -> None:
    """``README.md`` of a run folder: one line per file saying what it is."""
    out = Path(out)
    lines = [f"# {title or out.name}", "", "Written by clspec. What each file here is:", ""]
    lines += [f"- `{name}`: {what}" for name, what in files.items()]
    atomic_write_text(out / "README.md", "\n".join(lines) + "\n")


def check_writable_dir(path: Path | str, option: str, shown: Path | str | None = None) -> Path:
    """Refuse, before any work, an output folder that cannot be created or written.

    Creates nothing: ``path`` must be a writable folder, or not exist below a writable folder.
    The message names ``option`` and ``shown`` (default ``path``).
    """
    path = Path(path)
    shown = path if shown is None else shown
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise NotADirectoryError(f"{option} {shown}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"{option} {shown}: {probe} is not writable")
    return path


def check_writable_file(path: Path | str, option: str) -> Path:
    """Refuse, before any work, an output file that is a folder or sits where nothing can be written."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{option} {path} is a folder; expected a file name")
    check_writable_dir(path.parent, option, shown=path)
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f"{option} {path} is not writable")
    return path


class OutputSet:
    """Every output of a run, all or nothing: stage each file beside its target, then move all in.

    ``stage(path)`` gives a temporary path in ``path``'s folder (same file system, so the final
    ``os.replace`` cannot run out of space); ``stage_dir(folder)`` a temporary folder inside
    ``folder`` whose files replace those of ``folder`` by name. ``commit()`` moves every staged
    file into place (renames only: no data is written then); leaving the ``with`` block without
    ``commit()``, or on an exception, removes every staged file and leaves the targets as they were.
    """

    def __init__(self):
        self._files: list[tuple[Path, Path]] = []  # (staged, target)
        self._dirs: list[tuple[Path, Path]] = []  # (staged folder, target folder)
        self._created: list[Path] = []  # target folders made by stage_dir: removed again if left empty

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, *exc) -> None:
        self.discard()

    def stage(self, path: Path | str) -> Path:
        path = Path(path)
        try:
            fd, tmp = _temp_beside(path)
        except OSError as err:
            raise _named_oserror(err, path) from err
        os.close(fd)
        self._files.append((Path(tmp), path))
        return Path(tmp)

    def write_bytes(self, path: Path | str, data: bytes) -> None:
        staged = self.stage(path)
        try:
            with open(staged, "wb") as f:
                _write(f, data, Path(path))
                f.flush()
                os.fsync(f.fileno())
        except OSError as err:
            raise _named_oserror(err, path) from err

    def write_text(self, path: Path | str, text: str) -> None:
        self.write_bytes(path, text.encode("utf-8"))

    def write_json(self, path: Path | str, obj: Any) -> None:
        self.write_text(path, json.dumps(_to_jsonable(obj), indent=2) + "\n")

    def stage_dir(self, folder: Path | str) -> Path:
        folder = Path(folder)
        created = not folder.exists()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".clspec-stage-"))
        except OSError as err:
            raise _named_oserror(err, folder) from err
        self._dirs.append((tmp, folder))
        if created:
            self._created.append(folder)
        return tmp

    def final_path(self, path: Path | str) -> Path:
        """Where a file written into a staged folder ends up after :meth:`commit`."""
        path = Path(path)
        for tmp, folder in self._dirs:
            if path.parent == tmp:
                return folder / path.name
        return path

    def discard_dir(self, staged: Path) -> None:
        """Drop one staged folder and its files (its target folder is left as it was)."""
        shutil.rmtree(staged, ignore_errors=True)
        self._dirs = [(tmp, folder) for tmp, folder in self._dirs if tmp != staged]

    def commit(self) -> list[Path]:
        """Move every staged file into place; return the targets."""
        done = []
        for tmp, folder in self._dirs:
            for f in sorted(tmp.iterdir()):
                os.replace(f, folder / f.name)
                done.append(folder / f.name)
            tmp.rmdir()
        for staged, target in self._files:
            os.replace(staged, target)
            done.append(target)
        self._files, self._dirs = [], []
        self._remove_empty_created()
        return done

    def _remove_empty_created(self) -> None:
        for folder in self._created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when empty
        self._created = []

    def discard(self) -> None:
        for staged, _ in self._files:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()
        for tmp, _ in self._dirs:
            shutil.rmtree(tmp, ignore_errors=True)
        self._files, self._dirs = [], []
        self._remove_empty_created()
