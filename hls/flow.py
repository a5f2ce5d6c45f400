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

The flow is the list of named steps ``STEPS`` (each ``fn(model, ctx) -> model``), run in order by
``run_steps``; ``write_outputs`` writes the files above (the generated code aside). hls/README.md
lists the steps and what adding a layer type touches.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import onnx
from qonnx.core.modelwrapper import ModelWrapper

from golden.fsutil import atomic_dir, make_tmp_dir
from hls import steps
from hls.baseline import BaselineResult, setfolding_sweep
from hls.codegen import generate
from hls.fifo import FifoDecision, merged_fifos, reconvergent_fifos, sized_fifo_depths
from hls.finn_env import boot, quiet_finn
from hls.folding import FoldingError, FoldingResult, apply_folding, balance, bottleneck, mac_units
from hls.lower import Lowered, LoweringError, lower_qonnx
from hls.report import LayerEstimate, estimate, estimates_json, folding_json, plot_cycles, report_md
from hls.schedule import Schedule, throughput_depths
from hls.split import split_mvaus, split_records
from hls.verify import Verification, verify_generic
from hwcsp.buildcfg import BuildConfig, Variant, VariantError
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
    liveness_fifos: bool = False  # FIFOs for deadlock freedom only (hls.fifo), not throughput (hls.schedule)

    @classmethod
    def of(cls, build_dir: Path, variant: Variant, **kw: Any) -> HlsRequest:
        """The request that builds `variant` of the configuration exported to `build_dir`."""
        v = variant
        kw |= {"liveness_fifos": v.liveness_fifos}
        return cls(build_dir, v.macs, v.target_fps, v.split, v.fifo_depths, **kw)

    @property
    def variant(self) -> str:
        try:
            return Variant(self.macs, self.target_fps, self.split, self.fifo_depths, self.liveness_fifos).name
        except VariantError as e:  # the flow's callers catch its own input error
            raise FlowInputError(str(e)) from e


@dataclass
class FlowContext:
    """What the steps share besides the model: the request and inputs, and what each step
    finds out for the later ones and for the output files (``write_outputs``)."""

    work: Path  # FINN's temporary build files
    req: HlsRequest | None = None
    cfg: BuildConfig | None = None
    spec: dict = field(default_factory=dict)  # export.json
    qmodel: onnx.ModelProto | None = None  # the QONNX export
    out: Path | None = None  # the variant directory under construction
    low: Lowered | None = None  # lower: io facts and tensor map of the lowering
    budget: int = 0  # fold: the MAC budget (with a target fps, what the folding needs)
    fold: FoldingResult | None = None  # fold
    baseline: BaselineResult | None = None  # fold: FINN's SetFolding sweep
    splits: list[dict] = field(default_factory=list)  # split: the report's records
    fifos: list[FifoDecision] = field(default_factory=list)  # FIFOs: liveness bounds
    sized: dict = field(default_factory=dict)  # FIFOs: depths sized by simulation
    schedule: Schedule | None = None  # FIFOs: the throughput schedule (its depths, latency estimate)
    fifo_terms: dict = field(default_factory=dict)  # FIFOs: (depth, the term that set it) per input
    generic: ModelWrapper | None = None  # FIFOs: the generic twin of the folded graph
    io_spec: dict = field(default_factory=dict)  # FIFOs: the software side
    tensor_map: dict = field(default_factory=dict)
    act_scales: dict = field(default_factory=dict)
    verification: Verification | None = None  # verify
    rows: list[LayerEstimate] = field(default_factory=list)  # report
    summary: dict = field(default_factory=dict)  # report
    fold_info: dict = field(default_factory=dict)  # report
    timings: dict[str, float] = field(default_factory=dict)  # wall-clock seconds per step title


StepFn = Callable[[Any, FlowContext], Any]


@dataclass(frozen=True)
class Step:
    """One step of the flow: ``fn(model, ctx)`` returns the model. ``title`` is what the progress
    lines show and what ``report/timings.json`` is keyed by."""

    name: str
    title: str
    fn: StepFn


def step_lower(model: onnx.ModelProto, ctx: FlowContext) -> ModelWrapper:
    """QONNX export → integer NHWC FINN-ONNX (``hls.lower``); keeps the lowering record."""
    ctx.low = lower_qonnx(model)
    return ctx.low.model


def step_convert_to_hw(model: ModelWrapper, ctx: FlowContext) -> ModelWrapper:
    return steps.convert_to_hw(model)


