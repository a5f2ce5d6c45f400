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
stream's channels; every stream at most ``MAX_STREAM_BITS`` wide (HLS ap_uint limit); an HLS
MVAU needs SIMD >= MW / 1024 (``MVAU_MAX_SIMD_FOLD``, checked by FINN's code generation).

With ``split=True`` an MVAU may also take a fold F that does not divide MH, by splitting its rows
into two MVAUs between a duplicator and a concat (``hls.split``); such a choice is offered only
where it needs fewer MAC units than every divisor folding at least as fast.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass, field
from functools import reduce

import onnx

from golden.cycles import rtl_cycles
from golden.datatypes import parse_dtype
from golden.node import NodeView, decode_attr, split_op_type
from golden.streams import in_elems_per_beat, out_elems_per_beat
from hls.constants import MAX_STREAM_BITS, MVAU_MAX_SIMD_FOLD
from hls.split import Split, split_candidates, split_cycles


class FoldingError(ValueError):
    pass


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass(frozen=True)
class Choice:
    attrs: dict  # folding attributes per node name (a unit may fold several nodes together)
    cycles: int
    cost: int  # MAC units (PE*SIMD) — MVAUs only
    width: int  # sum of stream parallelism, the tie-breaker (narrower = smaller)
    split: bool = False  # an MVAU split in two (hls.split); an unsplit choice wins a tie


@dataclass
class Unit:
    """Nodes folded together (one node, or a depthwise sliding window with its Pool)."""

    names: list[str]
    choices: list[Choice]
    macs: int = 0  # MACs per frame (MVAUs)
    nodes: list = field(default_factory=list)  # onnx nodes, entry first, exit last

    def best(self, target: int, split: bool = True) -> Choice:
        ok = [c for c in self.choices if c.cycles <= target and (split or not c.split)]
        return min(ok, key=lambda c: (c.cost, c.split, c.width, c.cycles))


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


def mvau_unit(node, split: bool = False) -> Unit:
    v = light_view(node)
    mh, mw = int(v.attrs["MH"]), int(v.attrs["MW"])
    wb, ib, ob = (parse_dtype(v.attrs[k]).bits for k in ("weightDataType", "inputDataType", "outputDataType"))
    choices = []
    for pe in divisors(mh):
        for simd in divisors(mw):
            if (
                mw > simd * MVAU_MAX_SIMD_FOLD
                or pe * simd * wb > MAX_STREAM_BITS
                or simd * ib > MAX_STREAM_BITS
                or pe * ob > MAX_STREAM_BITS
            ):
                continue
            a = {"PE": pe, "SIMD": simd}
            choices.append(Choice({node.name: a}, rtl_cycles(light_view(node, **a)), pe * simd, pe + simd))
    if split:
        choices += _split_choices(node, v, choices)  # the same constraints per part
    vecs = math.prod(int(x) for x in v.attrs.get("numInputVectors", [1]))
    return Unit([node.name], choices, macs=mh * mw * vecs, nodes=[node])


def _split_choices(node, v: NodeView, plain: list[Choice]) -> list[Choice]:
    """The split foldings (hls.split) that beat every plain choice at least as fast."""
    cands = sorted(split_candidates(v, MAX_STREAM_BITS), key=lambda t: (t[1], t[2]))
    plain_sorted = sorted((c.cycles, c.cost) for c in plain)
    plain_cycles = [cy for cy, _ in plain_sorted]
    prefix_min = list(itertools.accumulate((k for _, k in plain_sorted), min))
    out, best_cost = [], None
    for s, cycles, cost in cands:  # by cycles: keep the Pareto front of (cycles, cost)
        i = bisect.bisect_right(plain_cycles, cycles)
        if (i and prefix_min[i - 1] <= cost) or (best_cost is not None and best_cost <= cost):
            continue
        best_cost = cost
        a = {"SIMD": s.simd, "split": s.as_attr()}
        out.append(Choice({node.name: a}, split_cycles(v, s), cost, s.pe_a + s.pe_b + s.simd, True))
    return out


def _simple_unit(node, attr: str, channels: int, dtype: str, extra=None) -> Unit:
    bits = parse_dtype(dtype).bits
    choices = []
    for p in divisors(channels):
        if p * bits > MAX_STREAM_BITS:
            continue
        a = {attr: p, **(extra or {})}
        choices.append(Choice({node.name: a}, rtl_cycles(light_view(node, **a)), 0, p))
    return Unit([node.name], choices, nodes=[node])


def _swg_unit(node) -> Unit:
    v = light_view(node)
    c = int(v.attrs["IFMChannels"])
    bits = parse_dtype(v.attrs["inputDataType"]).bits
    k = math.prod(int(x) for x in v.attrs["ConvKernelDim"])
    choices = []
    for simd in divisors(c):
        for pw in (0, 1) if (simd == c and k > 1) else (0,):
            out_w = simd * (k if pw else 1)
            if out_w * bits > MAX_STREAM_BITS:
                continue
            a = {"SIMD": simd, "parallel_window": pw}
            choices.append(Choice({node.name: a}, rtl_cycles(light_view(node, **a)), 0, out_w))
    return Unit([node.name], choices, nodes=[node])


def _dw_pool_unit(swg, pool) -> Unit:
    c = int(light_view(pool).attrs["Channels"])
    bits = parse_dtype(light_view(swg).attrs["inputDataType"]).bits
    choices = []
    for p in divisors(c):
        if p * bits > MAX_STREAM_BITS:
            continue
        sa, pa = {"SIMD": p, "parallel_window": 0}, {"PE": p}
        cyc = max(rtl_cycles(light_view(swg, **sa)), rtl_cycles(light_view(pool, **pa)))
        choices.append(Choice({swg.name: sa, pool.name: pa}, cyc, 0, p))
    return Unit([swg.name, pool.name], choices, nodes=[swg, pool])


def folding_units(graph: onnx.GraphProto, split: bool = False) -> list[Unit]:
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
            units.append(mvau_unit(n, split))
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
            units.append(_simple_unit(n, "SIMD", int(a["NumChannels"]), a["inputDataType"]))
        elif base in ("StreamingConcat", "StreamingSplit"):
            g = reduce(math.gcd, [int(x) for x in a["ChannelsPerStream"]])
            dt = a.get("inputDataType") or a.get("inputDataTypes")[0]
            units.append(_simple_unit(n, "SIMD", g, dt))
        elif base in ("Thresholding", "DuplicateStreams", "GlobalAccPool"):
            units.append(_simple_unit(n, "PE", int(a["NumChannels"]), a["inputDataType"]))
        elif base.startswith("Elementwise"):
            ch = int(a["out_shape"][-1]) if "out_shape" in a else int(a["lhs_shape"][-1])
            units.append(_simple_unit(n, "PE", ch, a.get("lhs_dtype", "INT32")))
        elif base == "UpsampleNearestNeighbour":
            units.append(_simple_unit(n, "SIMD", int(a["NumChannels"]), a["inputDataType"]))
        else:
            raise FoldingError(f"{n.name}: no folding rule for op type {n.op_type}")
    return units


def _epb(node, attrs: dict, side: str, ind: int) -> int:
    """Elements per beat of a node's input or output stream ``ind`` under folding ``attrs``."""
    a = dict(attrs.get(node.name, {}))
    split = a.pop("split", None)
    if split is not None and side == "out":
        return Split.from_attr(split).cat_simd
    v = light_view(node, **a)
    return int(in_elems_per_beat(v, ind) if side == "in" else out_elems_per_beat(v, ind))


def harmonize(units: list[Unit], target: int, picks: list[Choice]) -> dict[str, dict]:
    """Among foldings as cheap as the pick that meet ``target`` (and split alike), pick the ones
    whose stream widths equal their neighbours', so fewer width converters are needed. Backward
    then forward over the graph."""
    attrs = {k: dict(v) for c in picks for k, v in c.attrs.items()}
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

    order = list(zip(units, picks, strict=True))
    for seq in (reversed(order), order):
        for u, cur in seq:
            ok = [c for c in u.choices if c.cycles <= target and (c.cost, c.split) == (cur.cost, cur.split)]
            if len(ok) < 2:
                continue
            pick = max(ok, key=lambda c: (matches(u, c, attrs), -c.width))
            attrs.update(pick.attrs)
    return attrs


def assign(units: list[Unit], target: int) -> tuple[list[Choice], int]:
    """Cheapest choice per unit meeting ``target`` (every unit can, since target >= floor)."""
    picks = [u.best(target) for u in units]
    return picks, sum(c.cost for c in picks)


def _fewest_splits(units: list[Unit], target: int, picks: list[Choice], budget: int) -> list[Choice]:
    """Undo the splits the budget does not need: a split costs a duplicator and a concat, so each
    split unit whose cheapest plain folding still fits goes back to it, smallest extra cost first."""
    picks = list(picks)
    slack = budget - sum(c.cost for c in picks)
    plain = {i: u.best(target, split=False) for i, u in enumerate(units) if picks[i].split}
    for i in sorted(plain, key=lambda i: (plain[i].cost - picks[i].cost, i)):
        extra = plain[i].cost - picks[i].cost
        if extra <= slack:
            slack -= extra
            picks[i] = plain[i]
    return picks


def balance(
    graph: onnx.GraphProto,
    mac_budget: int | None = None,
    target_cycles: int | None = None,
    split: bool = False,
) -> FoldingResult:
    """Fold for the smallest bottleneck within ``mac_budget`` MAC units, or for ``target_cycles``.
    ``split`` lets MVAUs split by output rows (hls.split) when the budget needs it to reach a
    smaller bottleneck; a target in cycles never needs one (PE = MH reaches any target)."""
    units = folding_units(graph, split and mac_budget is not None)
    return balance_units(units, mac_budget, target_cycles)


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
        picks, cost = assign(units, target_cycles)
        return FoldingResult(
            target_cycles, harmonize(units, target_cycles, picks), cost, total_macs, floor, floor_node
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
        if assign(units, candidates[mid])[1] <= mac_budget:
            hi = mid
        else:
            lo = mid + 1
    target = candidates[lo]
    picks = _fewest_splits(units, target, assign(units, target)[0], mac_budget)
    cost = sum(c.cost for c in picks)
    return FoldingResult(target, harmonize(units, target, picks), cost, total_macs, floor, floor_node)


def apply_folding(model, attrs: dict[str, dict]):
    """Write the folding attributes (PE, SIMD, parallel_window) of ``attrs`` into a qonnx
    ModelWrapper of a specialised graph, in place; returns it. MVAU splits (the ``split``
    entries) are left to ``hls.split.split_mvaus``, the flow's next step."""
    from qonnx.custom_op.registry import getCustomOp

    names = {n.name: n for n in model.graph.node}
    for name, a in attrs.items():
        inst = getCustomOp(names[name])
        for k, v in a.items():
            if k != "split":
                inst.set_nodeattr(k, int(v))
    return model


def mac_units(graph: onnx.GraphProto) -> int:
    total = 0
    for n in graph.node:
        if n.op_type.startswith("MVAU"):
            v = light_view(n)
            total += int(v.attrs.get("PE", 1)) * int(v.attrs.get("SIMD", 1))
    return total


def bottleneck(graph: onnx.GraphProto) -> tuple[int, str]:
    """Max cycles over every node (width converters and FIFOs included) and its name."""
    return max((rtl_cycles(light_view(n)), n.name) for n in graph.node)
