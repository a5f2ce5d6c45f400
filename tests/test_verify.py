"""`hwcsp verify` (sim.verify): the stitched RTL network in its steady state, on the test configuration.

The command runs end to end through the CLI on a copy of the shared test build (the fixture directory
is never written): edge-only golden vectors, a run of 2L + 4 frames for the latency L that the hls
schedule estimates (it measures L; another run would follow if that were longer), rtl_network.json /
.md, and the hls report.md with the measured interval beside the estimate. The tests check the report
against the simulation's own numbers and apply the verdict rule to them; with the default,
throughput-sized FIFO depths of hls/schedule.py (no sizing simulation) the verdict must be pass: the
hardware runs at the rate the report states (the liveness-only depths gave 3.66x). Also: edge vectors
hold only the edge tensors, byte-identical to full vectors; vectors of another graph exit 2 with one
line; two runs give byte-identical reports.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from golden.vectors import write_vectors
from sim.verify import EDGE_VECTORS, REPORT_JSON, REPORT_MD, TIMINGS_JSON, TOLERANCE, VECTOR_FRAMES

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["cspdensenetb-ref-prn", "--size", "64", "--width", "0.25", "--seeded"]


def _verify(build_root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "hwcsp.cli", "verify", *ARGS, "--build-root", str(build_root), *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def verified(hw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The shared build copied to a private root, `hwcsp verify` run on it twice."""
    root = tmp_path_factory.mktemp("verify") / "build"
    build = root / hw_dir.parent.name
    shutil.copytree(hw_dir.parent, build, ignore=shutil.ignore_patterns("vectors*", "sim"))
    v = build / hw_dir.name
    first = _verify(root)
    report = v / "report"
    runs = [first, {"json": (report / REPORT_JSON).read_bytes(), "md": (report / REPORT_MD).read_bytes()}]
    second = _verify(root)
    return {"root": root, "variant": v, "first": first, "bytes": runs[1], "second": second}


def test_report_is_the_simulation_judged(verified: dict) -> None:
    p, v = verified["first"], verified["variant"]
    rep = json.loads((v / "report" / REPORT_JSON).read_text())
    assert rep["verdict"] == "pass", (rep["verdict"], rep["reason"], p.stdout[-2000:], p.stderr)
    assert p.returncode == 0, p.stderr
    assert "network: " in p.stdout and " frames, cycle " in p.stdout  # the testbench's progress lines
    # bit-exact at every output, every frame there
    assert rep["bit_exact"]
    for o in rep["outputs"]:
        assert o["mismatch_beats"] == o["mismatch_ints"] == o["missing_beats"] == o["extra_beats"] == 0
        assert len(o["frame_ends"]) == rep["frames"]
    # the steady-state rule: 2L + 4 frames, L the first frame's latency in bottleneck intervals
    exp = rep["bottleneck"]["exp_cycles"]
    assert rep["estimate"]["interval"] == exp
    lat = math.ceil(rep["latency_first_frame"] / exp)
    assert rep["latency_intervals"] == lat and rep["frames_needed"] == 2 * lat + 4
    assert rep["frames"] >= rep["frames_needed"] and not rep["frames_capped"]
    # every interval and ratio from the frame ends; the same as the network report's
    net = json.loads((v / "sim" / "verify" / "full" / "network_report.json").read_text())
    for o, n in zip(rep["outputs"], net["outputs"], strict=True):
        assert o["frame_ends"] == n["frame_ends"]
        assert o["intervals"] == [b - a for a, b in zip(o["frame_ends"], o["frame_ends"][1:], strict=False)]
        assert o["ratios"] == [round(i / exp, 4) for i in o["intervals"]]
    # the judged interval: the largest of the last third, every output; the verdict rule on it
    tail = max(2, math.ceil(rep["frames"] / 3))
    worst = max(max(o["intervals"][-tail:]) for o in rep["outputs"])
    assert rep["tail_intervals"] == tail and rep["measured"]["interval"] == worst
    assert rep["measured"]["ratio"] == round(worst / exp, 4)
    assert rep["verdict"] == ("pass" if worst <= TOLERANCE * exp else "slow")
    clk = json.loads((v / "report" / "estimates.json").read_text())["summary"]["clk_ns"]
    assert rep["clk_ns"] == clk and rep["measured"]["fps"] == round(1e9 / (clk * worst), 3)
    assert rep["latency_first_frame"] == net["latency_first_frame"]
    for f in rep["fifos"]:
        assert 0 < f["peak_occupancy"] <= f["capacity"], f
    md = (v / "report" / REPORT_MD).read_text()
    assert f"**Verdict: {rep['verdict']}**" in md and str(worst) in md
    timings = json.loads((v / "report" / TIMINGS_JSON).read_text())
    assert timings["simulated_cycles_per_second"] > 0 and timings["runs"][-1]["frames"] == rep["frames"]


def test_one_run_when_the_schedule_latency_suffices(verified: dict) -> None:
    """The first run has 2L + 4 frames for the L of the hls schedule; where the measured L is no
    larger (the test configuration: 7 measured, 8 estimated), it is the only run."""
    v = verified["variant"]
    rep = json.loads((v / "report" / REPORT_JSON).read_text())
    est = json.loads((v / "report" / "estimates.json").read_text())["folding"]["schedule"]
    assert est["latency_intervals"] >= rep["latency_intervals"] >= 1
    runs = json.loads((v / "report" / TIMINGS_JSON).read_text())["runs"]
    assert [r["frames"] for r in runs] == [2 * est["latency_intervals"] + 4] == [rep["frames"]]