def step_partition(model: ModelWrapper, ctx: FlowContext) -> ModelWrapper:
    return steps.partition(model, ctx.work)


def step_minimize_bit_widths(model: ModelWrapper, ctx: FlowContext) -> ModelWrapper:
    return steps.minimize_bit_widths(model)


def step_specialize(model: ModelWrapper, ctx: FlowContext) -> ModelWrapper:
    return steps.specialize(model)


def step_fold(model: ModelWrapper, ctx: FlowContext) -> ModelWrapper:
    """Layer-balanced PE/SIMD for the budget or target (``hls.folding``), FINN's SetFolding sweep
    for comparison, and the folding attributes set (splits are the next step's)."""
    req = ctx.req
    ctx.budget = Variant(req.macs, req.target_fps).budget
    try:
        if req.target_fps is not None:
            target = int(1e9 / (req.clk_ns * req.target_fps))
            ctx.fold = balance(model.graph, target_cycles=target, split=req.split)
            ctx.budget = ctx.fold.mac_units
        else:
            ctx.fold = balance(model.graph, mac_budget=ctx.budget, split=req.split)
    except FoldingError as e:
        raise FlowInputError(f"impossible folding request: {e}") from e
    if req.baseline:
        with steps.names_kept():  # the graph is the same with or without the report's sweep
            ctx.baseline = setfolding_sweep(model, ctx.budget)
    return apply_folding(model, ctx.fold.attrs)


def step_split(model: ModelWrapper, ctx: FlowContext) -> ModelWrapper:
    """MVAUs the folding splits by output rows (``hls.split``), re-specialised."""
    ctx.splits = split_records(model.graph, ctx.fold.attrs)
    return split_mvaus(model, ctx.fold.attrs)


def step_insert_dwc_fifos(model: ModelWrapper, ctx: FlowContext) -> ModelWrapper:
    """Width converters, then FIFOs on reconvergent paths (``hls.fifo``); the graph is complete
    here, so its generic twin and the software side (io_spec, tensor map) are derived too."""
    model = steps.insert_dwc(model)
    shapes, bpp = steps.node_shapes(model), steps.beats_per_pixel(model)
    ctx.fifos = reconvergent_fifos(model.graph, shapes, bpp)
    try:
        if not ctx.req.liveness_fifos:
            ctx.schedule = throughput_depths(model.graph, shapes, bpp)
        if ctx.req.fifo_depths is not None:
            ctx.sized = sized_fifo_depths(ctx.req.fifo_depths, model.graph)
    except ValueError as e:
        raise FlowInputError(str(e)) from e
    throughput = ctx.schedule.depths if ctx.schedule else []
    ctx.fifo_terms = merged_fifos(ctx.fifos, ctx.sized, throughput)
    model = steps.insert_fifos(model, {key: depth for key, (depth, _) in ctx.fifo_terms.items()})
    ctx.generic = model.transform(steps.Despecialize())
    ctx.io_spec, ctx.tensor_map, ctx.act_scales = software_side(ctx.cfg, ctx.spec, ctx.low, model)
    return model


def step_verify(model: ModelWrapper, ctx: FlowContext) -> ModelWrapper:
    ctx.verification = verify_generic(
        ModelWrapper(ctx.qmodel),
        ctx.generic,
        ctx.io_spec,
        ctx.tensor_map,
        ctx.act_scales,
        n=ctx.req.verify_frames,
    )
    return model


def step_codegen(model: ModelWrapper, ctx: FlowContext) -> ModelWrapper:
    """Each layer's HLS C++ / RTL into ``hls/<node>/`` of the variant directory (``hls.codegen``)."""
    model, _ = generate(model, ctx.out / "hls", ctx.req.clk_ns)
    return model


