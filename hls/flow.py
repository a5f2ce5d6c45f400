"""``hwcsp hls``: QONNX export → folded integer dataflow graph, HLS/RTL code and reports.

Reads the configuration's build directory (``model.qonnx.onnx``, ``export.json``,
``config.json``) and writes one folding variant below it, ``hls-m<MACS>/`` or
``hls-f<FPS>/`` (+ ``-nosplit`` without MVAU splits, + ``-fifo<sha8>`` with FIFO depths sized by
``sim.fifo_sizing``), atomically (built in a temporary sibling, renamed at the end):

    model.hw_generic.onnx  folded, width converters and FIFOs inserted, generic op types
    model.hw.onnx          the same graph specialised (_hls/_rtl): the contract for golden and sim
    folding.json           FINN's folding-config format
    io_spec.json           the software side: UINT8 input, per output dtype, integer bias, 2^k scale
    tensor_map.json        Brevitas activation layer → tensor of model.hw.onnx
    hls/<node>/            each layer's generated code (+ README on synthesising it)
    report/                estimates.json, report.md, cycles_per_layer.png, timings.json
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
from qonnx.core.modelwrapper import ModelWrapper

from golden.fsutil import atomic_dir
from hls.lower import LoweringError
from hwcsp.buildcfg import DEFAULT_MACS, BuildConfig, Variant
from hwcsp.errors import UserError


class FlowInputError(UserError, ValueError):
    pass


@dataclass
class HlsRequest:
    build_dir: Path  # the configuration's directory, holding the export
    macs: int | None = None
    target_fps: float | None = None
    split: bool = True  # split MVAUs by output rows (hls.split) where the budget needs it
    fifo_depths: Path | None = None  # FIFO depths sized by simulation (sim.fifo_sizing's fifo_depths.json)
    clk_ns: float = 5.0
    baseline: bool = True  # also run FINN's SetFolding sweep for the report
    verify_frames: int = 2
    codegen: bool = True
    prior_timings: dict | None = None  # steps run before the flow (the export), for timings.json

    @property
    def variant(self) -> str:
        return Variant(self.macs, self.target_fps, self.split, self.fifo_depths).name


class _Steps:
    def __init__(self, log, total: int):
        self.log, self.total, self.i = log, total, 0
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        self.i += 1
        t = time.perf_counter()
        self.log(f"hls [{self.i}/{self.total}] {name} ...")
        yield
        dt = time.perf_counter() - t
        self.timings[name] = round(dt, 3)
        self.log(f"hls [{self.i}/{self.total}] {name}: {dt:.1f} s")


def load_export(build_dir: Path) -> tuple[BuildConfig, dict, onnx.ModelProto]:
    build_dir = Path(build_dir)
    for f in ("config.json", "export.json", "model.qonnx.onnx"):
        if not (build_dir / f).exists():
            raise FlowInputError(f"{build_dir}: no {f}; run the export for this configuration first")
    cfg = BuildConfig.from_dict(json.loads((build_dir / "config.json").read_text()))
    spec = json.loads((build_dir / "export.json").read_text())
    path = build_dir / "model.qonnx.onnx"
    try:
        model = onnx.load(path)
        onnx.checker.check_model(model)
    except Exception as e:
        raise FlowInputError(f"{path} is not a readable ONNX model (truncated or corrupt?): {e}") from e
    if not any(n.op_type == "Quant" for n in model.graph.node):
        raise FlowInputError(f"{path} is not a QONNX model: it has no Quant nodes")
    return cfg, spec, model


def prepare(qmodel: onnx.ModelProto, work: Path, st=None):
    """Export → specialised, unfolded HW graph (steps 1-5 of the flow) and the lowering record."""
    from hls import steps
    from hls.lower import lower_qonnx

    st = st or _Steps(lambda *a: None, 5)
    with st("lower QONNX to integer NHWC (CSP-aware streamlining)"):
        low = lower_qonnx(qmodel)
    with st("convert to HW layers"):
        model = steps.convert_to_hw(low.model)
    with st("partition"):
        model = steps.partition(model, work)
    with st("minimize bit widths"):
        model = steps.minimize_bit_widths(model)
    with st("specialize"):
        model = steps.specialize(model)
    return model, low


def run(req: HlsRequest, log=print) -> Path:
    """Run the whole flow; returns the variant directory."""
    from hls import steps
    from hls.baseline import setfolding_sweep
    from hls.codegen import generate
    from hls.fifo import merge_depths, reconvergent_fifos, sized_fifo_depths
    from hls.finn_env import boot
    from hls.folding import FoldingError, apply_folding, balance, bottleneck, mac_units
    from hls.report import estimate, estimates_json, folding_json, plot_cycles, report_md
    from hls.split import split_mvaus, split_records
    from hls.verify import verify_generic

    cfg, spec, qmodel = load_export(req.build_dir)
    if req.macs is not None and req.target_fps is not None:
        raise FlowInputError("give a MAC budget or a target fps, not both")
    out = Path(req.build_dir) / req.variant
    work = Path(req.build_dir) / f".finn-work-{req.variant}"
    shutil.rmtree(work, ignore_errors=True)
    boot(work)
    steps.seed_names()
    quiet = _quiet_finn()
    st = _Steps(log, 11 if req.codegen else 10)
    try:
        with atomic_dir(out) as tmp:
            model, low = prepare(qmodel, work, st)
            with st("fold (layer-balanced)"):
                budget = req.macs or DEFAULT_MACS
                try:
                    if req.target_fps is not None:
                        target = int(1e9 / (req.clk_ns * req.target_fps))
                        fold = balance(model.graph, target_cycles=target, split=req.split)
                        budget = fold.mac_units
                    else:
                        fold = balance(model.graph, mac_budget=budget, split=req.split)
                except FoldingError as e:
                    raise FlowInputError(f"impossible folding request: {e}") from e
                base = setfolding_sweep(model, budget) if req.baseline else None
                splits = split_records(model.graph, fold.attrs)
                model = split_mvaus(apply_folding(model, fold.attrs), fold.attrs)
            with st("insert width converters and FIFOs"):
                model = steps.insert_dwc(model)
                fifos = reconvergent_fifos(
                    model.graph, steps.node_shapes(model), steps.beats_per_pixel(model)
                )
                sized = {}
                if req.fifo_depths is not None:
                    try:
                        sized = sized_fifo_depths(req.fifo_depths, model.graph)
                    except ValueError as e:
                        raise FlowInputError(str(e)) from e
                model = steps.insert_fifos(model, merge_depths(fifos, sized))
            generic = model.transform(steps.Despecialize())
            io_spec, tensor_map, act_scales = _software_side(cfg, spec, low, model)
            with st("verify: FINN execution of the generic graph == qonnx, integer codes"):
                ver = verify_generic(
                    ModelWrapper(qmodel), generic, io_spec, tensor_map, act_scales, n=req.verify_frames
                )
            if req.codegen:
                with st("generate HLS/RTL code"):
                    model, _ = generate(model, tmp / "hls", req.clk_ns)
            with st("estimates and reports"):
                rows = estimate(model)
                cycles, node = bottleneck(model.graph)
                summary = _summary(cfg, req, rows, fold, cycles, node, model, budget)
                fold_info = {
                    "target_cycles": fold.target,
                    "fifos": [asdict(f) for f in fifos],
                    "splits": splits,
                    "fifo_depths_from": str(req.fifo_depths) if req.fifo_depths is not None else None,
                    "fifo_depths_sized": len(sized),
                    "baseline": base.to_json(fold.total_macs, budget) if base else None,
                }
                rep = tmp / "report"
                rep.mkdir()
                (rep / "estimates.json").write_text(estimates_json(rows, summary, fold_info, ver.to_json()))
                (rep / "report.md").write_text(report_md(rows, summary, fold_info, ver.to_json()))
                plot_cycles(rows, rep / "cycles_per_layer.png", f"{cfg.dirname} / {req.variant}")
            _save(generic, tmp / "model.hw_generic.onnx")
            _save(model, tmp / "model.hw.onnx")
            (tmp / "folding.json").write_text(folding_json(model))
            (tmp / "io_spec.json").write_text(json.dumps(io_spec, indent=1) + "\n")
            (tmp / "tensor_map.json").write_text(json.dumps(tensor_map, indent=1) + "\n")
            (tmp / "config.json").write_text(cfg.to_json())
            timings = {**(req.prior_timings or {}), **st.timings}
            timings["total"] = round(sum(timings.values()), 3)
            (tmp / "report" / "timings.json").write_text(json.dumps(timings, indent=1) + "\n")
            assert mac_units(model.graph) == fold.mac_units or req.target_fps is not None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        quiet()
    log(f"hls: wrote {out} (bottleneck {summary['bottleneck_cycles']} cycles, {summary['fps']:.1f} fps)")
    return out


def _quiet_finn():
    """FINN logs a warning per layer for routine events (shallow FIFOs not created, ...)."""
    import logging

    finn_log = logging.getLogger("finn_logger")
    level = finn_log.level
    finn_log.setLevel(logging.ERROR)
    return lambda: finn_log.setLevel(level)


def _save(model: ModelWrapper, path: Path) -> None:
    path.write_bytes(model.model.SerializeToString(deterministic=True))


def _software_side(cfg: BuildConfig, spec: dict, low, model: ModelWrapper):
    outs_by_name = {o["name"]: o for o in spec["outputs"]}
    outputs = []
    for o in low.outputs:
        meta = outs_by_name.get(o.qonnx_name, {})
        outputs.append(
            {
                "name": o.name,
                "qonnx_name": o.qonnx_name,
                "layout": "NHWC",
                "dtype": model.get_tensor_datatype(o.name).name,
                "scale": o.scale,
                "bias": o.bias,
                "shape": list(o.shape),
                "kind": meta.get("kind", "yolo"),
                "stride": meta.get("stride"),
                "anchors": meta.get("anchors", []),
                "float": "(int + bias) * scale, then NHWC -> NCHW",
            }
        )
    io_spec = {
        "input": {
            "name": low.input_name,
            "layout": "NHWC",
            "dtype": "UINT8",
            "scale": low.input_scale,
            "shape": list(low.input_shape),
            "from_image": "UINT8 pixels, channels last; the model sees pixel * scale",
        },
        "outputs": outputs,
        "num_classes": cfg.num_classes,
    }
    names = {t for n in model.graph.node for t in list(n.input) + list(n.output)}
    tensor_map, scales = {}, {}
    for a in spec["activations"]:
        q = "input.q" if a["layer"] == "input" else a["layer"]
        hw = low.tensor_map.get(q)
        if hw is None or hw not in names:
            raise LoweringError(
                f"activation {a['layer']} has no tensor in the HW graph (the tensor map is incomplete)"
            )
        tensor_map[a["layer"]] = hw
        scales[a["layer"]] = a["scale"]
    return io_spec, tensor_map, scales


def _summary(cfg, req, rows, fold, cycles, node, model, budget) -> dict:
    def tot(attr):
        return sum(getattr(r, attr) for r in rows)

    return {
        "model": cfg.model,
        "build": cfg.dirname,
        "variant": req.variant,
        "weights": "checkpoint " + cfg.ckpt_sha256[:8]
        if cfg.ckpt_sha256
        else f"seeded, calibrated weights (seed {cfg.seed})",
        "clk_ns": req.clk_ns,
        "bottleneck_cycles": cycles,
        "bottleneck_node": node,
        "fps": 1e9 / (req.clk_ns * cycles),
        "mac_units": fold.mac_units,
        "mac_budget": budget,
        "total_macs": fold.total_macs,
        "efficiency": fold.total_macs / budget / cycles,
        "floor_cycles": fold.floor,
        "floor_node": fold.floor_node,
        "nodes": len(rows),
        "fifos": sum(r.op_type.startswith("StreamingFIFO") for r in rows),
        "dwcs": sum(r.op_type.startswith("StreamingDataWidthConverter") for r in rows),
        "lut": tot("lut"),
        "bram_18k": tot("bram_18k"),
        "uram": tot("uram"),
        "dsp": tot("dsp"),
        "weight_bits": tot("weight_bits"),
        "threshold_bits": tot("threshold_bits"),
    }
