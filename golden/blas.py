"""Run golden's matrix products on a single BLAS thread.

Golden's MVAU products are many small GEMMs (a few MFLOP each).  On a machine whose cores are shared,
OpenBLAS's worker threads spin waiting for each other and a frame of cspdensenet-ref-prn @320
takes 0.7-1.0 s instead of 0.17 s single-threaded (benchmarks/RESULTS.md, "Golden model").  NumPy
has no API for the thread count, so the OpenBLAS that NumPy loaded is found in the process's memory
map and driven through ctypes (standard library): `openblas_set_num_threads_local` changes the
calling thread only; older OpenBLAS builds fall back to the global setter, restored afterwards.
Anything unexpected (no OpenBLAS, not Linux) leaves BLAS alone: this is speed, never correctness.

`GOLDEN_BLAS_THREADS` (environment) overrides the thread count; 0 means "leave BLAS as it is".
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_UNSET = object()
_api: object = _UNSET


def _loaded_openblas() -> list[str]:
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    paths = {line.split()[-1] for line in maps.splitlines() if "openblas" in line and ".so" in line}
    return sorted(p for p in paths if p.startswith("/"))


def _find() -> tuple[Callable[[int], int], bool] | None:
    """(setter returning the previous count, thread-local?) of the loaded OpenBLAS, if any."""
    import numpy  # noqa: F401  (makes sure NumPy's BLAS is loaded before looking for it)

    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        local = getattr(lib, "openblas_set_num_threads_local", None)
        if local is not None:
            local.argtypes, local.restype = [ctypes.c_int], ctypes.c_int
            return local, True
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", "_64", ""):
                setter = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                if setter is None or getter is None:
                    continue
                getter.restype = ctypes.c_int
                setter.argtypes = [ctypes.c_int]

                def swap(n: int, _s=setter, _g=getter) -> int:
                    old = int(_g())
                    _s(n)
                    return old

                return swap, False
    return None


def _threads() -> int:
    try:
        return max(0, int(os.environ.get("GOLDEN_BLAS_THREADS", "1")))
    except ValueError:
        return 1


@contextmanager
def blas_threads(n: int | None = None) -> Iterator[None]:
    """Within the block NumPy's BLAS uses `n` threads (default GOLDEN_BLAS_THREADS or 1)."""
    global _api
    n = _threads() if n is None else n
    if _api is _UNSET:
        try:
            _api = _find()
        except Exception:  # speed only: never let this break the referee
            _api = None
    if n <= 0 or _api is None:
        yield
        return
    swap = _api[0]  # type: ignore[index]
    old = swap(n)
    try:
        yield
    finally:
        swap(old)
