"""A restricted unpickler for the pickled inputs of the CIFAR pipeline.

The official CIFAR python batches and the CIFAR-10N/100N ``.pt`` label files are pickles, and a
pickle can name any importable callable (``os.system`` included) and call it while loading.
:class:`RestrictedUnpickler` admits only what a pickled numpy array and plain containers need:

- ``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct`` and
  ``numpy.ndarray`` (the array protocol of pickle protocols 0-4),
- ``numpy.core.numeric._frombuffer`` / ``numpy._core.numeric._frombuffer`` (protocol 5),
- ``numpy.dtype`` and ``numpy.core.multiarray.scalar`` (numpy scalars), refusing object dtypes,
  since an object array would carry arbitrary Python objects,
- ``_codecs.encode`` restricted to the latin-1 codec: protocol-2 pickles written by Python 3
  (the CIFAR-N files are) spell a ``bytes`` value as ``_codecs.encode(str, "latin1")``,
- ``builtins.set``, ``frozenset``, ``bytearray``, ``bytes``, ``complex``, ``slice``, ``range`` and
  ``collections.OrderedDict`` (plain containers and values).

Every other global raises :class:`ForbiddenPickleError` (a :class:`pickle.UnpicklingError` and a
``ValueError``) naming it and the file, before anything is called. The CIFAR-N files need nothing of torch: their ``archive/data.pkl`` is a dict of numpy
arrays; a ``.pt`` file that holds torch tensors uses persistent ids for its storages, which are
refused with a message (torch's rebuild functions are never admitted).
"""

from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]


class ForbiddenPickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for something the restricted unpickler does not admit.

    Also a ``ValueError``, so the command line reports it as one line with exit status 2.
    """


class _Guarded:
    """A callable stand-in for an admitted global; has no ``__dict__``, so BUILD cannot patch it."""

    __slots__ = ("_fn", "_name")

    def __init__(self, name: str, fn):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_fn", fn)

    def __call__(self, *args, **kwargs):
        return self._fn(*args, **kwargs)

    def __setattr__(self, key, value):
        raise ForbiddenPickleError(f"refusing to set attribute {key!r} on {self._name}")

    def __repr__(self) -> str:
        return f"<admitted {self._name}>"


def _dtype(*args, **kwargs) -> np.dtype:
    dt = np.dtype(*args, **kwargs)
    if dt.hasobject:
        raise ForbiddenPickleError(f"forbidden object dtype {dt!r} (it could carry arbitrary objects)")
    return dt


def _scalar(dtype, *args):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise ForbiddenPickleError(f"forbidden numpy scalar of dtype {dtype!r}")
    return _multiarray.scalar(dtype, *args)


def _latin1_encode(obj, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    if not isinstance(obj, str) or codecs.lookup(encoding).name != "iso8859-1" or errors != "strict":
        raise ForbiddenPickleError(
            f"forbidden _codecs.encode({type(obj).__name__}, {encoding!r}): only latin-1 text is admitted"
        )
    return obj.encode("latin-1")


def _frombuffer(buf, dtype, shape, order):
    return _numeric._frombuffer(buf, _dtype(dtype), shape, order)


_RECONSTRUCT = _Guarded("numpy._core.multiarray._reconstruct", _multiarray._reconstruct)
_FROMBUFFER = _Guarded("numpy._core.numeric._frombuffer", _frombuffer)
_SCALAR = _Guarded("numpy._core.multiarray.scalar", _scalar)

ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): np.ndarray,  # a builtin type: immutable, only used as _reconstruct's subtype
    ("numpy", "dtype"): _Guarded("numpy.dtype", _dtype),
    ("_codecs", "encode"): _Guarded("_codecs.encode", _latin1_encode),
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "bytes"): bytes,
    ("builtins", "complex"): complex,
    ("builtins", "slice"): slice,
    ("builtins", "range"): range,
    # Python 2 spellings (find_class is overridden, so pickle's fix_imports mapping does not apply)
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("__builtin__", "bytearray"): bytearray,
    ("__builtin__", "complex"): complex,
    ("__builtin__", "slice"): slice,
    ("collections", "OrderedDict"): _Guarded("collections.OrderedDict", dict),
}


class RestrictedUnpickler(pickle.Unpickler):
    """:class:`pickle.Unpickler` whose ``find_class`` admits only :data:`ALLOWED`.

    ``source`` names the file in error messages.
    """

    def __init__(self, file, *, source: str = "<pickle>", encoding: str = "latin1"):
        super().__init__(file, encoding=encoding)
        self.source = source

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise ForbiddenPickleError(
                f"{self.source}: forbidden global {module}.{name} in pickle "
                "(only numpy arrays and plain containers are admitted)"
            ) from None

    def persistent_load(self, pid):  # noqa: D401 - pickle API
        raise ForbiddenPickleError(
            f"{self.source}: pickle refers to external storage {pid!r} (a torch tensor?); "
            "only pickles of numpy arrays and plain containers are admitted"
        )


def safe_loads(data: bytes, *, source: str = "<bytes>", encoding: str = "latin1") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`.

    ``encoding="latin1"`` is what numpy recommends for Python 2 pickles (the official CIFAR batches);
    their ``str`` keys come back as ``str``. A truncated or corrupt pickle raises ``ValueError``
    naming ``source``; a forbidden global raises :class:`ForbiddenPickleError`.
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=source, encoding=encoding).load()
    except ForbiddenPickleError as err:
        if str(err).startswith(source):
            raise
        raise ForbiddenPickleError(f"{source}: {err}") from None
    except pickle.UnpicklingError as err:
        raise ValueError(f"{source}: corrupt or truncated pickle ({err})") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError, MemoryError) as err:
        raise ValueError(f"{source}: corrupt or truncated pickle ({type(err).__name__}: {err})") from None


def safe_load(path: Path | str, *, encoding: str = "latin1") -> Any:
    """Unpickle the file at ``path`` with :class:`RestrictedUnpickler`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    return safe_loads(path.read_bytes(), source=str(path), encoding=encoding)