def step_report(model: ModelWrapper, ctx: FlowContext) -> ModelWrapper:
    """Per-layer estimates and the summary the report files are written from."""
    req, fold = ctx.req, ctx.fold
    assert mac_units(model.graph) == fold.mac_units or req.target_fps is not None
    ctx.rows = estimate(model)
    cycles, node = bottleneck(model.graph)
    ctx.summary = summary(ctx.cfg, req, ctx.rows, fold, cycles, node, ctx.budget, ctx.spec.get("source"))
    ctx.fold_info = {
        "target_cycles": fold.target,
        "fifos": [asdict(f) for f in ctx.fifos],
        "splits": ctx.splits,
        "fifo_depths_from": str(req.fifo_depths) if req.fifo_depths is not None else None,
        "fifo_depths_sized": len(ctx.sized),
        "fifo_sizing": "liveness" if req.liveness_fifos else "throughput",
        "fifo_depths_throughput": len(ctx.schedule.depths) if ctx.schedule else 0,
        "fifo_terms": [
            {"node": node, "input": index, "depth": depth, "term": term}
            for (node, index), (depth, term) in sorted(ctx.fifo_terms.items())
        ],
        "fifo_consumers": fifo_consumers(model.graph),
        "schedule": _schedule_facts(ctx.schedule),
        "frame_buffers": _frame_buffers(ctx.schedule),
        "baseline": ctx.baseline.to_json(fold.total_macs, ctx.budget) if ctx.baseline else None,
    }
    return model


def _frame_buffers(sch: Schedule | None) -> list[dict]:
    """Streams whose throughput FIFO holds a whole frame or more, and the global pool behind the
    other input of their join, if that is why (CEM's context: the report says so)."""
    if sch is None:
        return []
    return [
        {
            "node": d.consumer,
            "input": d.input_index,
            "tensor": d.tensor,
            "frames": round(d.frames_held, 2),
            "depth": d.depth,
            "waits_for": d.waits_for,
        }
        for d in sch.depths
        if d.frames_held >= 1.0
    ]


def _schedule_facts(sch: Schedule | None) -> dict | None:
    """The throughput schedule's estimates: first-frame latency (cycles and bottleneck intervals:
    `hwcsp verify` runs 2L + 4 frames from it) and the frames it scheduled."""
    if sch is None:
        return None
    return {
        "latency_cycles": round(sch.latency),
        "latency_intervals": sch.latency_intervals,
        "period": round(sch.period),
        "frames": sch.frames,
    }


def fifo_consumers(graph) -> dict[str, list]:
    """StreamingFIFO node -> [consumer node, input index] it feeds (InsertFIFO puts each FIFO
    directly in front of the consumer input whose depth asked for it)."""
    at = {t: [n.name, i] for n in graph.node for i, t in enumerate(n.input)}
    return {n.name: at[n.output[0]] for n in graph.node if n.op_type.startswith("StreamingFIFO")}


STEPS: dict[str, Step] = {
    s.name: s
    for s in (
        Step("lower", "lower QONNX to integer NHWC (CSP-aware streamlining)", step_lower),
        Step("convert_to_hw", "convert to HW layers", step_convert_to_hw),
        Step("partition", "partition", step_partition),
        Step("minimize_bit_widths", "minimize bit widths", step_minimize_bit_widths),
        Step("specialize", "specialize", step_specialize),
        Step("fold", "fold (layer-balanced)", step_fold),
        Step("split", "split MVAUs by output rows", step_split),
        Step("insert_dwc_fifos", "insert width converters and FIFOs", step_insert_dwc_fifos),
        Step("verify", "verify: FINN execution of the generic graph == qonnx, integer codes", step_verify),
        Step("codegen", "generate HLS/RTL code", step_codegen),
        Step("report", "estimates and reports", step_report),
    )
}
PREPARE_STEPS = ("lower", "convert_to_hw", "partition", "minimize_bit_widths", "specialize")


def default_steps(req: HlsRequest) -> list[str]:
    """The flow's steps by name, in order (``codegen`` only when the request asks for code)."""
    return [name for name in STEPS if name != "codegen" or req.codegen]


def resolve_steps(names: list[str | Step]) -> list[Step]:
    """Steps by name from ``STEPS``; a ``Step`` in the list is used as it is (a replacement)."""
    out = []
    for s in names:
        if isinstance(s, Step):
            out.append(s)
        elif s in STEPS:
            out.append(STEPS[s])
        else:
            raise ValueError(f"unknown hls step {s!r}; the steps are {', '.join(STEPS)}")
    return out


def run_steps(model, ctx: FlowContext, todo: list[Step], log=print):
    """Run ``todo`` in order, with a progress line before and after each; times into ``ctx``."""
    for i, step in enumerate(todo, 1):
        head = f"hls [{i}/{len(todo)}] {step.title}"
        log(f"{head} ...")
        t = time.perf_counter()
        model = step.fn(model, ctx)
        dt = time.perf_counter() - t
        ctx.timings[step.title] = round(dt, 3)
        log(f"{head}: {dt:.1f} s")
    return model


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


