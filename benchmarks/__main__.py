"""`python -m benchmarks [name ...]` runs the named benchmarks (default: all) in turn."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("balance", "fig7", "folding", "golden_speed", "qat_step", "rtl_speed", "swg_area")


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for n in names:
        print(f"== benchmark {n}")
        rc = importlib.import_module(f"benchmarks.{n}").main([])
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
