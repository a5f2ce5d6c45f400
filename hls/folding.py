"""Layer-balanced folding: the cheapest PE/SIMD per layer that meets one bottleneck target.

A dataflow pipeline runs at the pace of its slowest node, so every MAC unit spent on a layer
that is faster than the bottleneck is wasted. For a candidate bottleneck ``T`` each node takes its
cheapest folding with ``cycles <= T`` (MAC units Σ PE·SIMD for MVAUs; the narrowest stream for the
rest); the cost is monotone in ``T``, so a binary search over the distinct cycle values finds the
smallest ``T`` whose MVAUs fit the budget. All cycle numbers come from ``golden.cycles`` — the
same model the reports and the RTL tests use.

Constraints (FINN's): PE | MH and SIMD | MW for MVAUs; SIMD | channels for padding and sliding
windows (``parallel_window`` only at SIMD = channels); a depthwise sliding window shares its SIMD
with the Pool it feeds (their stream order depends on it); Concat/Split SIMD divides every
stream's channels; every stream at most ``MAX_STREAM_BITS`` wide (HLS ap_uint limit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import reduce

import onnx

from golden.cycles import exp_cycles
from golden.node import NodeView, decode_attr, split_op_type
from golden.streams import in_elems_per_beat, out_elems_per_beat

MAX_STREAM_BITS = 8191  # finn.util.basic.MAX_ALLOWED_AP_INT_W


class FoldingError(ValueError):
    pass


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _bits(dtype: str) -> int:
    return int("".join(c for c in dtype if c.isdigit()) or 1)


@dataclass(frozen=True)
class Choice:
    attrs: dict  # folding attributes per node name (a unit may fold several nodes together)
    cycles: int
    cost: int  # MAC units (PE*SIMD) — MVAUs only
    width: int  # sum of stream parallelism, the tie-breaker (narrower = smaller)


@dataclass
class Unit:
    """Nodes folded together (one node, or a depthwise sliding window with its Pool)."""

    names: list[str]
    choices: list[Choice]
    macs: int = 0  # MACs per frame (MVAUs)
    nodes: list = field(default_factory=list)  # onnx nodes, entry first, exit last

    def best(self, target: int) -> Choice:
        ok = [c for c in self.choices if c.cycles <= target]
        return min(ok, key=lambda c: (c.cost, c.width, c.cycles))


@dataclass
class FoldingResult:
    target: int  # the bottleneck the search settled on (over folded nodes)
    attrs: dict[str, dict] = field(default_factory=dict)
    mac_units: int = 0
    total_macs: int = 0
    floor: int = 0  # no folding can go below this many cycles (some node at full parallelism)
    floor_node: str = ""


def light_view(node: onnx.NodeProto, **attrs) -> NodeView:
    """A NodeView without initializer arrays (cycle and stream queries need only attributes)."""
    op_type, backend = split_op_type(node.op_type)
    base = {a.name: decode_attr(a) for a in node.attribute}
    return NodeView(node.name, op_type, backend, {**base, **attrs}, tuple(node.input), tuple(node.output), {})


def _mvau_unit(node) -> Unit:
    v = light_view(node)
    mh, mw = int(v.attrs["MH"]), int(v.attrs["MW"])
    wb, ib = _bits(v.attrs["weightDataType"]), _bits(v.attrs["inputDataType"])
    ob = _bits(v.attrs["outputDataType"])
    choices = []
    for pe in divisors(mh):
        for simd in divisors(mw):
            if pe * simd * wb > MAX_STREAM_BITS or simd * ib > MAX_STREAM_BITS or pe * ob > MAX_STREAM_BITS:
                continue
            a = {"PE": pe, "SIMD": simd}
            choices.append(Choice({node.name: a}, exp_cycles(light_view(node, **a)), pe * simd, pe + simd))
    vecs = math.prod(int(x) for x in v.attrs.get("numInputVectors", [1]))
    return Unit([node.name], choices, macs=mh * mw * vecs, nodes=[node])


def _simple_unit(node, attr: str, channels: int, bits: int, extra=None) -> Unit:
    choices = []
    for p in divisors(channels):
        if p * bits > MAX_STREAM_BITS:
            continue
        a = {attr: p, **(extra or {})}
        choices.append(Choice({node.name: a}, exp_cycles(light_view(node, **a)), 0, p))
    return Unit([node.name], choices, nodes=[node])


def _swg_unit(node) -> Unit:
    v = light_view(node)
    c = int(v.attrs["IFMChannels"])
    bits = _bits(v.attrs["inputDataType"])
    k = math.prod(int(x) for x in v.attrs["ConvKernelDim"])
    choices = []
    for simd in divisors(c):
        for pw in (0, 1) if (simd == c and k > 1) else (0,):
            out_w = simd * (k if pw else 1)
            if out_w * bits > MAX_STREAM_BITS:
                continue
            a = {"SIMD": simd, "parallel_window": pw}
            choices.append(Choice({node.name: a}, exp_cycles(light_view(node, **a)), 0, out_w))
    return Unit([node.name], choices, nodes=[node])


def _dw_pool_unit(swg, pool) -> Unit:
    c = int(light_view(pool).attrs["Channels"])
    bits = _bits(light_view(swg).attrs["inputDataType"])
    choices = []
    for p in divisors(c):
        if p * bits > MAX_STREAM_BITS:
            continue
        sa, pa = {"SIMD": p, "parallel_window": 0}, {"PE": p}
        cyc = max(exp_cycles(light_view(swg, **sa)), exp_cycles(light_view(pool, **pa)))
        choices.append(Choice({swg.name: sa, pool.name: pa}, cyc, 0, p))
    return Unit([swg.name, pool.name], choices, nodes=[swg, pool])


def folding_units(graph: onnx.GraphProto) -> list[Unit]:
    """The foldable units of a (generic or specialised) HW graph; DWCs and FIFOs are not folded."""
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    units, done = [], set()
    for n in graph.node:
        base = n.op_type.split("_")[0]
        v = light_view(n)
        a = v.attrs
        if n.name in done or base in ("StreamingDataWidthConverter", "StreamingFIFO"):
            continue
        if base == "MVAU":
            units.append(_mvau_unit(n))
        elif base == "ConvolutionInputGenerator" and int(a.get("depthwise", 0)):
            pool = [c for c in consumers.get(n.output[0], []) if c.op_type.startswith("Pool")]
            if len(pool) != 1:
                raise FoldingError(f"{n.name}: a depthwise sliding window must feed exactly one Pool")
            units.append(_dw_pool_unit(n, pool[0]))
            done.add(pool[0].name)
        elif base == "ConvolutionInputGenerator":
            units.append(_swg_unit(n))
        elif base == "Pool":
            if not producer.get(n.input[0]) or not producer[n.input[0]].op_type.startswith(
                "ConvolutionInput"
            ):
                raise FoldingError(f"{n.name}: a Pool must be fed by a sliding window")
        elif base == "FMPadding":
            units.append(_simple_unit(n, "SIMD", int(a["NumChannels"]), _bits(a["inputDataType"])))
        elif base in ("StreamingConcat", "StreamingSplit"):
            g = reduce(math.gcd, [int(x) for x in a["ChannelsPerStream"]])
            dt = a.get("inputDataType") or a.get("inputDataTypes")[0]
            units.append(_simple_unit(n, "SIMD", g, _bits(dt)))
        elif base in ("Thresholding", "DuplicateStreams"):
            units.append(_simple_unit(n, "PE", int(a["NumChannels"]), _bits(a["inputDataType"])))
        elif base.startswith("Elementwise"):
            ch = int(a["out_shape"][-1]) if "out_shape" in a else int(a["lhs_shape"][-1])
            units.append(_simple_unit(n, "PE", ch, _bits(a.get("lhs_dtype", "INT32"))))
        elif base == "UpsampleNearestNeighbour":
            units.append(_simple_unit(n, "SIMD", int(a["NumChannels"]), _bits(a["inputDataType"])))
        else:
            raise FoldingError(f"{n.name}: no folding rule for op type {n.op_type}")
    return units


def _epb(node, attrs: dict, side: str, ind: int) -> int:
    """Elements per beat of a node's input or output stream ``ind`` under folding ``attrs``."""
    v = light_view(node, **attrs.get(node.name, {}))
    return int(in_elems_per_beat(v, ind) if side == "in" else out_elems_per_beat(v, ind))


