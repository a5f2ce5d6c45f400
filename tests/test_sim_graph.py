"""Whole-graph RTL simulation (sim.graph): every node of a real model.hw.onnx in its sim/rtl module.

The default test runs the test configuration (cspdensenetb-ref-prn, width 0.25, size 64) on two
golden frames: every node must be bit-exact under full rate and random stalls, every frame interval
must equal golden's cycle model and every latency must be within the module's declared constant.
A second test corrupts one expected beat and one node's cycle model and requires exactly those two
nodes to fail with the right verdicts. The slow test does the same for cspdensenet-ref-prn at full
width (size 64).

The simulator build is cached under build/sim/ (keyed by the generated top and the RTL sources), so
the second test reuses the first one's build.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sim.plan
from golden.vectors import write_vectors
from sim.graph import simulate

VECTOR_FRAMES = 2


def _quiet(*_: Any) -> None:
    pass


@pytest.fixture(scope="module")
def vectors(hw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_vectors(hw_dir, tmp_path_factory.mktemp("sim") / "vectors", n=VECTOR_FRAMES, seed=0)


def _failures(report: dict) -> str:
    bad = [e for e in report["nodes"] if e["verdict"] != "pass"]
    return "\n".join(f"{e['name']} ({e['op_type']}): {e['verdict']}: {e.get('reason', '')}" for e in bad)


def check_all_pass(report: dict, out_dir: Path) -> None:
    """Every node bit-exact, every interval == model, every latency within its bound; reports written."""
    assert json.loads((out_dir / "report.json").read_text())["summary"] == report["summary"]
    assert "nodes pass" in (out_dir / "report.md").read_text()
    assert report["summary"]["all_pass"], _failures(report)
    for e in report["nodes"]:
        assert e["mismatch_beats"] == e["mismatch_ints"] == 0, e
        assert all(iv == [e["exp_cycles"]] * (report["frames"] - 1) for iv in e["intervals"].values()), e
        assert 0 <= e["latency"] <= e["latency_declared"], e


def test_sim_graph(hw_dir: Path, vectors: Path, tmp_path: Path, flow_op_types: frozenset[str]) -> None:
    out = tmp_path / "sim"
    report = simulate(hw_dir, vectors, out_dir=out, progress=_quiet)
    check_all_pass(report, out)
    assert report["vector_frames"] == VECTOR_FRAMES and report["frames"] >= 3
    ops = {e["op_type"] for e in report["nodes"]}
    # the op types the issue lists for this graph, all of them simulated
    assert ops >= flow_op_types
    swg = [e for e in report["nodes"] if e["op_type"] == "ConvolutionInputGenerator_rtl"]
    assert any(e["params"]["PARALLEL"] for e in swg) and any(e["params"]["DEPTHWISE"] for e in swg)
    mvau = [e for e in report["nodes"] if e["op_type"] == "MVAU_hls"]
    assert any(e["params"]["NO_ACT"] for e in mvau)

    # reports are byte-reproducible; wall-clock facts (and the build-cache hit) only in timings.json
    again = tmp_path / "again"
    simulate(hw_dir, vectors, out_dir=again, progress=_quiet)
    for name in ("report.json", "report.md"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    assert json.loads((again / "timings.json").read_text())["build"]["cached"]


def test_sim_graph_catches_errors(
    hw_dir: Path, vectors: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong expected beat gives verdict "mismatch" (pinpointed), a cycle model one cycle off
    gives "interval"; every other node still passes."""
    bad = tmp_path / "vectors"
    shutil.copytree(vectors, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    nodes = {n["name"]: n for n in manifest["nodes"]}
    corrupt = next(n for n in manifest["nodes"] if n["op_type"] == "MVAU_hls")
    slow = next(n for n in manifest["nodes"] if n["op_type"] == "StreamingFIFO_rtl")

    # One expected beat of frame 0 with element 0's LSB flipped.
    beat = 7
    hex_path = bad / corrupt["outputs"][0]["hex"]
    lines = hex_path.read_text().splitlines()
    lines[beat] = format(int(lines[beat], 16) ^ 1, f"0{len(lines[beat])}x")
    hex_path.write_text("\n".join(lines) + "\n")

    # The FIFO's cycle model (golden.cycles, and the manifest's copy of it) says one cycle more.
    real = sim.plan.rtl_cycles
    monkeypatch.setattr(sim.plan, "rtl_cycles", lambda v: real(v) + (v.name == slow["name"]))
    nodes[slow["name"]]["exp_cycles_per_frame"] += 1
    (bad / "manifest.json").write_text(json.dumps(manifest))

    out = tmp_path / "sim"
    report = simulate(hw_dir, bad, out_dir=out, progress=_quiet)
    by_name = {e["name"]: e for e in report["nodes"]}
    c, s = by_name.pop(corrupt["name"]), by_name.pop(slow["name"])

    # Frame 0 is sent twice per pass (frames 0, 1, 0) in both passes: four mismatching beats.
    assert c["verdict"] == "mismatch" and not c["bit_exact"], c
    assert c["mismatch_beats"] == 4 and c["mismatch_ints"] == 4, c
    assert c["first_mismatch"]["beat"] == beat and c["first_mismatch"]["pass"] == 1, c
    assert c["interval_ok"] and c["latency_ok"], c  # only the data is wrong

    assert s["verdict"] == "interval" and s["bit_exact"] and not s["interval_ok"], s
    assert all(iv == [s["exp_cycles"] - 1] * (report["frames"] - 1) for iv in s["intervals"].values()), s

    assert all(e["verdict"] == "pass" for e in by_name.values()), _failures(report)
    assert report["summary"]["verdicts"] == {"pass": len(by_name), "mismatch": 1, "interval": 1}
    md = (out / "report.md").read_text()
    assert f"| {corrupt['name']} | mvau | mismatch |" in md and f"| {slow['name']} | fifo | interval |" in md
    assert (out / "run" / f"n{c['index']:03d}" / "out0_p1.txt").exists()  # failing nodes keep their files


@pytest.mark.slow
def test_sim_graph_cspdensenet_full_width(tmp_path: Path) -> None:
    """cspdensenet-ref-prn, width 1.0, size 64: every node of its graph on one golden frame."""
    from hls.flow import HlsRequest, run
    from hwcsp.buildcfg import BuildConfig
    from quant.export import export

    build = tmp_path / "build"
    export(BuildConfig("cspdensenet-ref-prn", 64, 1.0), build, log=_quiet)
    req = HlsRequest(build, baseline=False, codegen=False)
    run(req, log=_quiet)
    hw = build / req.variant
    vec = write_vectors(hw, tmp_path / "vectors", n=1, seed=0)
    out = tmp_path / "sim"
    report = simulate(hw, vec, out_dir=out, progress=_quiet)
    check_all_pass(report, out)


def test_unsupported_nodes_are_named() -> None:
    """Layers or parameter sets the RTL library lacks get a reason, and no instance in the top."""
    from golden.node import NodeView
    from sim.layers import unsupported_reason
    from sim.netlist import top_sv
    from sim.plan import NodePlan
    from sim.tb import nodes

    attrs = {"MW": 4, "MH": 2, "SIMD": 1, "PE": 1, "binaryXnorMode": 1, "noActivation": 1}
    xnor = NodeView.make("MVAU_hls", attrs, {1: np.ones((4, 2))}, backend="hls")
    assert "binaryXnorMode" in unsupported_reason(xnor)
    streamed = NodeView.make("MVAU_hls", {**attrs, "mem_mode": "external"}, backend="hls")
    assert "mem_mode external" in unsupported_reason(streamed)
    one_d = nodes.swg((1, 8), (1, 3), (1, 1), 4, 4, "UINT4")
    assert "1-D" in unsupported_reason(one_d)
    gap = NodeView.make("LabelSelect_hls", {"Labels": 4, "PE": 1, "K": 1}, backend="hls")
    assert "no RTL module" in unsupported_reason(gap)
    assert unsupported_reason(nodes.swg((6, 6), (3, 3), (1, 1), 3, 3, "UINT8", parallel=1)) == ""
    top = top_sv([NodePlan(index=0, view=gap, unsupported=unsupported_reason(gap))])
    assert "n000" not in top
