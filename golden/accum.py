"""Accumulator safety of MVAU layers, derived from the datatypes and the actual weights.

For every output channel c of an MVAU, each product x_i * W[i, c] ranges over
[min(W·lo, W·hi), max(W·lo, W·hi)] when x_i ranges over the input datatype [lo, hi]; the inputs are
independent, so the sums of those ends are the accumulator's exact extremes over all valid inputs.
The layer's range is the widest over its channels.  It must fit the accumulator the hardware uses
(`accDataType`; with `noActivation=1` the output carries the raw sum, so `outputDataType` too) —
otherwise some input would wrap in hardware while golden computes the exact sum.

`abs_bound` = max_c Σ_i |W[i, c]| · max(|lo|, |hi|) bounds the magnitude of *every partial sum*,
whatever order a BLAS adds the products in.  Below 2^24 (2^53) each partial sum is an integer that
float32 (float64) represents exactly, so a float matmul is bit-exact: golden's MVAU uses that fast
path only where this bound proves it, and int64 arithmetic elsewhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx

from golden.datatypes import DType, parse_dtype, smallest_dtype
from golden.errors import GoldenError
from golden.node import NodeView, load_model

FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53
INT64_SAFE = 1 << 62


@dataclass(frozen=True)
class AccRange:
    """One MVAU's accumulator: exact range over all valid inputs and whether the hardware holds it."""

    node: str
    op_type: str
    mw: int
    mh: int
    input_dtype: str
    weight_dtype: str
    acc_min: int
    acc_max: int
    abs_bound: int  # bound on |any partial sum| in any summation order
    needed: str  # smallest datatype holding [acc_min, acc_max]
    acc_dtype: str  # accDataType (what the hardware accumulates in)
    output_dtype: str | None  # outputDataType when noActivation=1 (the raw sum leaves the node)
    fits: bool
    arithmetic: str  # what golden computes this layer in: "float32", "float64" or "int64"

    def to_json(self) -> dict:
        return asdict(self)


def _fits(dt: DType, lo: int, hi: int) -> bool:
    return dt.min <= lo and hi <= dt.max


def arithmetic_for(abs_bound: int) -> str:
    """The cheapest exact arithmetic for a dot product whose partial sums stay below `abs_bound`."""
    if abs_bound < FLOAT32_EXACT:
        return "float32"
    if abs_bound < FLOAT64_EXACT:
        return "float64"
    return "int64"


