"""FIFO sizing by simulation (sim/fifo_sizing.py) closed through the hls stage: the test graph with
sized FIFOs runs at its bottleneck interval in the stitched RTL, bit-exact, and the analytic
throughput depths that are the default (hls/schedule.py) need at most 1.5x its FIFO bits. The
sizing loop itself is slow (minutes), so it runs with the slow tests; the default depths are
proven in make test by tests/test_verify.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from golden.vectors import write_vectors
from hls.flow import FlowInputError, HlsRequest, run
from sim import fifo_sizing
from sim.fifo_sizing import DEPTHS_FILE, SizingError, size_fifos, steady_interval
from sim.network import simulate_network

FRAMES = 4
ROOT = Path(__file__).parents[1]


def quiet(*_a, **_k) -> None:
    pass


@pytest.fixture(scope="module")
def export_copy(hw_dir: Path, tmp_path_factory) -> Path:
    export = tmp_path_factory.mktemp("fifo-sizing") / "build" / hw_dir.parent.name
    export.mkdir(parents=True)
    for f in ("config.json", "export.json", "model.qonnx.onnx"):
        shutil.copyfile(hw_dir.parent / f, export / f)
    return export


@pytest.fixture(scope="module")
def vectors(hw_dir: Path, export_copy: Path) -> Path:
    return write_vectors(hw_dir, export_copy.parent.parent / "vectors", n=FRAMES, seed=0)


@pytest.fixture(scope="module")
def sized(hw_dir: Path, vectors: Path, export_copy: Path) -> tuple[Path, dict, Path]:
    """(vectors of the default graph, the sizing result, a copy of the export)."""
    out = vectors.parent / "sizing"
    result = size_fifos(hw_dir, vectors, out_dir=out, progress=quiet)  # run length from latency
    return vectors, result, export_copy


@pytest.mark.slow
def test_sizing_result_is_written_and_consistent(sized, hw_dir):
    vec, result, _ = sized
    depths_file = vec.parent / "sizing" / DEPTHS_FILE
    assert json.loads(depths_file.read_text()) == result
    assert result["interval_whatif"] == result["interval_proposal"] == result["bottleneck_cycles"]
    est = json.loads((hw_dir / "report" / "estimates.json").read_text())
    assert result["bottleneck_cycles"] == est["summary"]["bottleneck_cycles"]
    analytic = {(f["join"], f["input_index"]): f["depth"] for f in est["folding"]["fifos"]}
    inputs = {(x["node"], x["input"]): x for x in result["inputs"]}
    assert inputs and all(x["depth"] > 2 for x in inputs.values())
    for key, depth in analytic.items():  # never below the liveness bound
        assert key not in inputs or inputs[key]["depth"] >= depth
    assert result["fifo_bits"] == sum(x["depth"] * x["width"] for x in inputs.values())


@pytest.mark.slow
def test_graph_with_sized_fifos_runs_at_the_bottleneck(sized, hw_dir, tmp_path):
    vec, result, export = sized
    depths_file = vec.parent / "sizing" / DEPTHS_FILE
    out = run(HlsRequest(export, fifo_depths=depths_file, baseline=False, codegen=False), log=quiet)
    assert out.name.startswith("hls-m2048-fifo") and out.name != hw_dir.name
    est = json.loads((out / "report" / "estimates.json").read_text())
    assert est["verification"]["mismatches"] == 0
    assert est["summary"]["bottleneck_cycles"] == result["bottleneck_cycles"]
    assert "sized by simulation" in (out / "report" / "report.md").read_text()
    v2 = write_vectors(out, tmp_path / "vectors", n=FRAMES, seed=0)
    rep = simulate_network(out, v2, out_dir=tmp_path / "sim", frames=FRAMES, progress=quiet)
    assert rep["verdict"] == "pass" and rep["bit_exact"], rep.get("reason")
    assert all(o["mismatch_ints"] == 0 and o["received"] == o["beats"] for o in rep["outputs"])
    assert steady_interval(rep) == result["bottleneck_cycles"]
    # the same graph with liveness-only FIFOs is measurably slower: what sizing buys
    live = run(HlsRequest(export, liveness_fifos=True, baseline=False, codegen=False), log=quiet)
    assert live.name == "hls-m2048-liveness"
    v3 = write_vectors(live, tmp_path / "v3", n=FRAMES, seed=0)
    base = simulate_network(live, v3, out_dir=tmp_path / "base", frames=FRAMES, progress=quiet)
    assert base["verdict"] == "pass" and steady_interval(base) > 2 * result["bottleneck_cycles"]
    # the analytic throughput depths of the default variant cost at most 1.5x the sized FIFO bits
    default = json.loads((hw_dir / "report" / "estimates.json").read_text())["summary"]["fifo_bits"]
    assert default <= 1.5 * result["fifo_bits"], (default, result["fifo_bits"])


def test_depths_of_another_graph_are_refused(hw_dir, export_copy, tmp_path):
    from golden.node import graph_fingerprint

    export = export_copy
    graph = onnx.load(hw_dir / "model.hw.onnx").graph
    join = next(n for n in graph.node if n.op_type.startswith("StreamingConcat"))
    result = {
        "graph_fingerprint": graph_fingerprint(graph),
        "inputs": [{"node": join.name, "input": 0, "depth": 8}],
    }
    f = tmp_path / "other.json"
    f.write_text(json.dumps(dict(result, graph_fingerprint="0" * 64)))  # e.g. another budget's graph
    req = HlsRequest(export, fifo_depths=f, baseline=False, codegen=False)
    with pytest.raises(FlowInputError, match="another graph"):
        run(req, log=quiet)
    assert not (export / req.variant).exists()  # nothing half-written
    f.write_text(json.dumps(dict(result, inputs=[{"node": "MVAU_hls_999", "input": 0, "depth": 8}])))
    with pytest.raises(FlowInputError, match="names no input of this graph"):
        run(HlsRequest(export, fifo_depths=f, baseline=False, codegen=False), log=quiet)
    (tmp_path / "junk.json").write_text("{not json")
    req = HlsRequest(export, fifo_depths=tmp_path / "junk.json", baseline=False, codegen=False)
    with pytest.raises(FlowInputError, match="not a FIFO-sizing result"):
        run(req, log=quiet)
    assert not (export / req.variant).exists()
    with pytest.raises(FlowInputError, match=r"missing\.json"):
        _ = HlsRequest(export, fifo_depths=tmp_path / "missing.json").variant


def test_two_beat_fifos_reach_the_bottleneck_and_a_miss_is_refused(vectors, hw_dir, tmp_path, monkeypatch):
    """With 2-beat FIFOs everywhere (the liveness depths of reconvergent paths kept) the test graph
    reaches its bottleneck: since issue 19 the sliding-window generators absorb the bursts in their
    rings. A what-if that misses the bottleneck -- made one cycle slower here -- is refused."""
    tiny = dict(frames=FRAMES, buffering=1e-6, join_buffering=1e-6, progress=quiet)
    result = size_fifos(hw_dir, vectors, tmp_path / "tiny", **tiny)
    assert result["interval_whatif"] == result["bottleneck_cycles"]
    real = fifo_sizing.steady_interval
    monkeypatch.setattr(fifo_sizing, "steady_interval", lambda rep: (real(rep) or 0) + 1)
    with pytest.raises(SizingError, match="still needs") as e:
        size_fifos(hw_dir, vectors, tmp_path / "miss", **tiny)
    m = re.search(r"still needs (\d+) cycles per frame \(bottleneck (\d+)\)", str(e.value))
    assert m, str(e.value)
    needs, bottleneck = map(int, m.groups())
    assert needs == bottleneck + 1 == result["bottleneck_cycles"] + 1


def test_cli_exit_codes(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "sim.fifo_sizing", str(tmp_path / "nothing")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "cannot start" in r.stderr


@pytest.mark.slow
def test_full_width_graph_with_sized_fifos_runs_at_the_bottleneck(tmp_path):
    """cspdensenet-ref-prn, width 1, size 64 (the liveness-only depths give 9.85x there): size,
    rebuild, and the stitched RTL of the rebuilt variant holds the bottleneck in the run's last
    third; the default (throughput) depths need at most 1.5x the sized FIFO bits."""
    from hwcsp.buildcfg import BuildConfig
    from quant.export import export

    build = tmp_path / "build"
    export(BuildConfig("cspdensenet-ref-prn", 64, 1.0), build, log=quiet)
    hw = run(HlsRequest(build, baseline=False, codegen=False), log=quiet)
    vec = write_vectors(hw, tmp_path / "vectors", n=FRAMES, seed=0)
    result = size_fifos(hw, vec, out_dir=tmp_path / "sizing", progress=quiet)
    assert result["interval_proposal"] == result["bottleneck_cycles"]
    sized = run(
        HlsRequest(build, fifo_depths=tmp_path / "sizing" / DEPTHS_FILE, baseline=False, codegen=False),
        log=quiet,
    )
    v2 = write_vectors(sized, tmp_path / "v2", n=FRAMES, seed=0)
    rep = simulate_network(sized, v2, out_dir=tmp_path / "sim", frames=result["frames"], progress=quiet)
    assert rep["verdict"] == "pass" and rep["bit_exact"], rep.get("reason")
    assert steady_interval(rep) == result["bottleneck_cycles"]
    # the analytic throughput depths of the default variant cost at most 1.5x the sized FIFO bits
    default = json.loads((hw / "report" / "estimates.json").read_text())["summary"]["fifo_bits"]
    assert default <= 1.5 * result["fifo_bits"], (default, result["fifo_bits"])
