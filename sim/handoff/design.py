"""What the package holds: the network's instances, its parameter memories and their load map,
its stream ports and the throughput it promises -- planned from the stitched network plan.

`design.json` in the package is this record: the area run (sim.area) and the README read it,
nothing reads the repository's internals back."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from golden.errors import GoldenError
from sim.layers import LAYERS, sources
from sim.plan import MEMORIES, NetworkPlan, memory_geometry
from sim.verify import tail_count

FORMAT = "hwcsp-rtl-package"
WEIGHTS = ("rom", "ram")
LOAD_BITS = 32  # data width of the load port (RAM weights)
PREFIX_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}_")


class PackageError(GoldenError):
    """The package cannot be made (bad prefix, weights kind, missing tool, inconsistent design)."""


@dataclass
class StreamPort:
    """An AXI stream of the top: s_axis_<k> (input) or m_axis_<k> (output)."""

    name: str
    tensor: str
    width: int  # TDATA bits (padded to a byte multiple)
    elems: int  # elements per beat
    bits: int  # element width
    beats: int  # beats per frame
    signed: bool


@dataclass
class Memory:
    """A parameter memory (weights or thresholds of one node) and its place in the load map."""

    id: int
    instance: str
    node: str
    holds: str  # weights | thresholds
    param: str  # WEIGHT_FILE | THRESH_FILE
    port: str  # the module's load port prefix (wld, tld)
    words: int
    bits: int
    init: str  # image file, relative to the package
    chunks: int  # LOAD_BITS-bit writes per word
    addr_bits: int  # width of its load port's address


@dataclass
class Instance:
    name: str
    node: str
    op_type: str
    module: str  # unprefixed library module
    params: dict[str, Any]  # HDL parameters (memory images as package paths)


@dataclass
class Design:
    model: str
    graph_sha256: str
    prefix: str
    weights: str
    clk_ns: float | None
    inputs: list[StreamPort]
    outputs: list[StreamPort]
    instances: list[Instance]
    memories: list[Memory]
    modules: list[str]  # library modules used, dependencies included
    interval: int  # cycles per frame the testbench holds the network to (within TOLERANCE)
    interval_source: str  # "measured" (hwcsp verify) or "estimate" (the bottleneck's cycle model)
    bottleneck: dict[str, Any]
    latency_cycles: int | None  # first input beat to the first frame's last output beat (measured)
    frames: int  # frames the testbench streams back to back (2L + 4)
    tail: int  # intervals judged (the last third)
    vector_frames: int
    load_map: dict[str, int] = field(default_factory=dict)  # bit fields of the load address
    sources: list[str] = field(default_factory=list)

    @property
    def top(self) -> str:
        return f"{self.prefix}network"

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "top": self.top, **asdict(self)}


def default_prefix(hw_dir: Path, sha: str) -> str:
    """<model config>_<6 hex of the graph's sha256>_: readable, and different for every graph."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", hw_dir.parent.name).strip("_").lower() or "hwcsp"
    name = re.sub(r"_w1_w4a4$|_w4a4$", "", name)[:24].rstrip("_")
    if not name[0].isalpha():
        name = "n" + name
    return f"{name}_{sha[:6]}_"


def check_prefix(prefix: str) -> str:
    if not PREFIX_RE.fullmatch(prefix):
        raise PackageError(
            f"module prefix {prefix!r}: must be a Verilog identifier of at most 40 characters that "
            "starts with a letter and ends with '_' (e.g. 'mychip_csp_')"
        )
    return prefix


def _port(name: str, s: Any, dtype_signed: bool) -> StreamPort:
    return StreamPort(name, s.tensor, s.width, s.elems, s.bits, s.beats, dtype_signed)


