"""Golden model speed: frames/s of golden against the other ways to execute the same network.

On cspdensenet-ref-prn @320 (seeded weights), batch 1, in one run, interleaved (each round runs every
method once on the same frame), median of the rounds:

* golden        `golden.execute.Program.run` on model.hw.onnx (NumPy, single BLAS thread, golden's default)
* golden-mt     the same with BLAS left at NumPy's default thread count (GOLDEN_BLAS_THREADS=0)
* qonnx         `qonnx.core.onnx_exec.execute_onnx` on the QONNX export (model.qonnx.onnx)
* finn-python   FINN's python execution (`execute_onnx`) of model.hw_generic.onnx
* onnxruntime   ONNX Runtime (CPU) on the Brevitas QCDQ export (opset 13) of the BN-folded net

Before timing, golden's outputs are checked against FINN's on the benchmark frame (0 mismatches) and
ONNX Runtime's float outputs are compared with golden's software side (reported, not asserted).

    python -m benchmarks.golden_speed [--model M --size S --width W --rounds 5 --build-root build/bench]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

METHODS = ("golden", "golden-mt", "qonnx", "finn-python", "onnxruntime")


def quiet(*_a, **_k) -> None:
    pass


def _build(cfg, d: Path) -> tuple[Path, Path]:
    """The hls variant of `cfg` under `d` and a QCDQ export of its net (both cached in `d`)."""
    from hls.flow import HlsRequest, run
    from quant.export import export

    net = None
    if not (d / "model.qonnx.onnx").exists():
        net = export(cfg, d, log=quiet).net
    hw = d / HlsRequest(d).variant
    if not (hw / "model.hw.onnx").exists():
        run(HlsRequest(d, baseline=False, codegen=False), log=quiet)
    sha = hashlib.sha256((d / "model.qonnx.onnx").read_bytes()).hexdigest()[:16]
    qcdq = d / "golden-bench" / f"model.qcdq-{sha}.onnx"
    if not qcdq.exists():
        if net is None:  # the export is deterministic: re-export elsewhere to get the Brevitas net
            with tempfile.TemporaryDirectory() as tmp:
                r = export(cfg, Path(tmp) / "x", log=quiet)
                if r.onnx_path.read_bytes() != (d / "model.qonnx.onnx").read_bytes():
                    raise RuntimeError(f"{d}: the export is stale; remove it and rerun")
                net = r.net
        _qcdq(net, cfg.size, qcdq)
    return hw, qcdq


def _qcdq(net, size: int, path: Path) -> None:
    import torch
    from brevitas.export import export_onnx_qcdq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with torch.no_grad():
        export_onnx_qcdq(
            net, torch.zeros(1, 3, size, size), export_path=str(tmp), opset_version=13, dynamo=False
        )
    tmp.rename(path)


def _median_fps(times: list[float]) -> float:
    return 1.0 / statistics.median(times)


def run(model: str, size: int, width: float, rounds: int, build_root: Path) -> dict:
    from golden.execute import Program
    from golden.fsutil import make_tmp_dir
    from golden.software import heads_to_float, load_io_spec
    from hls.finn_env import boot
    from hwcsp.buildcfg import BuildConfig

    cfg = BuildConfig(model, size, width)
    d = cfg.path(build_root)
    work = boot(make_tmp_dir(d, "finn-work-golden-bench"))  # stale ones of killed runs are removed
    hw, qcdq_path = _build(cfg, d)

    import onnxruntime as ort
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    spec = load_io_spec(hw / "io_spec.json")
    x = np.random.default_rng(0).integers(0, 256, spec.input.shape).astype(np.uint8)
    x_float_nchw = (x.transpose(0, 3, 1, 2).astype(np.float32) * spec.input.scale).astype(np.float32)
    prog = Program(hw / "model.hw.onnx")
    qmodel = ModelWrapper(str(d / "model.qonnx.onnx"))
    generic = ModelWrapper(str(hw / "model.hw_generic.onnx"))
    sess = ort.InferenceSession(str(qcdq_path), providers=["CPUExecutionProvider"])
    ort_in = sess.get_inputs()[0].name

    def golden_mt() -> dict:
        os.environ["GOLDEN_BLAS_THREADS"] = "0"
        try:
            return prog.run({spec.input.name: x})
        finally:
            os.environ.pop("GOLDEN_BLAS_THREADS", None)

    methods: dict[str, Callable[[], object]] = {
        "golden": lambda: prog.run({spec.input.name: x}),
        "golden-mt": golden_mt,
        "qonnx": lambda: execute_onnx(qmodel, {"input": x_float_nchw}),
        "finn-python": lambda: execute_onnx(generic, {spec.input.name: x.astype(np.float32)}),
        "onnxruntime": lambda: sess.run(None, {ort_in: x_float_nchw}),
    }
    # correctness of what is timed: golden == FINN on this frame; ORT's float heads vs golden's
    gold = methods["golden"]()
    ref = methods["finn-python"]()
    mism = sum(int(np.count_nonzero(gold[k] != ref[k].astype(np.int64))) for k in gold)
    heads = heads_to_float(gold, spec)
    ort_out = methods["onnxruntime"]()
    ort_diff = max(float(np.abs(h - o).max()) for h, o in zip(heads.values(), ort_out, strict=True))
    methods["qonnx"]()
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for _ in range(rounds):
        for m in METHODS:
            t = time.perf_counter()
            methods[m]()
            times[m].append(time.perf_counter() - t)
    fps = {m: _median_fps(times[m]) for m in METHODS}
    shutil.rmtree(work, ignore_errors=True)
    return {
        "model": cfg.dirname,
        "frames_per_round": 1,
        "rounds": rounds,
        "seconds": {m: [round(t, 4) for t in times[m]] for m in METHODS},
        "fps": {m: round(v, 3) for m, v in fps.items()},
        "golden_over": {m: round(fps["golden"] / fps[m], 2) for m in METHODS if m != "golden"},
        "golden_vs_finn_mismatches": mism,
        "golden_vs_finn_integers": int(sum(v.size for v in gold.values())),
        "ort_max_abs_diff_vs_golden_heads": ort_diff,
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
            "python": platform.python_version(),
            "numpy": np.__version__,
            "onnxruntime": ort.__version__,
        },
    }


def markdown(res: dict) -> str:
    names = {
        "golden": "golden (`Program.run`, 1 BLAS thread)",
        "golden-mt": "golden, BLAS at NumPy's default threads",
        "qonnx": "qonnx `execute_onnx`, QONNX export",
        "finn-python": "FINN python execution, generic HW graph",
        "onnxruntime": "ONNX Runtime CPU, Brevitas QCDQ export",
    }
    lines = [
        f"`{res['model']}`, batch 1, median of {res['rounds']} interleaved rounds "
        f"(load average after: {res['machine']['loadavg_after']})",
        "",
        "| method | median s/frame | frames/s | golden speed-up |",
        "|---|---:|---:|---:|",
    ]
    for m in METHODS:
        med = statistics.median(res["seconds"][m])
        up = "—" if m == "golden" else f"{res['golden_over'][m]:.2f}×"
        lines.append(f"| {names[m]} | {med:.3f} | {res['fps'][m]:.2f} | {up} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.golden_speed", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="cspdensenet-ref-prn")
    p.add_argument("--size", type=int, default=320)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--build-root", type=Path, default=Path("build/bench"))
    p.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    a = p.parse_args(argv)
    res = run(a.model, a.size, a.width, a.rounds, a.build_root)
    text = markdown(res)
    print(text)
    print(
        f"golden == FINN on the benchmark frame: {res['golden_vs_finn_mismatches']} mismatches in "
        f"{res['golden_vs_finn_integers']} integers; ONNX Runtime's float heads differ from golden's "
        f"by up to {res['ort_max_abs_diff_vs_golden_heads']:.4g}"
    )
    out = a.json or a.build_root / "golden_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    return 1 if res["golden_vs_finn_mismatches"] else 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