def prepare(qmodel: onnx.ModelProto, work: Path, log=lambda *a: None):
    """Export → specialised, unfolded HW graph (the flow's first steps) and the lowering record."""
    ctx = FlowContext(work=Path(work), qmodel=qmodel)
    model = run_steps(qmodel, ctx, resolve_steps(list(PREPARE_STEPS)), log)
    return model, ctx.low


def run(req: HlsRequest, log=print, step_list: list[str | Step] | None = None) -> Path:
    """Run the flow (``default_steps(req)``, or ``step_list``: names from ``STEPS`` or replacement
    ``Step``s) and write the variant directory atomically; returns it."""
    cfg, spec, qmodel = load_export(req.build_dir)
    if req.macs is not None and req.target_fps is not None:
        raise FlowInputError("give a MAC budget or a target fps, not both")
    out = Path(req.build_dir) / req.variant
    work = finn_work_dir(req.build_dir, req.variant)
    boot(work)
    steps.seed_names()
    todo = resolve_steps(default_steps(req) if step_list is None else step_list)
    try:
        with quiet_finn(), atomic_dir(out) as tmp:
            ctx = FlowContext(work=work, req=req, cfg=cfg, spec=spec, qmodel=qmodel, out=tmp)
            model = run_steps(qmodel, ctx, todo, log)
            write_outputs(model, ctx)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    s = ctx.summary
    log(f"hls: wrote {out} (bottleneck {s['bottleneck_cycles']} cycles, {s['fps']:.1f} fps)")
    return out


def finn_work_dir(build_dir: Path, variant: str) -> Path:
    """A fresh directory for FINN's temporary build files of one run, ``.finn-work-<variant>.tmp-
    <pid>-…`` in the build directory. Those a killed run left behind (their process is gone) are
    removed first, and so is the fixed-name ``.finn-work-<variant>`` of earlier versions."""
    shutil.rmtree(Path(build_dir) / f".finn-work-{variant}", ignore_errors=True)
    return make_tmp_dir(Path(build_dir), f"finn-work-{variant}")


def write_outputs(model: ModelWrapper, ctx: FlowContext) -> None:
    """Every output file of the variant directory but the generated code, written here only."""
    out, req = ctx.out, ctx.req
    ver = ctx.verification.to_json()
    rep = out / "report"
    rep.mkdir(exist_ok=True)
    (rep / "estimates.json").write_text(estimates_json(ctx.rows, ctx.summary, ctx.fold_info, ver))
    (rep / "report.md").write_text(report_md(ctx.rows, ctx.summary, ctx.fold_info, ver))
    plot_cycles(ctx.rows, rep / "cycles_per_layer.png", f"{ctx.cfg.dirname} / {req.variant}")
    _save(ctx.generic, out / "model.hw_generic.onnx")
    _save(model, out / "model.hw.onnx")
    (out / "folding.json").write_text(folding_json(model))
    (out / "io_spec.json").write_text(json.dumps(ctx.io_spec, indent=1) + "\n")
    (out / "tensor_map.json").write_text(json.dumps(ctx.tensor_map, indent=1) + "\n")
    (out / "config.json").write_text(ctx.cfg.to_json())
    timings = {**(req.prior_timings or {}), **ctx.timings}
    timings["total"] = round(sum(timings.values()), 3)
    (rep / "timings.json").write_text(json.dumps(timings, indent=1) + "\n")


def _save(model: ModelWrapper, path: Path) -> None:
    path.write_bytes(model.model.SerializeToString(deterministic=True))


def software_side(cfg: BuildConfig, spec: dict, low: Lowered, model: ModelWrapper):
    """io_spec.json, tensor_map.json and the activation scales the verification needs."""
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


def summary(cfg, req, rows, fold, cycles, node, budget, source: dict | None = None) -> dict:
    def tot(attr):
        return sum(getattr(r, attr) for r in rows)

    if source:  # a user's own QONNX file (hls.qonnx_in)
        weights = f"weights of the QONNX file {source['qonnx']} ({source['sha256'][:8]})"
    elif cfg.ckpt_sha256:
        weights = "checkpoint " + cfg.ckpt_sha256[:8]
    else:
        weights = f"seeded, calibrated weights (seed {cfg.seed})"
    return {
        "model": cfg.model,
        "build": cfg.dirname,
        "variant": req.variant,
        "weights": weights,
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
        "fifo_bits": tot("fifo_bits"),
    }