def harmonize(units: list[Unit], target: int, attrs: dict[str, dict]) -> dict[str, dict]:
    """Among equally cheap foldings that meet ``target``, pick the ones whose stream widths equal
    their neighbours', so fewer width converters are needed. Backward then forward over the graph."""
    attrs = {k: dict(v) for k, v in attrs.items()}
    out_of: dict[str, tuple] = {}  # tensor -> (exit node, output index)
    in_of: dict[str, list] = {}  # tensor -> [(entry node, input index)]
    for u in units:
        for j, t in enumerate(u.nodes[-1].output):
            out_of[t] = (u.nodes[-1], j)
        for j, t in enumerate(u.nodes[0].input):
            in_of.setdefault(t, []).append((u.nodes[0], j))

    def matches(u: Unit, c: Choice, cur: dict) -> int:
        trial = {**cur, **c.attrs}
        entry, exit_ = u.nodes[0], u.nodes[-1]
        score = 0
        for j, t in enumerate(entry.input):
            if t in out_of:
                p, k = out_of[t]
                score += _epb(entry, trial, "in", j) == _epb(p, trial, "out", k)
        for j, t in enumerate(exit_.output):
            for cns, k in in_of.get(t, []):
                score += _epb(exit_, trial, "out", j) == _epb(cns, trial, "in", k)
        return score

    for order in (reversed(units), units):
        for u in order:
            best_cost = min(c.cost for c in u.choices if c.cycles <= target)
            ok = [c for c in u.choices if c.cycles <= target and c.cost == (best_cost if u.macs else 0)]
            if len(ok) < 2:
                continue
            pick = max(ok, key=lambda c: (matches(u, c, attrs), -c.width))
            attrs.update(pick.attrs)
    return attrs


