"""Generic-gate area estimate of each layer: `python -m sim.area [module ...]`.

Yosys 0.23 `synth -flatten` (technology independent: Yosys' internal gate library) of every
layer at a representative parameter set, then `stat`. The memories (ram_1r1w, rom) are read as
black boxes -- an ASIC flow maps them to SRAM/ROM macros -- and reported separately as macro
bits. Writes build/area/report.md. Opt-in (not part of the tests): the 16x16 MVAU alone takes
about a minute and a half.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sim.layers import LAYERS, sources
from sim.toolchain import REPO, hdl_literal

OUT_DIR = REPO / "build" / "area"
MACROS = ("ram_1r1w", "rom")

# A representative configuration of each layer (a mid-size CSPNet layer, 4-bit activations).
AREA_PARAMS: dict[str, dict[str, int]] = {
    "mvau": {
        "MW": 144,
        "MH": 64,
        "SIMD": 16,
        "PE": 16,
        "I_BITS": 4,
        "I_SIGNED": 0,
        "W_BITS": 4,
        "ACC_BITS": 16,
        "NUM_STEPS": 15,
        "T_BITS": 16,
        "O_BITS": 4,
    },
    "swg": {
        "IFM_H": 32,
        "IFM_W": 32,
        "OFM_H": 30,
        "OFM_W": 30,
        "K_H": 3,
        "K_W": 3,
        "CHANNELS": 64,
        "SIMD": 16,
        "BITS": 4,
    },
    "fmpad": {"IMG_H": 32, "IMG_W": 32, "CHANNELS": 64, "SIMD": 16, "BITS": 4},
    "thresholding": {"CHANNELS": 64, "PE": 16, "NUM_STEPS": 15, "I_BITS": 16, "T_BITS": 16, "O_BITS": 4},
    "pool": {"CHANNELS": 64, "PE": 16, "K_H": 2, "K_W": 2, "BITS": 4},
    "concat": {"N_INPUTS": 2, "SIMD": 16, "C0": 64, "C1": 64, "I_BITS0": 4, "I_BITS1": 4, "O_BITS": 4},
    "split": {"N_OUTPUTS": 2, "SIMD": 16, "C0": 64, "C1": 64, "BITS": 4},
    "dup": {"N_OUTPUTS": 2, "CHANNELS": 64, "PE": 16, "BITS": 4},
    "add": {"PE": 16, "L_BITS": 8, "L_SIGNED": 1, "R_BITS": 8, "R_SIGNED": 1, "O_BITS": 9},
    "upsample": {"HI": 16, "WI": 16, "HO": 32, "WO": 32, "CHANNELS": 64, "SIMD": 16, "BITS": 4},
    "dwc": {"IN_WIDTH": 64, "OUT_WIDTH": 16},
    "fifo": {"WIDTH": 64, "DEPTH": 32},
}


@dataclass
class Area:
    module: str
    params: dict[str, int]
    cells: int = 0
    flops: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    macros: list[tuple[str, int, int]] = field(default_factory=list)  # (type, width, depth)
    seconds: float = 0.0
    error: str = ""


def _param_int(v: str | int) -> int:
    """Yosys JSON parameters are binary strings (or ints)."""
    return int(v, 2) if isinstance(v, str) else int(v)


def synth(module: str, params: dict[str, int], work: Path) -> Area:
    work.mkdir(parents=True, exist_ok=True)
    srcs = sources(module)
    libs = [s for s in srcs if s.stem in MACROS]
    logic = [s for s in srcs if s.stem not in MACROS]
    chparams = " ".join(f"-set {k} {hdl_literal(v)}" for k, v in params.items())
    script = "\n".join(
        [
            *(f"read_verilog -sv -lib {s}" for s in libs),
            *(f"read_verilog -sv {s}" for s in logic),
            f"chparam {chparams} {module}" if params else "",
            f"hierarchy -top {module}",
            "synth -flatten -top " + module,
            f"tee -o {work / 'stat.txt'} stat",
            f"write_json {work / 'netlist.json'}",
        ]
    )
    (work / "synth.ys").write_text(script)
    t0 = time.time()
    p = subprocess.run(["yosys", "-q", "-s", str(work / "synth.ys")], capture_output=True, text=True)
    area = Area(module, params, seconds=time.time() - t0)
    if p.returncode != 0:
        area.error = (p.stdout + p.stderr).strip().splitlines()[-1:][0] if (p.stdout + p.stderr) else "?"
        return area
    stat = (work / "stat.txt").read_text()
    m = re.search(r"Number of cells:\s+(\d+)", stat)
    area.cells = int(m.group(1)) if m else 0
    for typ, n in re.findall(r"^\s+(\S+)\s+(\d+)\s*$", stat, flags=re.M):
        area.by_type[typ] = int(n)
    area.flops = sum(n for t, n in area.by_type.items() if "DFF" in t.upper() or "LATCH" in t.upper())
    net = json.loads((work / "netlist.json").read_text())
    for cell in net["modules"][module]["cells"].values():
        if cell["type"] in MACROS:
            p_ = cell["parameters"]
            area.macros.append((cell["type"], _param_int(p_["WIDTH"]), _param_int(p_["DEPTH"])))
    return area


def report(areas: list[Area]) -> str:
    lines = [
        "# RTL area estimate (Yosys generic synthesis)",
        "",
        "`synth -flatten` with Yosys' internal gate library; memories are black-box macros "
        "(ram_1r1w, rom), listed as width x depth. Cells include the flip-flops.",
        "",
        "| module | parameters | cells | flip-flops | memory macros (bits) | synth s |",
        "| --- | --- | ---: | ---: | --- | ---: |",
    ]
    for a in areas:
        params = ", ".join(f"{k}={v}" for k, v in a.params.items())
        if a.error:
            lines.append(f"| {a.module} | {params} | error: {a.error} | | | {a.seconds:.0f} |")
            continue
        mem = "; ".join(f"{t} {w}x{d} ({w * d})" for t, w, d in a.macros) or "-"
        lines.append(f"| {a.module} | {params} | {a.cells} | {a.flops} | {mem} | {a.seconds:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help="layers to synthesise (default: all)")
    args = ap.parse_args(argv)
    modules = args.modules or list(LAYERS)
    areas = []
    for m in modules:
        a = synth(m, AREA_PARAMS.get(m, {}), OUT_DIR / m)
        areas.append(a)
        status = a.error or f"{a.cells} cells, {a.flops} flip-flops"
        print(f"{m:<14} {status} ({a.seconds:.0f} s)", flush=True)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "report.md").write_text(report(areas))
    print(f"wrote {OUT_DIR / 'report.md'}")
    return 1 if any(a.error for a in areas) else 0


if __name__ == "__main__":
    sys.exit(main())
