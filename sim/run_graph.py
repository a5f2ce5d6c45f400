"""`python -m sim.run_graph HW_DIR`: every node of HW_DIR/model.hw.onnx in its RTL module (sim.graph).

Reads the golden vectors (default HW_DIR/vectors, as `python -m golden.vectors HW_DIR` writes
them), writes HW_DIR/sim/report.md and report.json. Exit status: 0 when every node passes, 1 when
some node does not, 2 when the run could not start (no vectors, stale vectors, bad arguments).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from golden.errors import GoldenError
from sim.graph import SIMULATORS, passed, simulate

MAX_LISTED = 20  # failing nodes printed; the report lists them all


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.run_graph", description=__doc__.splitlines()[0])
    ap.add_argument("hw_dir", type=Path, help="hls variant directory (model.hw.onnx)")
    ap.add_argument("--vectors", type=Path, help="golden vectors directory (default HW_DIR/vectors)")
    ap.add_argument("--sim", choices=SIMULATORS, default="verilator", help="simulator (default verilator)")
    ap.add_argument("--out", type=Path, help="report directory (default HW_DIR/sim)")
    ap.add_argument("--frames", type=int, help="frames per pass (default max(3, frames in the vectors))")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random stalls")
    ap.add_argument("--only", nargs="+", metavar="NODE", help="simulate only these nodes or op types")
    args = ap.parse_args(argv)
    try:
        report = simulate(
            args.hw_dir,
            args.vectors or args.hw_dir / "vectors",
            simulator=args.sim,
            out_dir=args.out,
            frames=args.frames,
            seed=args.seed,
            only=args.only,
        )
    except (GoldenError, ValueError) as e:
        print(f"sim: error: {e}", file=sys.stderr)
        return 2
    bad = [e for e in report["nodes"] if e["verdict"] not in ("pass", "skipped")]
    for e in bad[:MAX_LISTED]:
        print(f"sim: {e['name']} ({e['op_type']}): {e['verdict']}: {e.get('reason', '')}")
    if len(bad) > MAX_LISTED:
        print(f"sim: ... and {len(bad) - MAX_LISTED} more nodes that did not pass (see the report)")
    return 0 if passed(report) else 1


if __name__ == "__main__":
    sys.exit(main())
