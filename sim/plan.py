"""Planning: what each node of model.hw.onnx becomes in RTL, and how the stitched network is wired.

Node plans (`plan_graph`): every node in execution order with its RTL layer record
(`sim.layers`), HDL parameters, stream ports (geometry from golden.streams) and its golden vector
files, checked against that geometry -- or the reason it cannot run. Network plans
(`plan_network`): the same nodes, every tensor one stream from its producer to its consumer, the
StreamingFIFO nodes (reconvergent ones at a scaled depth on request) and the what-if FIFOs. The
plans are data; sim.netlist turns them into SystemVerilog, sim.graph and sim.network run them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golden.cycles import rtl_cycles
from golden.errors import GoldenError
from golden.execute import load_model, topo_order
from golden.node import NodeView
from golden.packing import padded_width
from golden.streams import (
    in_dtype,
    in_elems_per_beat,
    in_width,
    n_in_beats,
    n_out_beats,
    out_dtype,
    out_elems_per_beat,
    out_width,
)
from golden.vectors import FORMAT as VECTORS_FORMAT
from golden.vectors import VERSION as VECTORS_VERSION
from sim.layers import FIFO_REG_DEPTH_MAX, layer_of, unsupported_reason

MEMORIES = {"WEIGHT_FILE": "weights", "THRESH_FILE": "thresholds"}  # rom parameter -> manifest memory
JOINS = ("StreamingConcat", "ElementwiseAdd", "ElementwiseMax", "ElementwiseMul")


# ---------------------------------------------------------------------------------------------
# node plans


@dataclass
class Port:
    """One stream of a node: its geometry from golden.streams (what the RTL has), its beats from
    the vector manifest (checked against that geometry)."""

    tensor: str
    beats: int  # per frame
    bits: int  # element width
    elems: int  # elements per beat
    width: int  # padded TDATA width
    hex: Path | None = None  # beats of every vector frame, one a line

    def key(self) -> tuple[str, int, int, int, int]:
        return (self.tensor, self.beats, self.bits, self.elems, self.width)


@dataclass
class NodePlan:
    """One node of the graph: how it is simulated (module, HDL parameters, files), or why not."""

    index: int
    view: NodeView
    module: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    memories: dict[str, Path] = field(default_factory=dict)  # HDL parameter -> image in the vectors
    inputs: list[Port] = field(default_factory=list)
    outputs: list[Port] = field(default_factory=list)
    exp_cycles: int = 0
    latency_declared: int = 0
    first_out: int = 0
    unsupported: str = ""  # why the RTL library cannot run the node (then it is not instantiated)
    error: str = ""  # why its vectors cannot be used (then it is instantiated but idle)
    excluded: bool = False  # not selected for this run (idle, or not instantiated under Icarus)
    dropped: bool = False  # left out of the generated top although supported (Icarus)

    @property
    def in_top(self) -> bool:
        """Instantiated in the generated top."""
        return not self.unsupported and not self.dropped

    @property
    def active(self) -> bool:
        """Simulated in this run."""
        return self.in_top and not (self.error or self.excluded)

    @property
    def tag(self) -> str:
        """Instance name and run sub-directory of the node."""
        return f"n{self.index:03d}"


def golden_ports(view: NodeView) -> tuple[list[Port], list[Port]]:
    """The node's input streams (initializers have none) and output streams, in port order."""
    ins = [
        Port(view.inputs[i], n_in_beats(view, i), in_dtype(view, i).bits, in_elems_per_beat(view, i),
             padded_width(in_width(view, i)))
        for i in range(len(view.inputs))
        if i not in view.inits
    ]  # fmt: skip
    outs = [
        Port(t, n_out_beats(view, i), out_dtype(view, i).bits, out_elems_per_beat(view, i),
             padded_width(out_width(view, i)))
        for i, t in enumerate(view.outputs)
    ]  # fmt: skip
    return ins, outs