def test_hls_report_shows_the_measured_interval_of_its_graph(verified: dict) -> None:
    """report.md of the variant: the measured interval beside the estimate after a verify of the same
    model.hw.onnx; after a verify of another graph, none (never an estimate passed off as measured)."""
    from hls.report import refresh_report

    v = verified["variant"]
    rep = json.loads((v / "report" / REPORT_JSON).read_text())
    md = (v / "report" / "report.md").read_text()
    m = rep["measured"]
    assert f"**{m['interval']} cycles/frame = {m['ratio']} × the estimate" in md
    assert f"verdict **{rep['verdict']}**" in md and "(estimate: the hwcsp RTL cycle model" in md
    stale = json.loads((v / "report" / REPORT_JSON).read_text()) | {"graph_sha256": "0" * 64}
    (v / "report" / REPORT_JSON).write_text(json.dumps(stale))
    try:
        assert refresh_report(v) is False
        md = (v / "report" / "report.md").read_text()
        assert "measured in the stitched RTL: not yet" in md and "× the estimate" not in md
    finally:
        (v / "report" / REPORT_JSON).write_bytes(verified["bytes"]["json"])
        assert refresh_report(v) is True


def test_edge_vectors_hold_only_the_edges_byte_identical(verified: dict, tmp_path: Path) -> None:
    v = verified["variant"]
    edges = v / EDGE_VECTORS
    m = json.loads((edges / "manifest.json").read_text())
    assert m["edges_only"] is True and m["frames"] == VECTOR_FRAMES
    edge_tensors = {t["tensor"] for t in [*m["graph_inputs"], *m["graph_outputs"]]}
    assert {t for t, x in m["tensors"].items() if x["npy"]} == edge_tensors
    full = write_vectors(v, tmp_path / "full", n=VECTOR_FRAMES, seed=0)
    files = sorted(p.relative_to(edges) for p in edges.rglob("*") if p.is_file())
    streams = [f for f in files if f.suffix == ".hex" and f.name.startswith(("in", "out"))]
    assert len(streams) == len(edge_tensors)  # one stream file per edge: its producer's or consumer's
    assert len([f for f in files if f.parts[0] == "tensors"]) == len(edge_tensors)
    for f in files:
        if f.name != "manifest.json":
            assert (edges / f).read_bytes() == (full / f).read_bytes(), f
    fm = json.loads((full / "manifest.json").read_text())
    assert fm["edges_only"] is False
    for t in edge_tensors:
        assert m["tensors"][t] == fm["tensors"][t]


def test_vectors_of_another_graph_exit_2_with_one_line(verified: dict, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(verified["variant"] / EDGE_VECTORS, other)
    m = json.loads((other / "manifest.json").read_text())
    m["graph_sha256"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(m))
    p = _verify(verified["root"], "--vectors", str(other))
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "another model.hw.onnx" in lines[0], p.stderr


def test_vectors_of_an_older_format_exit_2_with_one_line(verified: dict, tmp_path: Path) -> None:
    """Version 1 manifests listed FINN's cycle model per node; they are refused, not misread."""
    old = tmp_path / "old"
    shutil.copytree(verified["variant"] / EDGE_VECTORS, old)
    m = json.loads((old / "manifest.json").read_text())
    m["version"] = 1
    (old / "manifest.json").write_text(json.dumps(m))
    p = _verify(verified["root"], "--vectors", str(old))
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "version 1 of the vector format" in lines[0], p.stderr


def test_report_bytes_are_reproducible(verified: dict) -> None:
    report = verified["variant"] / "report"
    assert verified["second"].returncode == verified["first"].returncode, verified["second"].stderr
    assert (report / REPORT_JSON).read_bytes() == verified["bytes"]["json"]
    assert (report / REPORT_MD).read_bytes() == verified["bytes"]["md"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "config",
    [
        ["cspdensenet-ref-prn", "--size", "64"],  # full width: 9.85x with liveness-only FIFOs
        ["cspdensenet-ref-prn"],  # the main job at 320, default budget
        ["darknet-ref-prn"],  # YOLOv3-tiny-PRN at 416
        # issue 13: stem block, two-way dense layers, average pools (1.44x before the schedule
        # modelled the parallel window's bursts); grouped convolutions as split/concat trees
        ["csppeleenet", "--size", "96", "--width", "0.25"],
        ["cspresnext50", "--size", "64", "--width", "0.125"],
        # issue 14: Maxout, SAM's gate and multiply; CEM's global context (a frame buffer)
        ["csppeleenet-efm-sam", "--size", "128", "--width", "0.5"],
        ["csppeleenet-cem-sam", "--size", "128", "--width", "0.5"],
    ],
    ids=[
        "cspdensenet-ref-prn-s64",
        "main-job-320",
        "darknet-ref-prn-416",
        "csppeleenet-s96",
        "cspresnext50-s64",
        "csppeleenet-efm-sam-s128",
        "csppeleenet-cem-sam-s128",
    ],
)
def test_default_fifos_reach_the_bottleneck(config: list[str], tmp_path: Path) -> None:
    """The default, analytically sized FIFOs in the stitched RTL: bit-exact and, in the steady state
    (2L + 4 frames, largest interval of the last third), within 1.05x the bottleneck; random stalls at
    the edges stay bit-exact without deadlock."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "hwcsp.cli", "verify", *config, "--seeded", "--stall"]
    p = subprocess.run(
        [*cmd, "--build-root", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    (rep_file,) = tmp_path.glob(f"*/hls-m2048/report/{REPORT_JSON}")
    rep = json.loads(rep_file.read_text())
    assert p.returncode == 0 and rep["verdict"] == "pass", (rep["verdict"], rep["reason"], p.stderr[-2000:])
    assert rep["measured"]["ratio"] <= TOLERANCE and rep["bit_exact"]
