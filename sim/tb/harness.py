"""pytest side of the RTL tests: golden stimulus, HDL build (cached), cocotb run, result checks.

A test describes a layer by its FINN node (`golden.node.NodeView`); everything else follows:

* stimulus: random tensors within the input datatypes, the expected outputs from
  `golden.ops.run_node`, both put into wire order by `golden.streams.to_beats` and packed with
  `golden.packing.pack`; weights and thresholds written with `golden.memlayout` + `write_hex`;
* the HDL parameters come from the module's record (sim/layers.py);
* the cycle model is `golden.cycles.rtl_cycles`;
* one simulator build per HDL parameter set (cached under build/sim/), one simulator run per
  build in which the cocotb tests of sim/tb/stream_tests.py run every stall pattern, the timing
  measurement and the reset test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from golden.cycles import rtl_cycles
from golden.node import NodeView
from golden.ops import run_node
from golden.packing import pack
from golden.streams import (
    folded_in_shape,
    in_dtype,
    in_elems_per_beat,
    out_dtype,
    out_elems_per_beat,
    to_beats,
)
from sim.layers import LAYERS, sources
from sim.tb.config import ENV_VAR, BenchConfig, FrameSet
from sim.toolchain import (
    BUILD_ROOT,
    REPO,
    VERILATOR_BUILD_ARGS,
    VERILATOR_MAKEFLAGS,
    VERILATOR_RUN_ARGS,
    cocotb_runner,
    hdl_literal,
    keep_runtime,
    use_tool_path,
)

Params = dict[str, Any]
# The cocotb tests every layer runs (one module for all layers; the bench config says which).
STREAM_TESTS = "sim.tb.stream_tests"


# ---------------------------------------------------------------------------------------------
# stimulus from golden


def random_tensor(rng: np.random.Generator, lo: int, hi: int, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform integers in [lo, hi], always including both extremes when there is room."""
    x = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
    flat = x.reshape(-1)
    if flat.size >= 2:
        flat[rng.integers(0, flat.size)] = lo
        flat[rng.integers(0, flat.size)] = hi
    return x


def streamed_inputs(node: NodeView) -> list[int]:
    """Indices of the node inputs that are streams (not initializers)."""
    return [i for i in range(len(node.inputs)) if i not in node.inits]


def make_frame(node: NodeView, rng: np.random.Generator, name: str) -> FrameSet:
    """One random frame through golden: input and expected output beats per port."""
    tensors: list[np.ndarray] = []
    inputs: dict[str, list[int]] = {}
    for port, ind in enumerate(streamed_inputs(node)):
        dt = in_dtype(node, ind)
        x = random_tensor(rng, dt.min, dt.max, folded_in_shape(node, ind))
        tensors.append(x)
        wire = to_beats(node, x, ind, output=False)
        inputs[f"in{port}_V"] = pack(wire, dt.bits, in_elems_per_beat(node, ind), dt.signed)
    outputs: dict[str, list[int]] = {}
    for ind, y in enumerate(run_node(node, tensors)):
        dt = out_dtype(node, ind)
        wire = to_beats(node, y, ind, output=True)
        outputs[f"out{ind}_V"] = pack(wire, dt.bits, out_elems_per_beat(node, ind), dt.signed)
    return FrameSet(name=name, inputs=inputs, outputs=outputs, exp_cycles=int(rtl_cycles(node)))


# ---------------------------------------------------------------------------------------------
# build and run


@dataclass
class RtlCase:
    """One HDL parameter set of one module, with the frame sets run on it."""

    module: str
    params: Params
    nodes: list[NodeView]  # one per frame set; all share `params`
    latency_max: int
    first_out: Callable[[NodeView], int] = lambda node: 0
    sim: str = "verilator"
    seed: int = 1
    patterns: list[str] = field(default_factory=list)  # empty: every stall pattern
    files: dict[str, Callable[[Path], Any]] = field(default_factory=dict)  # param -> writer(path)

    def key(self, images: dict[str, bytes]) -> str:
        """Build directory name: module, simulator, hash of parameters, memory images, sources.

        Verilator compiles parameters (memory file names included) into the model, so builds are
        content-addressed and can be reused across runs."""
        h = hashlib.sha256(json.dumps(self.params, sort_keys=True, default=str).encode())
        for name in sorted(images):
            h.update(name.encode() + images[name])
        for src in sources(self.module):
            h.update(src.read_bytes())
        return f"{self.module}_{self.sim}_{h.hexdigest()[:12]}"


