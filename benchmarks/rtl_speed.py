"""Stitched-RTL simulation speed: `hwcsp verify` of the main job, and simulated cycles/s by build.

On cspdensenet-ref-prn @320 (the main job: 622 nodes, 324 FIFOs), in one run:

1. **verify** -- `sim.verify.verify` as `make verify` runs it (hls variant and edge vectors made
   first when missing, not timed), the Verilator build included: its cached executable is removed
   first. Wall-clock seconds, verdict, frames, and the load average while it ran (sampled every 5 s).
2. **cycles/s** -- the same netlist and vectors, each build run from reset for `--cycles` simulated
   cycles (the run's own clock; build time reported apart):

   * ``baseline``: the verify netlist as hwcsp built it before the speed work, at commit BASELINE
     (a monitor module per stream and per FIFO, C++ -O0), from a `git worktree` of that commit;
   * ``O0``: today's testbench (one `tb_net_mon`), C++ -O0;
   * ``O1``: the same at -O1, what `hwcsp verify` builds for long runs (`sim.network.optimisation`).

   Ratios against ``baseline`` (the issue's "-O0 build") and against ``O0``.

    python -m benchmarks.rtl_speed [--cycles 300000] [--build-root build/bench] [--no-verify]

The early cycles of a run exercise fewer layers than the steady state; the verify run's own
cycles/s (all frames) is reported beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = "6f8e8c1"  # the last commit before the stitched network's speed work (issue 12, item 4)
TARGET_RATIO, TARGET_VERIFY_S = 13.0, 600.0

# Runs in a child process with PYTHONPATH at a checkout (today's or BASELINE's): plans the network of
# HW_DIR on VECTORS, builds it (at OPT where the checkout knows optimisation levels) and runs it from
# reset for CYCLES cycles; prints one JSON line. Uses only what both revisions have.
CHILD = r"""
import inspect, json, sys, time
from pathlib import Path
from sim.network import build, prepare_run, run
from sim.netlist import network_hdl_sources, network_sv, testbench_sv
from sim.plan import plan_network
hw, vec, work = (Path(a) for a in sys.argv[1:4])
cycles, opt = int(sys.argv[4]), sys.argv[5]
net = plan_network(hw, vec)
kw = {"opt": opt} if "opt" in inspect.signature(build).parameters else {}
hdl = network_hdl_sources(net)
exe, cached, build_s = build(network_sv(net), testbench_sv(net), hdl, lambda m: None, **kw)
work.mkdir(parents=True)
prepare_run(net, work, 3, False, 1)
t = time.perf_counter()
err = run(exe, work, cycles)
secs = time.perf_counter() - t
log = (work / "sim.log").read_text()
print(json.dumps({"exe": str(exe), "cached": cached, "build_s": round(build_s, 1), "run_s": round(secs, 2),
                  "error": err, "reached_cap": "stopped at the cycle cap" in log}))
"""


class LoadSampler:
    """The 1-minute load average every `every` seconds while it runs (max and mean reported)."""

    def __init__(self, every: float = 5.0) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, args=(every,), daemon=True)

    def _loop(self, every: float) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(every)

    def __enter__(self) -> LoadSampler:
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()

    def facts(self) -> dict:
        s = self.samples or [os.getloadavg()[0]]
        return {"max": round(max(s), 2), "mean": round(sum(s) / len(s), 2), "samples": len(s)}


def _variant(model: str, size: int, build_root: Path) -> Path:
    """The main job's hls variant (made when missing, as `make hls` makes it)."""
    from hls.flow import HlsRequest, run
    from hwcsp.buildcfg import BuildConfig
    from quant.export import export

    d = BuildConfig(model, size, 1.0).path(build_root)
    if not (d / "model.qonnx.onnx").exists():
        export(BuildConfig(model, size, 1.0), d, log=print)
    hw = d / HlsRequest(d).variant
    if not (hw / "model.hw.onnx").exists():
        run(HlsRequest(d, baseline=False, codegen=False), log=print)
    return hw