def _hex_problem(path: Path, lines: int, width: int) -> str:
    """ "" when `path` holds `lines` beats of `width` bits (padded) as golden writes them."""
    if not path.is_file():
        return f"{path} is missing"
    data = path.read_bytes().splitlines()
    if len(data) != lines:
        return f"{path} holds {len(data)} lines, the manifest says {lines} beats"
    if data and len(data[0]) != width // 4:
        return f"{path}: lines of {len(data[0])} hex digits for a {width}-bit stream"
    return ""


def memory_geometry(plan: NodePlan) -> dict[str, tuple[int, int]]:
    """rom parameter -> (depth, word bits), as the RTL parameters imply (sim/README.md)."""
    prm, geometry = plan.params, {}
    if "WEIGHT_FILE" in plan.memories:
        sf, nf = prm["MW"] // prm["SIMD"], prm["MH"] // prm["PE"]
        geometry["WEIGHT_FILE"] = (nf * sf, prm["PE"] * prm["SIMD"] * prm["W_BITS"])
    if "THRESH_FILE" in plan.memories:
        ch = prm.get("MH", prm.get("CHANNELS"))
        geometry["THRESH_FILE"] = (ch // prm["PE"], prm["PE"] * prm["NUM_STEPS"] * prm["T_BITS"])
    return geometry


def attach_vectors(
    plan: NodePlan, entry: dict, vectors_dir: Path, frames: int, edges_only: bool = False
) -> str:
    """Point the plan at the node's vector files; "" when they can be used, else why not.

    The manifest's packing and memory geometry must be what golden.streams and the RTL
    parameters say: a disagreement is a bug on one side, reported, never papered over.
    `edges_only`: ports without a stream file (edges-only vectors: only the graph's inputs and
    outputs have one) are accepted, their `hex` left None."""
    prm = plan.params
    for kind, ports in (("inputs", plan.inputs), ("outputs", plan.outputs)):
        listed = [p for p in entry[kind] if not p.get("initializer")]
        got = [
            (p["tensor"], int(p["beats_per_frame"]), int(p["elem_bits"]), int(p["elems_per_beat"]),
             int(p["padded_width"]))
            for p in listed
        ]  # fmt: skip
        want = [p.key() for p in ports]
        if got != want:
            return (
                f"manifest {kind} {got} differ from golden.streams {want} "
                "(tensor, beats per frame, bits, elements per beat, padded width)"
            )
        for port, p in zip(ports, listed, strict=True):
            if p.get("hex") is None:
                if not edges_only:
                    return (
                        f"{vectors_dir} holds the network's edges only (edges_only): no stream file for "
                        f"{port.tensor}; write full vectors (hwcsp golden)"
                    )
                continue
            port.hex = vectors_dir / p["hex"]
            if problem := _hex_problem(port.hex, port.beats * frames, port.width):
                return problem
    for pname, (depth, bits) in memory_geometry(plan).items():
        mem = MEMORIES[pname]
        if mem not in entry.get("memories", {}):
            return f"the manifest has no {mem} memory for this node"
        m = entry["memories"][mem]
        if (int(m["depth"]), int(m["word_bits"])) != (depth, bits):
            return (
                f"manifest {mem} memory is {m['depth']} words of {m['word_bits']} bits; the RTL "
                f"parameters {prm} make it {depth} words of {bits} bits"
            )
        plan.memories[pname] = vectors_dir / m["file"]
        if problem := _hex_problem(plan.memories[pname], depth, padded_width(bits)):
            return problem
    listed = int(entry.get("exp_cycles_per_frame", plan.exp_cycles))
    if listed != plan.exp_cycles:
        return f"manifest exp_cycles_per_frame {listed} != golden.cycles.rtl_cycles {plan.exp_cycles}"
    return ""


def load_manifest(hw_dir: Path, vectors_dir: Path) -> dict:
    """The vectors' manifest, refused unless it was written for this model.hw.onnx."""
    path = Path(vectors_dir) / "manifest.json"
    if not path.is_file():
        raise GoldenError(f"{vectors_dir}: no manifest.json; write the golden vectors first (hwcsp golden)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != VECTORS_FORMAT:
        raise GoldenError(f"{path} is not a golden vector manifest (format {manifest.get('format')!r})")
    if manifest.get("version") != VECTORS_VERSION:
        raise GoldenError(
            f"{path} is version {manifest.get('version')!r} of the vector format, this hwcsp writes and "
            f"reads version {VECTORS_VERSION}; write the vectors again"
        )
    digest = hashlib.sha256((Path(hw_dir) / "model.hw.onnx").read_bytes()).hexdigest()
    if manifest.get("graph_sha256") != digest:
        raise GoldenError(
            f"{vectors_dir} was written for another model.hw.onnx (graph_sha256 "
            f"{str(manifest.get('graph_sha256'))[:12]}…, this graph {digest[:12]}…); write the vectors again"
        )
    return manifest


def plan_graph(hw_dir: Path, vectors_dir: Path, edges_only: bool = False) -> tuple[list[NodePlan], dict]:
    """Every node of model.hw.onnx in execution order, with its module, parameters and vectors
    (`edges_only`: stream files only where the vectors have them, `attach_vectors`)."""
    model = load_model(Path(hw_dir) / "model.hw.onnx")
    manifest = load_manifest(hw_dir, vectors_dir)
    frames = int(manifest["frames"])
    entries = {n["name"]: n for n in manifest["nodes"]}
    plans = []
    for k, node in enumerate(topo_order(model.graph)):
        view = NodeView.from_onnx(node, model.graph)
        plan = NodePlan(index=k, view=view)
        plans.append(plan)
        try:
            plan.unsupported = unsupported_reason(view)
            if not plan.unsupported:
                b = layer_of(view)
                assert b is not None
                plan.module = b.module
                plan.params = b.params(view)
        except (GoldenError, ValueError) as e:
            plan.unsupported = str(e)
        if plan.unsupported:
            continue
        plan.inputs, plan.outputs = golden_ports(view)
        plan.exp_cycles = int(rtl_cycles(view))
        plan.latency_declared = int(b.latency(view))
        plan.first_out = int(b.first_out(view))
        plan.memories = {pname: Path() for pname in b.files(view)}
        entry = entries.get(view.name)
        if entry is None:
            plan.error = f"node {view.name} is missing from {vectors_dir}/manifest.json"
        else:
            plan.error = attach_vectors(plan, entry, Path(vectors_dir), frames, edges_only)
    return plans, manifest


# ---------------------------------------------------------------------------------------------
# network plans


class NetworkError(GoldenError):
    """The graph cannot be stitched (unsupported node, unusable vectors, inconsistent wiring)."""


def fifo_capacity(depth: int) -> int:
    """Beats the sim/rtl fifo holds at DEPTH: registers (at least 2), or the RAM plus its 3-beat
    prefetch queue (sim/README.md)."""
    return max(depth, 2) if depth <= FIFO_REG_DEPTH_MAX else depth + 3


@dataclass
class Stream:
    """One tensor of the graph = one AXI stream: from a node's output port (or the network input)
    to a node's input port (or a network output)."""

    index: int
    tensor: str
    width: int  # padded TDATA width
    beats: int  # per frame
    bits: int  # element width
    elems: int  # elements per beat
    producer: tuple[NodePlan, int] | None = None  # None: a graph input
    consumer: tuple[NodePlan, int] | None = None  # None: a graph output
    hex: Path | None = None  # golden beats (graph inputs and outputs only)

    @property
    def tag(self) -> str:
        return f"s{self.index:03d}"

    @property
    def source(self) -> str:
        return f"{self.producer[0].view.name}.out{self.producer[1]}" if self.producer else "network input"

    @property
    def sink(self) -> str:
        return f"{self.consumer[0].view.name}.in{self.consumer[1]}" if self.consumer else "network output"

    def ends(self) -> str:
        return f"{self.source} -> {self.sink}"


@dataclass
class Fifo:
    """A StreamingFIFO node; `join` set when it feeds a join (a reconvergent-path FIFO)."""

    plan: NodePlan
    depth_graph: int
    depth: int  # simulated (scaled when reconvergent)
    join: str | None = None
    join_input: int | None = None
    fork: str | None = None  # from the hls report, when it lists this FIFO
    lookahead_pixels: int | None = None
    liveness_depth: int | None = None  # hls/fifo.py's bound; the graph's depth may be larger

    @property
    def beats_per_pixel(self) -> int | None:
        """hls/fifo.py's liveness bound is (lookahead + 2) * beats_per_pixel."""
        if self.lookahead_pixels is None or self.liveness_depth is None:
            return None
        return self.liveness_depth // (self.lookahead_pixels + 2)


@dataclass
class NetworkPlan:
    hw_dir: Path
    vectors_dir: Path
    manifest: dict
    nodes: list[NodePlan]
    streams: list[Stream]
    inputs: list[Stream]
    outputs: list[Stream]
    fifos: list[Fifo] = field(default_factory=list)
    fifo_scale: float = 1.0
    extra: dict[int, int] = field(default_factory=dict)  # what-if: stream index -> FIFO depth
    gated: bool = False  # FIFO search: run-time capacity gates on the reconvergent FIFOs

    @property
    def bottleneck(self) -> NodePlan:
        return max(self.nodes, key=lambda p: p.exp_cycles)

    def __post_init__(self) -> None:
        self._by_tensor = {s.tensor: s for s in self.streams}

    def stream_of(self, tensor: str) -> Stream:
        return self._by_tensor[tensor]

    def sink_tag(self, s: Stream) -> str:
        """Wires at the consumer's port: the tensor's own, or the what-if FIFO's output."""
        return f"{s.tag}x" if s.index in self.extra else s.tag


def _hls_fifo_decisions(hw_dir: Path) -> dict[tuple[str, int], dict]:
    """(join, input index) -> hls/fifo.py's decision, from the hls report when there is one."""
    path = hw_dir / "report" / "estimates.json"
    if not path.is_file():
        return {}
    fifos = json.loads(path.read_text()).get("folding", {}).get("fifos", [])
    return {(f["join"], int(f["input_index"])): f for f in fifos}


def _beats_disagree(s: Stream) -> str:
    """ "" when the producer's golden output beats are the consumer's golden input beats (or the
    vectors hold only the network's edges, which have no such pair)."""
    assert s.producer and s.consumer
    a, b = s.producer[0].outputs[s.producer[1]].hex, s.consumer[0].inputs[s.consumer[1]].hex
    if a is None or b is None:
        return ""
    la, lb = a.read_bytes().splitlines(), b.read_bytes().splitlines()
    if la == lb:
        return ""
    first = next((i for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y), min(len(la), len(lb)))
    return (
        f"tensor {s.tensor} ({s.ends()}): golden's output beats of the producer and input beats of "
        f"the consumer differ ({len(la)} vs {len(lb)} beats, first difference at beat {first})"
    )


def plan_network(
    hw_dir: Path,
    vectors_dir: Path,
    fifo_scale: float = 1.0,
    extra_fifo: float = 0.0,
    gated: bool = False,
    extra_depths: dict[str, int] | None = None,
) -> NetworkPlan:
    """Every node with its module and parameters, every tensor as a stream between two ports.

    Refuses (NetworkError) a graph the RTL library cannot implement whole, vectors that do not
    fit it, and wiring that cannot be a netlist: a tensor with two consumers or none, a producer
    and consumer disagreeing on the stream's width, beat count or golden beats."""
    if fifo_scale < 0 or extra_fifo < 0:
        raise ValueError(f"fifo_scale and extra_fifo must be >= 0, got {fifo_scale}, {extra_fifo}")
    hw_dir, vectors_dir = Path(hw_dir), Path(vectors_dir)
    plans, manifest = plan_graph(hw_dir, vectors_dir, edges_only=True)
    bad = [f"{p.view.name}: {p.unsupported or p.error}" for p in plans if p.unsupported or p.error]
    if bad:
        raise NetworkError("cannot stitch the graph:\n  " + "\n  ".join(bad))
    producer: dict[str, tuple[NodePlan, int]] = {}
    consumer: dict[str, tuple[NodePlan, int]] = {}
    problems = []
    for p in plans:
        for k, port in enumerate(p.outputs):
            producer[port.tensor] = (p, k)
        for k, port in enumerate(p.inputs):
            if port.tensor in consumer:
                problems.append(f"tensor {port.tensor} has two consumers (a stream has one)")
            consumer[port.tensor] = (p, k)
    g_in = [t["tensor"] for t in manifest["graph_inputs"]]
    g_out = [t["tensor"] for t in manifest["graph_outputs"]]
    streams: list[Stream] = []
    for t in dict.fromkeys([*g_in, *[port.tensor for p in plans for port in p.outputs]]):
        prod, cons = producer.get(t), consumer.get(t)
        if t in g_in and (prod or not cons):
            problems.append(f"graph input {t} must have no producer and one consumer")
        elif t in g_out and (cons or not prod):
            problems.append(f"graph output {t} must have a producer and no consumer")
        elif t not in g_in and t not in g_out and not cons:
            problems.append(f"tensor {t} ({prod[0].view.name if prod else '?'}) has no consumer")
        else:
            port = prod[0].outputs[prod[1]] if prod else cons[0].inputs[cons[1]]  # type: ignore[index]
            s = Stream(len(streams), t, port.width, port.beats, port.bits, port.elems, prod, cons, port.hex)
            if prod and cons:
                other = cons[0].inputs[cons[1]]
                if (other.width, other.beats) != (port.width, port.beats):
                    problems.append(
                        f"tensor {t} ({s.ends()}): the producer sends {port.beats} beats of {port.width} "
                        f"bits per frame, the consumer takes {other.beats} of {other.width}"
                    )
                elif problem := _beats_disagree(s):
                    problems.append(problem)
            streams.append(s)
    if problems:
        raise NetworkError("inconsistent graph wiring:\n  " + "\n  ".join(problems))
    by_tensor = {s.tensor: s for s in streams}
    net = NetworkPlan(
        hw_dir,
        vectors_dir,
        manifest,
        plans,
        streams,
        [by_tensor[t] for t in g_in],
        [by_tensor[t] for t in g_out],
    )
    net.fifo_scale, net.gated = fifo_scale, gated
    decisions = _hls_fifo_decisions(hw_dir)
    for p in plans:
        if p.module != "fifo":
            continue
        depth = int(p.params["DEPTH"])
        f = Fifo(p, depth, depth)
        cons = by_tensor[p.outputs[0].tensor].consumer
        if cons and cons[0].view.op_type in JOINS:
            f.join, f.join_input = cons[0].view.name, cons[1]
            if d := decisions.get((f.join, f.join_input)):
                f.fork, f.lookahead_pixels = d["fork"], int(d["lookahead_pixels"])
                f.liveness_depth = int(d["depth"])
            f.depth = max(2, round(depth * fifo_scale))
            p.params = {**p.params, "DEPTH": f.depth}
        net.fifos.append(f)
    if extra_fifo:
        net.extra = {
            s.index: max(2, round(extra_fifo * s.beats)) for s in streams if s.producer and s.consumer
        }
    for t, depth in (extra_depths or {}).items():
        s = by_tensor.get(t)
        if s is None or not (s.producer and s.consumer) or depth < 2:
            raise NetworkError(f"extra FIFO on {t}: not a node-to-node stream of this graph, or depth < 2")
        net.extra[s.index] = int(depth)
    return net
