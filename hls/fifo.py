"""FIFO depths for reconvergent paths, from an analytic bound (derivation in hls/README.md).

A fork (DuplicateStreams, StreamingSplit) pushes each pixel into all its branches at once; a join
(StreamingConcat, Elementwise Add/Max/Mul) takes pixel p from every input together. If branch L needs
fork pixels up to index ``need_L(p)`` before it can deliver its pixel p, the other branch S must
be able to hold the ``need_L(p) - need_S(p) + 1`` pixels the fork has already pushed into it, or
the fork stalls on S while L starves: a deadlock. ``need`` is exact index arithmetic per layer:

- sliding window (K, stride s, on W-wide rows): out (r, c) needs in ((r*s + K - 1), (c*s + K - 1))
  — FINN's RTL window buffer ``((K-1)*W + K)`` pixels for the first window is this formula at (0, 0);
- padding: out (r, c) needs the last real input pixel at or before (r - top, c - left);
- nearest upsampling by f: out (r, c) needs in (r // f, c // f);
- everything else (MVAU, thresholds, pool over windows, joins, forks, DWC, FIFO): pixel p needs p.

The depth stored on the short input is ``(max_p(need_L(p) - need_S(p)) + 2) * beats_per_pixel``:
one extra pixel because a join may have started reading pixel p from one input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from golden.node import decode_attr, split_op_type

JOINS = ("StreamingConcat", "ElementwiseAdd", "ElementwiseMax", "ElementwiseMul")
FORKS = ("DuplicateStreams", "StreamingSplit")


@dataclass
class FifoDecision:
    join: str
    input_index: int
    fork: str
    lookahead_pixels: int
    depth: int  # beats


def _attrs(node) -> dict:
    return {a.name: decode_attr(a) for a in node.attribute}


def _base(node) -> str:
    return split_op_type(node.op_type)[0]


class PixelMaps:
    """Which input pixel each output pixel of a node needs, composed along the paths of the graph."""

    def __init__(self, graph: onnx.GraphProto, shapes: dict[str, tuple[int, ...]]):
        self.nodes = list(graph.node)
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.shapes = shapes

    def hw(self, tensor: str) -> tuple[int, int]:
        s = self.shapes[tensor]
        return int(s[1]), int(s[2])

    def need(self, node, out_idx: np.ndarray, in_tensor: str, out_tensor: str) -> np.ndarray:
        """Input raster index node must have consumed to emit output raster indices ``out_idx``."""
        base = _base(node)
        a = _attrs(node)
        ho, wo = self.hw(out_tensor)
        hi, wi = self.hw(in_tensor)
        r, c = out_idx // wo, out_idx % wo
        if base == "ConvolutionInputGenerator":
            kh, kw = a["ConvKernelDim"]
            sh, sw = a.get("Stride", [1, 1])
            rr, cc = r * sh + kh - 1, c * sw + kw - 1
            return np.minimum(rr * wi + cc, hi * wi - 1)
        if base == "FMPadding":
            top, left = a["Padding"][0], a["Padding"][1]
            ri, ci = r - top, c - left
            idx = np.where(ci < 0, ri * wi - 1, np.where(ci >= wi, ri * wi + wi - 1, ri * wi + ci))
            idx = np.where(ri < 0, -1, np.where(ri >= hi, hi * wi - 1, idx))
            return idx
        if base == "UpsampleNearestNeighbour":
            f_h, f_w = ho // hi, wo // wi
            return (r // f_h) * wi + c // f_w
        if base == "GlobalAccPool":  # its one output pixel needs the whole frame
            return np.full_like(out_idx, hi * wi - 1)
        if (hi, wi) != (ho, wo):
            raise ValueError(f"{node.name}: no pixel mapping for {base} from {hi}x{wi} to {ho}x{wo}")
        return out_idx

    def descendants(self, node) -> set[str]:
        consumers: dict[str, list] = {}
        for n in self.nodes:
            for i in n.input:
                consumers.setdefault(i, []).append(n)
        seen, stack = set(), list(node.output)
        while stack:
            t = stack.pop()
            for c in consumers.get(t, []):
                if c.name not in seen:
                    seen.add(c.name)
                    stack.extend(c.output)
        return seen

    def ancestors(self, tensor: str) -> set[str]:
        seen, stack = set(), [tensor]
        while stack:
            t = stack.pop()
            n = self.producer.get(t)
            if n is None or n.name in seen:
                continue
            seen.add(n.name)
            stack.extend(i for i in n.input if i in self.producer)
        return seen

    def fork_index_maps(self, fork) -> dict[str, np.ndarray]:
        """For every tensor below ``fork``: pixel p -> the last fork pixel any path needs for p.

        Dynamic programming in topological order over the fork's descendants; composed index
        maps are monotone, so the worst path is the element-wise maximum over a node's inputs.
        """
        below = self.descendants(fork)
        maps: dict[str, np.ndarray] = {}
        for t in fork.output:
            h, w = self.hw(t)
            maps[t] = np.arange(h * w)
        for n in self.nodes:
            if n.name not in below:
                continue
            for t_out in n.output:
                h, w = self.hw(t_out)
                pix = np.arange(h * w)
                worst = None
                for t_in in n.input:
                    if t_in not in maps:
                        continue
                    idx = self.need(n, pix, t_in, t_out)
                    src = maps[t_in]
                    got = np.where(idx < 0, -1, src[np.clip(idx, 0, src.size - 1)])
                    worst = got if worst is None else np.maximum(worst, got)
                if worst is not None:
                    maps[t_out] = worst
        return maps


def reconvergent_fifos(
    graph: onnx.GraphProto, shapes: dict[str, tuple[int, ...]], beats_per_pixel
) -> list[FifoDecision]:
    """Depth for every input of every join whose branches reconverge from a common fork.

    ``beats_per_pixel(join_node, input_index)`` gives the join input's stream beats per pixel.
    """
    g = PixelMaps(graph, shapes)
    decisions = []
    for j in g.nodes:
        if _base(j) not in JOINS or len(j.input) < 2:
            continue
        anc = [g.ancestors(i) for i in j.input]
        common = set.intersection(*anc)
        forks = [n for n in g.nodes if n.name in common and _base(n) in FORKS]
        if not forks:
            continue
        fork = forks[-1]  # the nearest: last in topological order
        maps = g.fork_index_maps(fork)
        need = [maps[i] for i in j.input]
        for k in range(len(j.input)):
            lead = max(int((need[m] - need[k]).max()) for m in range(len(j.input)) if m != k)
            if lead <= 0:
                continue
            depth = (lead + 2) * int(beats_per_pixel(j, k))
            decisions.append(FifoDecision(j.name, k, fork.name, lead, depth))
    return decisions


TERMS = ("liveness", "throughput", "sized")  # what can set a FIFO's depth, the floor first


def merged_fifos(
    liveness: list[FifoDecision], sized: dict[tuple[str, int], int], throughput=()
) -> dict[tuple[str, int], tuple[int, str]]:
    """(depth in beats, the term that set it) per (consumer node, input index): the liveness bound
    of ``reconvergent_fifos`` united with the throughput depths of ``hls.schedule`` and with depths
    sized by simulation (``sized_fifo_depths``), never below the bound; a tie names the floor."""
    merged: dict[tuple[str, int], tuple[int, str]] = {}
    terms = (
        ("liveness", {(f.join, f.input_index): f.depth for f in liveness}),
        ("throughput", {(t.consumer, t.input_index): t.depth for t in throughput}),
        ("sized", sized),
    )
    for term, depths in terms:
        for key, d in depths.items():
            if d > merged.get(key, (0, ""))[0]:
                merged[key] = (d, term)
    return merged


def sized_fifo_depths(path, graph: onnx.GraphProto) -> dict[tuple[str, int], int]:
    """(consumer node, input index) -> depth from a ``sim.fifo_sizing`` result (fifo_depths.json).

    The file holds the fingerprint of the graph it was sized on (``golden.node.graph_fingerprint``:
    nodes, op types, folding; FIFOs aside), and ``graph`` -- before its FIFOs are inserted -- must
    have the same. Raises ValueError otherwise, or naming the first entry this graph does not have."""
    import json

    from golden.node import graph_fingerprint

    try:
        doc = json.loads(open(path).read())
        entries, fingerprint = doc["inputs"], doc["graph_fingerprint"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{path}: not a FIFO-sizing result (fifo_depths.json of sim.fifo_sizing): {e}"
        ) from e
    if fingerprint != graph_fingerprint(graph):
        raise ValueError(
            f"{path}: the depths were sized for another graph (configuration, budget, splits or "
            "folding differ: the graph fingerprints do not match)"
        )
    nodes = {n.name: n for n in graph.node}
    out = {}
    for e in entries:
        name, k, depth = e.get("node"), e.get("input"), e.get("depth")
        n = nodes.get(name)
        if n is None or not isinstance(k, int) or not 0 <= k < len(n.input) or not isinstance(depth, int):
            raise ValueError(
                f"{path}: entry {e} names no input of this graph: the depths were sized for another "
                "graph (configuration, budget or splits)"
            )
        if depth < 2:
            raise ValueError(f"{path}: entry {e}: a FIFO depth must be at least 2")
        out[(name, k)] = depth
    return out