def _child(checkout: Path, hw: Path, vec: Path, work: Path, cycles: int, opt: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    p = subprocess.run(
        [sys.executable, "-c", CHILD, str(hw), str(vec), str(work), str(cycles), opt],
        cwd=checkout, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if p.returncode:
        raise RuntimeError(f"{checkout} {opt}: the measurement failed\n{p.stderr[-3000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    if res["error"] or not res["reached_cap"]:
        raise RuntimeError(f"{checkout} {opt}: the run did not reach {cycles} cycles: {res}")
    return res | {"cycles_per_s": round(cycles / res["run_s"])}


def _verify(hw: Path) -> dict:
    """`make verify` of `hw`, its network build not cached (the executable removed first)."""
    from sim.netlist import network_hdl_sources, network_sv, testbench_sv
    from sim.network import optimisation
    from sim.plan import plan_network
    from sim.toolchain import BUILD_ROOT, build_key
    from sim.verify import edge_vectors, first_frames, verify

    net = plan_network(hw, edge_vectors(hw, progress=print))
    texts = [network_sv(net), testbench_sv(net)]
    key = build_key("network_verilator", texts, network_hdl_sources(net), optimisation(net, first_frames(hw)))
    (BUILD_ROOT / key / "Vtb_network").unlink(missing_ok=True)
    t = time.monotonic()
    with LoadSampler() as load:
        rep = verify(hw, progress=print)
    secs = time.monotonic() - t
    tm = rep["timings"]
    return {
        "wall_s": round(secs, 1),
        "verdict": rep["verdict"],
        "frames": rep["frames"],
        "ratio": rep["measured"]["ratio"],
        "bit_exact": rep["bit_exact"],
        "runs": tm["runs"],
        "simulated_cycles_per_second": tm["simulated_cycles_per_second"],
        "load": load.facts(),
    }


def run_bench(model: str, size: int, cycles: int, build_root: Path, with_verify: bool) -> dict:
    from sim.verify import edge_vectors

    hw = _variant(model, size, build_root).resolve()
    vec = edge_vectors(hw, progress=print).resolve()
    res: dict = {"model": f"{hw.parent.name}/{hw.name}", "cycles": cycles, "baseline_commit": BASELINE}
    if with_verify:
        print("rtl_speed: make verify (build included) ...", flush=True)
        res["verify"] = _verify(hw)
    speeds = {}
    with tempfile.TemporaryDirectory(prefix="rtl-speed-") as tmp:
        base = Path(tmp) / "baseline"
        add = ["git", "worktree", "add", "--detach", "-q", str(base), BASELINE]
        subprocess.run(add, cwd=REPO, check=True)
        try:
            (base / ".venv").symlink_to(REPO / ".venv")  # its toolchain finds Verilator there
            with LoadSampler() as load:
                builds = (("baseline", base, "-O0"), ("O0", REPO, "-O0"), ("O1", REPO, "-O1"))
                for name, checkout, opt in builds:
                    print(f"rtl_speed: {name}: build and {cycles} cycles ...", flush=True)
                    speeds[name] = _child(checkout, hw, vec, Path(tmp) / f"run-{name}", cycles, opt)
                    print(f"rtl_speed: {name}: {speeds[name]['cycles_per_s']} cycles/s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO, check=False)
    res["speeds"] = speeds
    res["load"] = load.facts()
    b, o0 = speeds["baseline"]["cycles_per_s"], speeds["O0"]["cycles_per_s"]
    res["ratio_vs_baseline"] = {k: round(v["cycles_per_s"] / b, 2) for k, v in speeds.items()}
    res["ratio_vs_O0"] = {k: round(v["cycles_per_s"] / o0, 2) for k, v in speeds.items()}
    res["cpus"] = os.cpu_count()
    return res


def markdown(res: dict) -> str:
    lines = [
        f"`{res['model']}`, {res['cycles']} simulated cycles from reset per build, one run "
        f"(load average during the builds and runs: max {res['load']['max']}, mean {res['load']['mean']}; "
        f"{res['cpus']} CPUs)",
        "",
        "| build | C++ build s | run s | cycles/s | / baseline | / O0 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    names = {
        "baseline": f"baseline: verify netlist at {res['baseline_commit']}, monitor per stream, -O0",
        "O0": "today's testbench (tb_net_mon), -O0",
        "O1": "today's testbench, -O1 (`hwcsp verify`)",
    }
    for k, v in res["speeds"].items():
        build = "cached" if v["cached"] else v["build_s"]
        lines.append(
            f"| {names[k]} | {build} | {v['run_s']} | {v['cycles_per_s']} | "
            f"{res['ratio_vs_baseline'][k]}× | {res['ratio_vs_O0'][k]}× |"
        )
    if v := res.get("verify"):
        lines += [
            "",
            f"`make verify` (build included): **{v['wall_s']} s** (target ≤ {TARGET_VERIFY_S:.0f}), verdict "
            f"{v['verdict']}, {v['frames']} frames, {v['ratio']} × the estimate, bit-exact {v['bit_exact']}; "
            f"{v['simulated_cycles_per_second']} simulated cycles/s over its runs; load average max "
            f"{v['load']['max']}, mean {v['load']['mean']}",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.rtl_speed", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="cspdensenet-ref-prn")
    p.add_argument("--size", type=int, default=320)
    p.add_argument("--cycles", type=int, default=300_000)
    p.add_argument("--build-root", type=Path, default=Path("build/bench"))
    p.add_argument("--no-verify", action="store_true", help="only the cycles/s of the builds")
    p.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    a = p.parse_args(argv)
    res = run_bench(a.model, a.size, a.cycles, a.build_root, not a.no_verify)
    print(markdown(res))
    out = a.json or a.build_root / "rtl_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    ok = res["ratio_vs_baseline"]["O1"] >= TARGET_RATIO
    if "verify" in res:
        ok = ok and res["verify"]["wall_s"] <= TARGET_VERIFY_S and res["verify"]["verdict"] == "pass"
    print(f"rtl_speed: targets {'met' if ok else 'NOT met'} (O1 ≥ {TARGET_RATIO}× baseline, verify ≤ "
          f"{TARGET_VERIFY_S:.0f} s and pass)")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
