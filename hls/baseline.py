"""The baseline folding: FINN's SetFolding swept over target throughputs, scored by our cycle model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from hls.constants import FINN_MVAU_WWIDTH_MAX, MAX_STREAM_BITS
from hls.finn_env import quiet_finn
from hls.folding import bottleneck, folding_units, mac_units
from hls.steps import insert_dwc


@dataclass
class BaselineResult:
    sweep: int  # target values tried (x weight-width limits)
    mac_units: int
    bottleneck_cycles: int
    bottleneck_node: str
    target_cycles: int
    mvau_wwidth_max: int
    attrs: dict

    def efficiency(self, total_macs: int, budget: int) -> float:
        return total_macs / budget / self.bottleneck_cycles

    def to_json(self, total_macs: int, budget: int) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "attrs"}
        return {**d, "efficiency": self.efficiency(total_macs, budget)}


def setfolding_sweep(model: ModelWrapper, budget: int, n_targets: int = 24) -> BaselineResult | None:
    """Best (smallest bottleneck) SetFolding result whose Σ PE·SIMD fits ``budget``, or None."""
    from finn.transformation.fpgadataflow.set_folding import SetFolding

    units = folding_units(model.graph)
    floor = max(min(c.cycles for c in u.choices) for u in units)
    slowest = max(max(c.cycles for c in u.choices) for u in units)
    targets = sorted({int(t) for t in np.geomspace(floor, slowest, n_targets)})
    best = None
    with quiet_finn():  # SetFolding warns for every layer that misses a target
        for wmax in (FINN_MVAU_WWIDTH_MAX, MAX_STREAM_BITS):  # FINN's default weight-stream limit, and none
            for t in targets:
                m = ModelWrapper(model.model.__deepcopy__())
                m = m.transform(SetFolding(target_cycles_per_frame=t, mvau_wwidth_max=wmax))
                cost = mac_units(m.graph)
                if cost > budget:
                    continue
                # width converters only add nodes: without them is a lower bound on the bottleneck
                if best is not None and (bottleneck(m.graph)[0], cost) >= (
                    best.bottleneck_cycles,
                    best.mac_units,
                ):
                    continue
                cycles, node = bottleneck(insert_dwc(m).graph)
                if best is None or (cycles, cost) < (best.bottleneck_cycles, best.mac_units):
                    attrs = {
                        n.name: {
                            a.name: a.i for a in n.attribute if a.name in ("PE", "SIMD", "parallel_window")
                        }
                        for n in m.graph.node
                    }
                    best = BaselineResult(2 * len(targets), cost, cycles, node, t, wmax, attrs)
    return best