def _build(case: RtlCase, build_dir: Path, params: Params) -> Any:
    use_tool_path()
    runner = cocotb_runner(case.sim)
    stamp = build_dir / "build.stamp"
    build_args = VERILATOR_BUILD_ARGS if case.sim == "verilator" else []
    if not stamp.exists():
        if build_dir.exists():
            shutil.rmtree(build_dir)
        saved_makeflags = os.environ.get("MAKEFLAGS")
        if case.sim == "verilator":
            os.environ["MAKEFLAGS"] = VERILATOR_MAKEFLAGS
        try:
            runner.build(
                sources=[str(s) for s in sources(case.module)],
                hdl_toplevel=case.module,
                parameters=params,
                build_dir=str(build_dir),
                build_args=build_args,
                timescale=("1ns", "1ps"),
                log_file=str(build_dir.parent / f"{build_dir.name}.build.log"),
            )
        finally:
            if saved_makeflags is None:
                os.environ.pop("MAKEFLAGS", None)
            else:
                os.environ["MAKEFLAGS"] = saved_makeflags
        if case.sim == "verilator":
            keep_runtime("vpi", build_dir)
        stamp.write_text(json.dumps(params, default=str))
    return runner


def _failure_summary(log: Path) -> list[str]:
    """The failed cocotb tests and their exception lines, from the simulator log."""
    if not log.exists():
        return []
    out: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        text = line.strip()
        if text.endswith(" failed") and "cocotb.regression" in text:
            out.append(text.split("cocotb.regression", 1)[1].strip())
        elif ("Error:" in text or "Error " in text) and not text.startswith("**"):
            out.append("    " + text)
    return out[-60:]


def run_case(case: RtlCase, work: Path) -> dict[str, Any]:
    """Build (or reuse) the simulator for `case`, run the cocotb tests, return the measurements.

    Raises AssertionError naming the failing cocotb tests.
    """
    from cocotb_tools.check_results import get_results

    work.mkdir(parents=True, exist_ok=True)
    images: dict[str, bytes] = {}
    for pname, writer in case.files.items():
        writer(work / f"{pname.lower()}.hex")
        images[pname] = (work / f"{pname.lower()}.hex").read_bytes()
    build_dir = BUILD_ROOT / case.key(images)
    # Memory images live in the build directory (their path is an HDL parameter).
    params = dict(case.params)
    for pname in images:
        params[pname] = str(build_dir / f"{pname.lower()}.hex")
    hdl_params = {k: hdl_literal(v) for k, v in params.items()}
    runner = _build(case, build_dir, hdl_params)
    for pname, data in images.items():
        path = build_dir / f"{pname.lower()}.hex"
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)

    rng = np.random.default_rng(case.seed)
    frames = [make_frame(node, rng, name) for node, name in zip(case.nodes, "ABCDEFGH", strict=False)]
    for fs, node in zip(frames, case.nodes, strict=True):
        fs.first_out = case.first_out(node)
    cfg = BenchConfig(
        module=case.module,
        inputs=list(frames[0].inputs),
        outputs=list(frames[0].outputs),
        frames=frames,
        latency_max=case.latency_max,
        results=str(work / "measurements.json"),
        patterns=case.patterns,
        seed=case.seed,
    )
    cfg_path = work / "bench.json"
    cfg.save(cfg_path)
    results_xml = work / "results.xml"
    try:
        runner.test(
            test_module=STREAM_TESTS,
            hdl_toplevel=case.module,
            hdl_toplevel_lang="verilog",
            build_dir=str(build_dir),
            test_dir=str(work),
            extra_env={ENV_VAR: str(cfg_path), "PYTHONPATH": str(REPO)},
            test_args=list(VERILATOR_RUN_ARGS) if case.sim == "verilator" else [],
            log_file=str(work / "sim.log"),
            results_xml=str(results_xml),
        )
    except SystemExit:  # cocotb's runner exits when a test failed; the results file says which
        pass
    if not results_xml.exists():
        raise AssertionError(f"{case.module} ({case.sim}): simulation did not run; see {work}/sim.log")
    n_tests, n_failed = get_results(results_xml)
    if n_failed:
        raise AssertionError(
            f"{case.module} ({case.sim}): {n_failed} of {n_tests} cocotb tests failed; see {work}/sim.log\n"
            + "\n".join(_failure_summary(work / "sim.log"))
        )
    return json.loads(Path(cfg.results).read_text())


