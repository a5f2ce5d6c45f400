"""Lint gate for the RTL library: `python -m sim.lint`.

Every module is checked with `verilator --lint-only -Wall` and `iverilog -g2012 -Wall`, at its
default parameters and at the extra parameter sets below (which reach the other generate
branches). Prints a table; exits 1 on any warning or error.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sim.layers import MODULES, sources
from sim.toolchain import VERILATOR_BIN, hdl_literal

# Extra parameter sets per module (the defaults are always checked too).
EXTRA_PARAMS: dict[str, list[dict[str, object]]] = {
    "mvau": [
        {"MW": 27, "SIMD": 3, "MH": 24, "PE": 4, "NUM_STEPS": 15, "I_SIGNED": 1, "ACT_VAL": -8},
        {"NO_ACT": 1, "O_BITS": 16},
        {"MW": 16, "SIMD": 16, "MH": 8, "PE": 8},
        {"MW": 27, "SIMD": 3, "MH": 24, "PE": 4, "NUM_STEPS": 15, "LOAD": 1},
        {"NO_ACT": 1, "O_BITS": 16, "LOAD": 1},
    ],
    "swg": [
        {
            "IFM_H": 9,
            "IFM_W": 9,
            "OFM_H": 4,
            "OFM_W": 4,
            "K_H": 2,
            "K_W": 2,
            "S_H": 2,
            "S_W": 2,
            "CHANNELS": 24,
            "SIMD": 8,
            "DEPTHWISE": 1,
        },
        {"K_H": 1, "K_W": 1, "OFM_H": 2, "OFM_W": 2, "S_H": 2, "S_W": 2, "CHANNELS": 27, "SIMD": 3},
        {"PARALLEL": 1, "CHANNELS": 3, "SIMD": 3},
        {"PARALLEL": 1, "K_H": 2, "K_W": 2, "S_H": 2, "S_W": 2, "CHANNELS": 8, "SIMD": 4, "DEPTHWISE": 1},
    ],
    "fmpad": [{"CHANNELS": 27, "SIMD": 3, "PAD_T": 0, "PAD_L": 0, "PAD_B": 1, "PAD_R": 1}],
    "thresholding": [
        {"CHANNELS": 24, "PE": 4, "NUM_STEPS": 15, "I_SIGNED": 0, "ACT_VAL": -8},
        {"CHANNELS": 24, "PE": 4, "NUM_STEPS": 3, "LOAD": 1},
    ],
    "wmem": [{"LOAD": 1, "WIDTH": 36, "DEPTH": 5}],
    "pool": [{"CHANNELS": 24, "PE": 8, "SIGNED": 1, "BITS": 4}],
    "concat": [
        {"N_INPUTS": 3, "SIMD": 3, "C0": 3, "C1": 24, "C2": 27, "I_BITS0": 4, "I_SIGNED1": 1, "O_BITS": 9}
    ],
    "split": [{"N_OUTPUTS": 3, "SIMD": 3, "C0": 3, "C1": 24, "C2": 27}],
    "dup": [{"N_OUTPUTS": 3, "PE": 3, "CHANNELS": 27}],
    "add": [
        {"PE": 3, "L_BITS": 4, "L_SIGNED": 1, "R_BITS": 11, "O_BITS": 12},
        {"PE": 3, "OP": 1, "L_BITS": 4, "L_SIGNED": 1, "R_BITS": 11, "O_BITS": 11},
        {"PE": 2, "OP": 2, "L_BITS": 4, "L_SIGNED": 1, "R_BITS": 5, "O_BITS": 9},
    ],
    "upsample": [{"HI": 3, "WI": 3, "HO": 6, "WO": 6, "CHANNELS": 24, "SIMD": 8}],
    "dwc": [{"IN_WIDTH": 24, "OUT_WIDTH": 16}, {"IN_WIDTH": 4, "OUT_WIDTH": 36}],
    "fifo": [{"DEPTH": 40, "WIDTH": 12}, {"DEPTH": 1, "WIDTH": 16}],
}


@dataclass
class LintResult:
    module: str
    params: dict[str, object]
    tool: str
    ok: bool
    output: str


def _tool_env_path() -> str:
    return str(VERILATOR_BIN)


def run_verilator(module: str, params: dict[str, object]) -> LintResult:
    exe = shutil.which("verilator", path=_tool_env_path()) or "verilator"
    cmd = [exe, "--lint-only", "-Wall", "--top-module", module]
    cmd += [f"-G{k}={hdl_literal(v)}" for k, v in params.items()]
    cmd += [str(s) for s in sources(module)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    out = "\n".join(ln for ln in (p.stdout + p.stderr).splitlines() if not ln.startswith("- "))
    return LintResult(module, params, "verilator", p.returncode == 0 and not out.strip(), out)


def run_iverilog(module: str, params: dict[str, object]) -> LintResult:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["iverilog", "-g2012", "-Wall", "-s", module, "-o", str(Path(tmp) / "a.out")]
        cmd += [f"-P{module}.{k}={hdl_literal(v)}" for k, v in params.items()]
        cmd += [str(s) for s in sources(module)]
        p = subprocess.run(cmd, capture_output=True, text=True)
    out = (p.stdout + p.stderr).strip()
    return LintResult(module, params, "iverilog", p.returncode == 0 and not out, out)


def lint(modules: list[str]) -> list[LintResult]:
    results = []
    for m in modules:
        for params in [{}, *EXTRA_PARAMS.get(m, [])]:
            results.append(run_verilator(m, params))
            results.append(run_iverilog(m, params))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help="modules to lint (default: all)")
    args = ap.parse_args(argv)
    modules = args.modules or list(MODULES)
    results = lint(modules)
    print(f"{'module':<18} {'param sets':>10} {'verilator':>10} {'iverilog':>10}")
    for m in modules:
        mine = [r for r in results if r.module == m]
        v = [r for r in mine if r.tool == "verilator"]
        i = [r for r in mine if r.tool == "iverilog"]
        status = lambda rs: "ok" if all(r.ok for r in rs) else "FAIL"  # noqa: E731
        print(f"{m:<18} {len(v):>10} {status(v):>10} {status(i):>10}")
    bad = [r for r in results if not r.ok]
    for r in bad:
        print(f"\n--- {r.module} {r.params} ({r.tool}):\n{r.output}")
    print(f"\n{len(results) - len(bad)} passed, {len(bad)} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