def plan_design(
    net: NetworkPlan,
    weights: str,
    prefix: str | None,
    measured: dict[str, Any] | None,
    estimate_frames: int,
    clk_ns: float | None,
) -> Design:
    """The package's design from the stitched plan. `measured` is hwcsp verify's report of the
    same graph (its interval becomes the promise), else the bottleneck's cycle model is."""
    if weights not in WEIGHTS:
        raise PackageError(f"WEIGHTS={weights!r}: use one of {', '.join(WEIGHTS)}")
    sha = str(net.manifest.get("graph_sha256", ""))
    prefix = check_prefix(prefix or default_prefix(net.hw_dir, sha))
    signed = {t["tensor"]: str(t.get("dtype", "")).startswith("INT") for t in
              [*net.manifest["graph_inputs"], *net.manifest["graph_outputs"]]}  # fmt: skip
    ins = [_port(f"s_axis_{k}", s, signed.get(s.tensor, False)) for k, s in enumerate(net.inputs)]
    outs = [_port(f"m_axis_{k}", s, signed.get(s.tensor, False)) for k, s in enumerate(net.outputs)]
    instances, memories = [], []
    for p in net.nodes:
        params = dict(p.params)
        geometry = memory_geometry(p)
        loads = dict((param, pre) for pre, param in LAYERS[p.module].loads)
        widths = LAYERS[p.module].load_widths(p.params)
        for pname in p.memories:
            if pname not in geometry:
                continue
            words, bits = geometry[pname]
            init = f"mem/{p.tag}_{MEMORIES[pname]}.hex"
            memories.append(
                Memory(
                    len(memories),
                    p.tag,
                    p.view.name,
                    MEMORIES[pname],
                    pname,
                    loads[pname],
                    words,
                    bits,
                    init,
                    math.ceil(bits / LOAD_BITS),
                    widths[loads[pname]][0],
                )
            )
            params[pname] = init if weights == "rom" else ""
        if LAYERS[p.module].loads:
            params["LOAD"] = weights == "ram"
        instances.append(Instance(p.tag, p.view.name, p.view.full_op_type, p.module, params))
    used: dict[str, None] = {}
    for inst in instances:
        for src in sources(inst.module):
            used[src.stem] = None
    bn = net.bottleneck
    if measured and measured.get("graph_sha256") == sha and measured.get("measured", {}).get("interval"):
        interval, source = int(measured["measured"]["interval"]), "measured"
        frames = int(measured.get("frames") or estimate_frames)
        latency = measured.get("latency_first_frame")
    else:
        interval, source, frames, latency = bn.exp_cycles, "estimate", estimate_frames, None
    d = Design(
        model=f"{net.hw_dir.parent.name}/{net.hw_dir.name}",
        graph_sha256=sha,
        prefix=prefix,
        weights=weights,
        clk_ns=clk_ns,
        inputs=ins,
        outputs=outs,
        instances=instances,
        memories=memories,
        modules=sorted(used),
        interval=interval,
        interval_source=source,
        bottleneck={"instance": bn.tag, "node": bn.view.name, "cycles": bn.exp_cycles},
        latency_cycles=int(latency) if latency is not None else None,
        frames=frames,
        tail=tail_count(frames),
        vector_frames=int(net.manifest["frames"]),
    )
    if memories and weights == "ram":
        d.load_map = {
            "chunk_bits": max(1, math.ceil(math.log2(max(m.chunks for m in memories)))),
            "word_bits": max(m.addr_bits for m in memories),
            "mem_bits": max(1, math.ceil(math.log2(len(memories)))),
        }
    return d


def load_address(d: Design, m: Memory, word: int, chunk: int) -> int:
    """Address of chunk `chunk` of word `word` of memory `m` on the load port."""
    lm = d.load_map
    return (m.id << (lm["word_bits"] + lm["chunk_bits"])) | (word << lm["chunk_bits"]) | chunk


def graph_sha(hw_dir: Path) -> str:
    return hashlib.sha256((hw_dir / "model.hw.onnx").read_bytes()).hexdigest()
