"""The sliding-window generator before and after issue 19: cycles per frame and Yosys area.

For each parameter set (the three nodes of the main job at 320 that issue 19 names, and the
windowed cases of tests/test_rtl_swg.py), the `swg` module of the BASELINE commit (frames
scheduled as FINN's formula) and of the working tree (both sides streaming, frames overlapping):

* cycles per frame at full rate -- FINN's formula (golden.cycles.finn_cycles, which the baseline
  RTL met exactly) and golden.cycles.rtl_cycles (today's RTL, exact; both measured by the RTL tests);
* Yosys `synth -flatten` of the module with the ring RAM (ram_1r1w) kept as a black box: logic
  cells, flip-flops, and the ring's words x bits.

    python -m benchmarks.swg_area [--baseline REV]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from golden.cycles import finn_cycles, rtl_cycles
from golden.node import NodeView
from sim.area import FLOP, parse_macros, parse_stat
from sim.layers import LAYERS, sources
from sim.toolchain import hdl_literal

REPO = Path(__file__).resolve().parents[1]
BASELINE = "838c8fd"  # the last commit before issue 19


def _swg(ifm: tuple[int, int], k: int, s: int, ch: int, simd: int, dt: str, dw: int = 0) -> NodeView:
    attrs = dict(
        IFMDim=list(ifm), OFMDim=[(ifm[0] - k) // s + 1, (ifm[1] - k) // s + 1], ConvKernelDim=[k, k],
        Stride=[s, s], Dilation=[1, 1], IFMChannels=ch, SIMD=simd, inputDataType=dt, outputDataType=dt,
        depthwise=dw, parallel_window=0,
    )  # fmt: skip
    return NodeView.make("ConvolutionInputGenerator", attrs, backend="rtl")


CASES: dict[str, NodeView] = {
    "main 320 SWG_1: 320², K2 S2 dw, C16 SIMD4": _swg((320, 320), 2, 2, 16, 4, "UINT4", 1),
    "main 320 SWG_6: 80², K2 S2 dw, C64 SIMD1": _swg((80, 80), 2, 2, 64, 1, "UINT4", 1),
    "main 320 SWG_20: 12², K3 S1, C512 SIMD1": _swg((12, 12), 3, 1, 512, 1, "UINT4"),
    "5×6, K3 S1, C27 SIMD3": _swg((5, 6), 3, 1, 27, 3, "UINT4"),
    "5×7, K3 S2, C24 SIMD24": _swg((5, 7), 3, 2, 24, 24, "INT8"),
    "5×6, K2 S2 dw, C24 SIMD8": _swg((5, 6), 2, 2, 24, 8, "UINT4", 1),
    "5×7, K2 S2, C3 SIMD1": _swg((5, 7), 2, 2, 3, 1, "UINT8"),
}


def _synth(srcs: list[Path], params: dict, work: Path) -> dict[str, int]:
    work.mkdir(parents=True, exist_ok=True)
    lines = [f"read_verilog -sv {'-lib ' if s.stem == 'ram_1r1w' else ''}{s}" for s in srcs]
    sets = " ".join(f"-set {k} {hdl_literal(v)}" for k, v in params.items())
    lines += [
        f"chparam {sets} swg",
        "hierarchy -check -top swg",
        "synth -flatten -top swg",
        f"tee -q -o {work / 'stat.txt'} stat",
        f"tee -q -o {work / 'ram.il'} dump t:ram_1r1w",
    ]
    (work / "synth.ys").write_text("\n".join(lines) + "\n")
    subprocess.run(["yosys", "-q", "-s", str(work / "synth.ys")], check=True, capture_output=True)
    logic = {t: n for t, n in parse_stat((work / "stat.txt").read_text(), "swg").items() if t != "ram_1r1w"}
    ring = parse_macros((work / "ram.il").read_text(), "")
    return {
        "cells": sum(logic.values()),
        "flops": sum(n for t, n in logic.items() if FLOP.search(t)),
        "ring_words": sum(words for _, words, _ in ring),
        "ring_bits": sum(words * width for _, words, width in ring),
    }


def _baseline_sources(rev: str, into: Path) -> list[Path]:
    out = []
    for s in sources("swg"):
        rel = s.relative_to(REPO)
        text = subprocess.run(
            ["git", "show", f"{rev}:{rel}"], cwd=REPO, check=True, capture_output=True, text=True
        )
        (into / s.name).write_text(text.stdout)
        out.append(into / s.name)
    return out


def run_bench(rev: str) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="swg-area-") as tmp:
        base_src = _baseline_sources(rev, Path(tmp))
        for i, (name, node) in enumerate(CASES.items()):
            params = LAYERS["swg"].params(node)
            before = _synth(base_src, params, Path(tmp) / f"b{i}")
            after = _synth(sources("swg"), params, Path(tmp) / f"a{i}")
            rows.append(
                {
                    "case": name,
                    "finn": finn_cycles(node),
                    "rtl": rtl_cycles(node),
                    "before": before,
                    "after": after,
                }
            )
            print(f"swg_area: {name}: {before} -> {after}", flush=True)
    return rows


def _n(v: int) -> str:
    return f"{v:,}".replace(",", " ")


def markdown(rows: list[dict], rev: str) -> str:
    lines = [
        f"Baseline: `swg` at {rev}; after: the working tree. Cycles per frame at full rate; Yosys "
        "`synth -flatten`, ring RAM as a black box.",
        "",
        "| parameters | cycles before (FINN's formula) | cycles after | ratio | cells before → after | "
        "FFs before → after | ring bits before → after |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        b, a = r["before"], r["after"]
        lines.append(
            f"| {r['case']} | {_n(r['finn'])} | {_n(r['rtl'])} | {r['rtl'] / r['finn']:.3f} | "
            f"{_n(b['cells'])} → {_n(a['cells'])} | {_n(b['flops'])} → {_n(a['flops'])} | "
            f"{_n(b['ring_bits'])} → {_n(a['ring_bits'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.swg_area", description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default=BASELINE, help=f"revision of the 'before' RTL (default {BASELINE})")
    args = ap.parse_args(argv)
    print(markdown(run_bench(args.baseline), args.baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