def _assign(units: list[Unit], target: int) -> tuple[dict[str, dict], int]:
    """Cheapest choice per unit meeting ``target`` (every unit can, since target >= floor)."""
    attrs, cost = {}, 0
    for u in units:
        c = u.best(target)
        attrs.update(c.attrs)
        cost += c.cost
    return attrs, cost


def balance(
    graph: onnx.GraphProto, mac_budget: int | None = None, target_cycles: int | None = None
) -> FoldingResult:
    """Fold for the smallest bottleneck within ``mac_budget`` MAC units, or for ``target_cycles``."""
    return balance_units(folding_units(graph), mac_budget, target_cycles)


def balance_units(
    units: list[Unit], mac_budget: int | None = None, target_cycles: int | None = None
) -> FoldingResult:
    if (mac_budget is None) == (target_cycles is None):
        raise ValueError("give exactly one of mac_budget and target_cycles")
    floor, floor_node = max((min(c.cycles for c in u.choices), u.names[0]) for u in units)
    total_macs = sum(u.macs for u in units)
    if target_cycles is not None:
        if target_cycles < floor:
            raise FoldingError(
                f"target of {target_cycles} cycles/frame is below the floor of {floor} cycles "
                f"({floor_node} at full parallelism)"
            )
        attrs, cost = _assign(units, target_cycles)
        return FoldingResult(
            target_cycles, harmonize(units, target_cycles, attrs), cost, total_macs, floor, floor_node
        )
    minimum = sum(1 for u in units if u.macs)  # PE = SIMD = 1 everywhere
    if mac_budget < minimum:
        raise FoldingError(
            f"a budget of {mac_budget} MAC units is below the minimum of {minimum} (one per MVAU)"
        )
    candidates = sorted({c.cycles for u in units for c in u.choices if c.cycles >= floor})
    lo, hi = 0, len(candidates) - 1
    while lo < hi:  # smallest feasible candidate; cost is monotone non-increasing in the target
        mid = (lo + hi) // 2
        if _assign(units, candidates[mid])[1] <= mac_budget:
            hi = mid
        else:
            lo = mid + 1
    attrs, cost = _assign(units, candidates[lo])
    return FoldingResult(
        candidates[lo], harmonize(units, candidates[lo], attrs), cost, total_macs, floor, floor_node
    )


def apply_folding(model, attrs: dict[str, dict]) -> None:
    """Write folding attributes into a qonnx ModelWrapper (generic or specialised nodes)."""
    from qonnx.custom_op.registry import getCustomOp

    names = {n.name: n for n in model.graph.node}
    for name, a in attrs.items():
        inst = getCustomOp(names[name])
        for k, v in a.items():
            inst.set_nodeattr(k, int(v))


def mac_units(graph: onnx.GraphProto) -> int:
    total = 0
    for n in graph.node:
        if n.op_type.startswith("MVAU"):
            v = light_view(n)
            total += int(v.attrs.get("PE", 1)) * int(v.attrs.get("SIMD", 1))
    return total


def bottleneck(graph: onnx.GraphProto) -> tuple[int, str]:
    """Max cycles over every node (width converters and FIFOs included) and its name."""
    return max((exp_cycles(light_view(n)), n.name) for n in graph.node)