def check_module(
    module: str,
    nodes: list[NodeView],
    work: Path,
    sim: str = "verilator",
    seed: int = 1,
    patterns: list[str] | None = None,
) -> dict[str, Any]:
    """Run every stream test of `module` on frame sets built from `nodes` (same HDL parameters,
    e.g. two numInputVectors); the measured latency must be the same for every frame set.

    Returns the measurements per frame set ({"A": {"intervals", "latency", ...}, ...}).
    """
    b = LAYERS[module]
    params = b.params(nodes[0])
    for node in nodes[1:]:
        assert b.params(node) == params, f"{module}: frame sets need the same HDL parameters"
    case = RtlCase(
        module=module,
        params=params,
        nodes=nodes,
        latency_max=b.latency(nodes[0]),
        first_out=b.first_out,
        sim=sim,
        seed=seed,
        patterns=patterns or [],
        files=b.files(nodes[0]),
    )
    meas = run_case(case, work)
    latencies = {name: m["latency"] for name, m in meas.items()}
    assert len(set(latencies.values())) == 1, f"{module}: latency differs between frame sizes: {latencies}"
    return meas


def check_two_builds(
    module: str,
    node_a: NodeView,
    node_b: NodeView,
    work: Path,
    sims: tuple[str, str] = ("verilator", "icarus"),
) -> dict[str, Any]:
    """For modules whose frame size is an HDL parameter (image height): run frame size A and B
    as two builds (by default B under Icarus, which builds in a second) and require the same
    latency for both. Returns {"A": ..., "B": ...}."""
    a = check_module(module, [node_a], work / "A", sim=sims[0])["A"]
    b = check_module(module, [node_b], work / "B", sim=sims[1])["A"]
    assert a["latency"] == b["latency"], (
        f"{module}: latency {a['latency']} at frame size A but {b['latency']} at frame size B"
    )
    return {"A": a, "B": b}


def check_memory(module: str, params: Params, work: Path, sim: str = "verilator", seed: int = 1) -> None:
    """Run sim/tb/<module>_tests.py (ram_1r1w, rom) on one build; `params` may hold INIT_FILE."""
    from cocotb_tools.check_results import get_results

    work.mkdir(parents=True, exist_ok=True)
    images = {}
    if "INIT_FILE" in params:
        images["INIT_FILE"] = Path(params["INIT_FILE"]).read_bytes()
    case = RtlCase(
        module=module,
        params={k: v for k, v in params.items() if k != "INIT_FILE"},
        nodes=[],
        latency_max=0,
        sim=sim,
        seed=seed,
    )
    build_dir = BUILD_ROOT / case.key(images)
    hdl = dict(case.params)
    if images:
        hdl["INIT_FILE"] = str(build_dir / "init_file.hex")
    runner = _build(case, build_dir, {k: hdl_literal(v) for k, v in hdl.items()})
    if images:
        (build_dir / "init_file.hex").write_bytes(images["INIT_FILE"])
    env = {"HWCSP_TB_MEM": json.dumps({**hdl, "seed": seed}), "PYTHONPATH": str(REPO)}
    results_xml = work / "results.xml"
    try:
        runner.test(
            test_module=f"sim.tb.{module}_tests",
            hdl_toplevel=module,
            hdl_toplevel_lang="verilog",
            build_dir=str(build_dir),
            test_dir=str(work),
            extra_env=env,
            test_args=list(VERILATOR_RUN_ARGS) if sim == "verilator" else [],
            log_file=str(work / "sim.log"),
            results_xml=str(results_xml),
        )
    except SystemExit:
        pass
    assert results_xml.exists(), f"{module} ({sim}): simulation did not run; see {work}/sim.log"
    n_tests, n_failed = get_results(results_xml)
    assert n_tests and not n_failed, f"{module} ({sim}): {n_failed} of {n_tests} tests failed\n" + "\n".join(
        _failure_summary(work / "sim.log")
    )
