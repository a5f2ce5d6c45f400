"""Output-channel splitting of an MVAU: folding without the PE | MH constraint.

FINN's MVAU needs PE | MH, so a layer's PE count jumps between divisors of its output channels
(MH = 96: PE 24, 32, 48 ...): when every layer of a network sits just below such a step, the whole
budget's next step is out of reach together (see benchmarks/RESULTS.md, folding). Splitting the
rows of the weight matrix into two MVAUs that see the same input stream lifts that:

    x ──DuplicateStreams──┬── MVAU (rows 0 .. a-1,  PE_a, fold F) ──┐
                          └── MVAU (rows a .. MH-1, PE_b, fold ≤ F) ─┴── StreamingConcat ── y

with a = PE_a·F the two parts finish a pixel in F·MW/SIMD cycles with ceil(MH/F) PEs in all,
any F. Only FINN layers are used (the duplicate, the two MVAUs, the concat); the concat's output
keeps the original tensor name, so tensor maps and the graph's interface are unchanged. The
extra hardware is one duplicator and one concat (no MACs); the reconvergent FIFO between them is
sized by ``hls.fifo`` like any other fork/join.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from onnx import helper

from golden.cycles import rtl_cycles
from golden.datatypes import parse_dtype
from golden.node import HW_DOMAIN, NodeView
from hls.constants import MVAU_MAX_SIMD_FOLD
from hls.steps import specialize


@dataclass(frozen=True)
class Split:
    """Rows ``[0, mh_a)`` on ``pe_a`` PEs and ``[mh_a, MH)`` on ``pe_b``; the duplicator runs at the
    MVAUs' ``simd``, the concat at ``cat_simd`` (a common divisor of both parts' rows)."""

    mh_a: int
    pe_a: int
    pe_b: int
    simd: int
    cat_simd: int

    def as_attr(self) -> list[int]:
        return [self.mh_a, self.pe_a, self.pe_b, self.simd, self.cat_simd]

    @classmethod
    def from_attr(cls, v) -> Split:
        return cls(*(int(x) for x in v))


def split_views(v: NodeView, s: Split) -> list[NodeView]:
    """NodeViews (attributes only) of the duplicator, both MVAUs and the concat replacing ``v``."""
    a = v.attrs
    mh, mw = int(a["MH"]), int(a["MW"])
    vecs = list(a.get("numInputVectors", [1]))
    dup = NodeView(
        v.name + ".dup",
        "DuplicateStreams",
        "hls",
        {
            "NumChannels": mw,
            "PE": s.simd,
            "NumOutputStreams": 2,
            "inputDataType": a["inputDataType"],
            "numInputVectors": vecs,
        },
    )
    parts = [
        NodeView(v.name + ".a", v.op_type, v.backend, {**a, "MH": s.mh_a, "PE": s.pe_a, "SIMD": s.simd}),
        NodeView(v.name + ".b", v.op_type, v.backend, {**a, "MH": mh - s.mh_a, "PE": s.pe_b, "SIMD": s.simd}),
    ]
    out_dt = a["outputDataType"]
    cat = NodeView(
        v.name + ".cat",
        "StreamingConcat",
        "hls",
        {
            "SIMD": s.cat_simd,
            "ChannelsPerStream": [s.mh_a, mh - s.mh_a],
            "inputDataTypes": [out_dt, out_dt],
            "numInputVectors": vecs,
        },
    )
    return [dup, *parts, cat]


def split_cycles(v: NodeView, s: Split) -> int:
    return max(rtl_cycles(x) for x in split_views(v, s))


def split_candidates(
    v: NodeView, max_bits: int, max_simd_fold: int = MVAU_MAX_SIMD_FOLD
) -> list[tuple[Split, int, int]]:
    """(split, cycles, MAC units) for every SIMD and fold F that PE | MH cannot reach: the fewest
    PEs, ceil(MH/F), and among those the widest concat. Cycles here are the MVAU/concat formula;
    the caller keeps the useful ones and re-scores them with ``split_cycles``."""
    a = v.attrs
    mh, mw = int(a["MH"]), int(a["MW"])
    n = math.prod(int(x) for x in a.get("numInputVectors", [1]))
    wb, ib, ob = (parse_dtype(a[k]).bits for k in ("weightDataType", "inputDataType", "outputDataType"))
    out = []
    for simd in (d for d in range(1, mw + 1) if mw % d == 0):
        if simd * ib > max_bits or mw > simd * max_simd_fold:
            continue
        for fold in range(2, mh):
            if mh % fold == 0:
                continue  # PE = MH / fold is a divisor: no split needed
            best = None
            for pe_a in range(mh // fold, max(mh // fold - 3, 0), -1):  # the fewest PEs lie here
                mh_a, rest = pe_a * fold, mh - pe_a * fold
                pe_b = next(p for p in range(1, rest + 1) if rest % p == 0 and rest // p <= fold)
                g = math.gcd(mh_a, rest)
                while g * ob > max_bits:
                    g = max(d for d in range(1, g) if g % d == 0)
                key = (pe_a + pe_b, -g)
                if max(pe_a, pe_b) * simd * wb > max_bits or max(pe_a, pe_b) * ob > max_bits:
                    continue
                if best is None or key < best[0]:
                    best = (key, Split(mh_a, pe_a, pe_b, simd, g))
            if best is None:
                continue
            s = best[1]
            cycles = max(n * (mw // simd) * fold, n * mh // s.cat_simd)
            out.append((s, cycles, (s.pe_a + s.pe_b) * simd))
    return out


def split_records(graph, attrs: dict[str, dict]) -> list[dict]:
    """The splits of a folding, for the report: named by the layer's output tensor (which the
    concat keeps), since node names are renumbered when the graph is re-specialised."""
    nodes = {n.name: n for n in graph.node}
    out = []
    for name, a in sorted(attrs.items()):
        if "split" not in a:
            continue
        s = Split.from_attr(a["split"])
        mh = next(x.i for x in nodes[name].attribute if x.name == "MH")
        out.append(
            {
                "output": nodes[name].output[0],
                "MH": int(mh),
                "rows": [s.mh_a, int(mh) - s.mh_a],
                "PE": [s.pe_a, s.pe_b],
                "SIMD": s.simd,
                "concat_SIMD": s.cat_simd,
            }
        )
    return out


def split_mvau(model, name: str, s: Split) -> None:
    """Replace MVAU ``name`` of a qonnx ModelWrapper by duplicator → two MVAUs → concat, in place.
    The new duplicator and concat are generic FINN nodes: specialise the graph afterwards."""
    from qonnx.util.basic import get_by_name

    g = model.graph
    idx, node = next((i, n) for i, n in enumerate(g.node) if n.name == name)
    mh = int(get_by_name(node.attribute, "MH").i)
    x, y = node.input[0], node.output[0]
    dt_in, dt_out = model.get_tensor_datatype(x), model.get_tensor_datatype(y)
    shape_in, shape_out = model.get_tensor_shape(x), model.get_tensor_shape(y)
    vecs = list(get_by_name(node.attribute, "numInputVectors").ints)
    w = model.get_initializer(node.input[1])  # (MW, MH)
    thr = model.get_initializer(node.input[2]) if len(node.input) > 2 else None
    rows = [(0, s.mh_a, s.pe_a), (s.mh_a, mh, s.pe_b)]
    new = [
        helper.make_node(
            "DuplicateStreams",
            [x],
            [f"{y}.split_in{i}" for i in range(2)],
            name=f"{name}_split_dup",
            domain=HW_DOMAIN,
            backend="fpgadataflow",
            NumChannels=int(shape_in[-1]),
            PE=s.simd,
            NumOutputStreams=2,
            inputDataType=dt_in.name,
            numInputVectors=vecs,
        )
    ]
    for i, (lo, hi, pe) in enumerate(rows):
        part = helper.make_node(
            node.op_type,
            [f"{y}.split_in{i}", f"{node.input[1]}.split{i}"],
            [f"{y}.split{i}"],
            name=f"{name}_split{i}",
            domain=node.domain,
        )
        part.attribute.extend(a for a in node.attribute if a.name not in ("MH", "PE", "SIMD"))
        part.attribute.extend(
            [helper.make_attribute(k, v) for k, v in (("MH", hi - lo), ("PE", pe), ("SIMD", s.simd))]
        )
        model.set_initializer(part.input[1], np.ascontiguousarray(w[:, lo:hi]))
        model.set_tensor_datatype(part.input[1], model.get_tensor_datatype(node.input[1]))
        if thr is not None:
            t = thr[lo:hi] if thr.shape[0] == mh else thr
            part.input.append(f"{node.input[2]}.split{i}")
            model.set_initializer(part.input[2], np.ascontiguousarray(t))
            model.set_tensor_datatype(part.input[2], model.get_tensor_datatype(node.input[2]))
        for t, shape, dt in (
            (part.input[0], shape_in, dt_in),
            (part.output[0], [*shape_out[:-1], hi - lo], dt_out),
        ):
            model.set_tensor_shape(t, list(shape))
            model.set_tensor_datatype(t, dt)
        new.append(part)
    new.append(
        helper.make_node(
            "StreamingConcat",
            [f"{y}.split0", f"{y}.split1"],
            [y],
            name=f"{name}_split_cat",
            domain=HW_DOMAIN,
            backend="fpgadataflow",
            SIMD=s.cat_simd,
            ChannelsPerStream=[s.mh_a, mh - s.mh_a],
            inputDataTypes=[dt_out.name] * 2,
            numInputVectors=vecs,
        )
    )
    g.node.remove(node)
    for k, n in enumerate(new):
        g.node.insert(idx + k, n)
    for t in node.input[1:]:
        if not any(t in n.input for n in g.node):
            g.initializer.remove(next(i for i in g.initializer if i.name == t))


def split_mvaus(model, attrs: dict[str, dict]):
    """Apply the MVAU splits of a folding (the ``split`` entries of ``attrs``, written by
    ``hls.folding.balance``) to a qonnx ModelWrapper whose folding attributes are set. Returns the
    model: without splits unchanged, with splits a new, re-specialised one (nodes renamed)."""
    splits = {name: Split.from_attr(a["split"]) for name, a in attrs.items() if "split" in a}
    if not splits:
        return model
    for name, s in sorted(splits.items()):
        split_mvau(model, name, s)
    return specialize(model)