def channel_bounds(node: NodeView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output channel (acc_min, acc_max, abs_bound) as int64 arrays of length MH.

    Cached on the node (its weights are constants).  binaryXnorMode and BIPOLAR x BIPOLAR count
    matching bits (golden's accumulator for them), so their range is [0, MW] per channel.
    """
    if "acc_bounds" in node.cache:
        return node.cache["acc_bounds"]
    if node.op_type != "MVAU":
        raise GoldenError(f"node {node.name} ({node.full_op_type}) is not an MVAU")
    attrs = node.attrs
    mw, mh = int(attrs["MW"]), int(attrs["MH"])
    idt = parse_dtype(attrs.get("inputDataType", ""))
    wdt = parse_dtype(attrs.get("weightDataType", ""))
    if int(attrs.get("binaryXnorMode", 0)) or (idt.bipolar and wdt.bipolar):
        zeros, full = np.zeros(mh, dtype=np.int64), np.full(mh, mw, dtype=np.int64)
        bounds = (zeros, full, full)
    else:
        if 1 in node.inits:
            w = np.asarray(node.inits[1])
            if w.dtype.kind not in "iu":
                raise GoldenError(f"node {node.name} (MVAU): weights are not integers")
            w = w.astype(np.int64)
            if w.shape != (mw, mh):
                raise GoldenError(
                    f"node {node.name} (MVAU): weights of shape {list(w.shape)}, expected [{mw}, {mh}]"
                )
            if int(np.abs(w).max(initial=0)) * max(abs(idt.min), abs(idt.max)) * mw >= INT64_SAFE:
                raise GoldenError(f"node {node.name} (MVAU): accumulator beyond 62 bits")
            a, b = w * idt.min, w * idt.max
            lo = np.minimum(a, b).sum(axis=0)
            hi = np.maximum(a, b).sum(axis=0)
            absb = np.abs(w).sum(axis=0) * max(abs(idt.min), abs(idt.max))
        else:  # streamed weights: worst case over the weight datatype
            ends = [wdt.min * idt.min, wdt.min * idt.max, wdt.max * idt.min, wdt.max * idt.max]
            lo = np.full(mh, mw * min(ends), dtype=np.int64)
            hi = np.full(mh, mw * max(ends), dtype=np.int64)
            absb = np.full(mh, mw * max(abs(e) for e in ends), dtype=np.int64)
        bounds = (lo.astype(np.int64), hi.astype(np.int64), absb.astype(np.int64))
    node.cache["acc_bounds"] = bounds
    return bounds


def mvau_acc_range(node: NodeView) -> AccRange:
    """The accumulator record of one MVAU node."""
    lo_c, hi_c, abs_c = channel_bounds(node)
    lo, hi, absb = int(lo_c.min(initial=0)), int(hi_c.max(initial=0)), int(abs_c.max(initial=0))
    attrs = node.attrs
    adt = parse_dtype(attrs.get("accDataType", "INT32"))
    no_act = bool(int(attrs.get("noActivation", 0)))
    odt = parse_dtype(attrs["outputDataType"]) if no_act else None
    fits = _fits(adt, lo, hi) and (odt is None or _fits(odt, lo, hi))
    return AccRange(
        node=node.name,
        op_type=node.full_op_type,
        mw=int(attrs["MW"]),
        mh=int(attrs["MH"]),
        input_dtype=str(attrs["inputDataType"]),
        weight_dtype=str(attrs["weightDataType"]),
        acc_min=lo,
        acc_max=hi,
        abs_bound=absb,
        needed=smallest_dtype(lo).name if lo < 0 else smallest_dtype(hi).name,
        acc_dtype=adt.name,
        output_dtype=None if odt is None else odt.name,
        fits=fits,
        arithmetic=arithmetic_for(absb),
    )


def _views(model: onnx.ModelProto | str | Path) -> list[NodeView]:
    m = load_model(model)
    return [NodeView.from_onnx(n, m.graph) for n in m.graph.node if n.op_type.startswith("MVAU")]


def accumulator_table(model: onnx.ModelProto | str | Path) -> list[AccRange]:
    """One AccRange per MVAU of the graph, in graph order."""
    return [mvau_acc_range(v) for v in _views(model)]


def check_accumulators(rows: list[AccRange]) -> None:
    """GoldenError naming every MVAU whose accumulator range exceeds the width the hardware uses."""
    bad = [r for r in rows if not r.fits]
    if bad:
        detail = "; ".join(
            f"{r.node}: acc in [{r.acc_min}, {r.acc_max}] (needs {r.needed}) but accDataType={r.acc_dtype}"
            + (f", outputDataType={r.output_dtype}" if r.output_dtype else "")
            for r in bad
        )
        raise GoldenError(f"accumulator overflow possible in hardware: {detail}")


def format_table(rows: list[AccRange]) -> str:
    """Markdown table of the accumulator ranges (for reports and the vectors README)."""
    head = "| node | MW×MH | in × w | acc range | needs | accDataType | out (noAct) | fits | golden |\n"
    head += "|---|---|---|---|---|---|---|---|---|\n"
    return head + "".join(
        f"| {r.node} | {r.mw}×{r.mh} | {r.input_dtype} × {r.weight_dtype} | [{r.acc_min}, {r.acc_max}] | "
        f"{r.needed} | {r.acc_dtype} | {r.output_dtype or '-'} | {'yes' if r.fits else '**NO**'} | "
        f"{r.arithmetic} |\n"
        for r in rows
    )
