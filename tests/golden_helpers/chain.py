"""A model's small build through the chain (export, then hls without code generation) and the
per-node RTL check of that build: shared by the backbone and head tests."""

from __future__ import annotations

from pathlib import Path


def quiet(*_a, **_k) -> None:
    pass


def small_build(tmp_path: Path, name: str, size: int, width: float):
    """(export result, hls variant directory) of a seeded model at ``size`` and ``width``."""
    from hls.flow import HlsRequest, run
    from hwcsp.buildcfg import BuildConfig
    from quant.export import export

    cfg = BuildConfig(name, size, width=width)
    d = cfg.path(tmp_path)
    r = export(cfg, d, log=quiet)
    return r, run(HlsRequest(d, baseline=False, codegen=False, verify_frames=1), log=quiet)


def check_every_node_in_rtl(hw: Path, tmp_path: Path, ops: set[str]) -> None:
    """Every node of the build in its RTL module: bit-exact under full rate and random stalls, every
    interval == golden's RTL cycle model; ``ops`` must be among the node types simulated."""
    from golden.vectors import write_vectors
    from sim.graph import simulate

    vectors = write_vectors(hw, tmp_path / "vectors", n=2, seed=0)
    report = simulate(hw, vectors, out_dir=tmp_path / "sim", progress=quiet)
    bad = [f"{e['name']} ({e['op_type']}): {e['verdict']}" for e in report["nodes"] if e["verdict"] != "pass"]
    assert report["summary"]["all_pass"] and not bad, bad[:8]
    seen = {e["op_type"].rsplit("_", 1)[0] for e in report["nodes"]}
    assert ops <= seen, sorted(ops - seen)
    for e in report["nodes"]:
        assert e["mismatch_ints"] == 0
        assert all(iv == [e["exp_cycles"]] * (report["frames"] - 1) for iv in e["intervals"].values()), e


def check_chain_exact(finn, r, hw: Path, label: str, seed: int) -> None:
    """golden on the folded graph == FINN's python execution of the generic graph at every tensor ==
    qonnx == Brevitas, on two random frames: 0 mismatching integers, and every node a golden op."""
    import numpy as np
    import onnx

    from golden.ops import OPS
    from golden.software import load_io_spec

    try:
        from golden_helpers.refs import chain_tally
    except ImportError:  # tests/ imported as a package
        from tests.golden_helpers.refs import chain_tally

    model = onnx.load(str(hw / "model.hw.onnx"))
    ops = {n.op_type.rsplit("_", 1)[0] for n in model.graph.node}
    assert ops <= set(OPS), sorted(ops - set(OPS))
    spec = load_io_spec(hw / "io_spec.json")
    x = np.random.default_rng(seed).integers(0, 256, (2, *spec.input.shape[1:]))
    tally = chain_tally(hw, r.net, finn, x)
    print(f"{label}: {tally}")
    assert tally.mismatches == 0, str(tally)
    assert tally.integers > 0
