"""Power-of-two (fixed-point) quantizers, chosen by a small declarative config.

Every scale is 2^k so that the exported graph is integer arithmetic plus shifts:
- weights: signed, narrow range, per output channel, scale from the max |w| rounded up to 2^k;
- the detection/classification head: 8-bit, one scale per tensor, so each output has one 2^k;
- activations: unsigned ``abits``, one learned 2^k per activation *group*, FLOOR rounding
  (hardware thresholds ``acc >= T`` express any monotone rounding exactly, half-even included:
  ``hls/lower.py``; FLOOR needs no tie rule);
- the input: UINT8 codes with the fixed scale 2^-8 (pixel p enters the model as p/256);
- biases: integers at the accumulator scale (``Int32Bias``), so conv sums stay exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from brevitas.core.function_wrapper.ops_ste import RoundSte
from brevitas.inject.enum import FloatToIntImplType, ScalingImplType
from brevitas.quant.base import IntQuant, PerTensorPoTScaling8bit, UintQuant
from brevitas.quant.fixed_point import Int8WeightPerChannelFixedPoint, Int8WeightPerTensorFixedPoint
from brevitas.quant.scaled_int import Int32Bias
from brevitas.quant.solver.act import ActQuantSolver

INPUT_BITS = 8
INPUT_SCALE = 2.0**-INPUT_BITS


class InputQuant(UintQuant, PerTensorPoTScaling8bit, ActQuantSolver):
    """UINT8 image codes at the constant scale 2^-8."""

    scaling_impl_type = ScalingImplType.CONST
    scaling_init = 1.0  # threshold 1.0 over 2^8 levels: scale 2^-8
    bit_width = INPUT_BITS


class ActQuant(UintQuant, PerTensorPoTScaling8bit, ActQuantSolver):
    """Unsigned activation codes with one learned power-of-two scale, FLOOR rounding."""

    scaling_impl_type = ScalingImplType.PARAMETER
    scaling_init = 1.0
    restrict_value_float_to_int_impl = RoundSte
    float_to_int_impl_type = FloatToIntImplType.FLOOR


class SignedActQuant(IntQuant, PerTensorPoTScaling8bit, ActQuantSolver):
    """A residual branch's signed codes (no ReLU): the scale of its group, FLOOR rounding."""

    scaling_impl_type = ScalingImplType.PARAMETER
    scaling_init = 1.0
    restrict_value_float_to_int_impl = RoundSte
    float_to_int_impl_type = FloatToIntImplType.FLOOR


WeightQuant = Int8WeightPerChannelFixedPoint
HeadWeightQuant = Int8WeightPerTensorFixedPoint
BiasQuant = Int32Bias


@dataclass(frozen=True)
class QuantConfig:
    """Bit widths of one model; per-layer (weights) and per-group (activations) overrides."""

    wbits: int = 4
    abits: int = 4
    first_wbits: int = 8
    head_wbits: int = 8
    wbits_overrides: Mapping[str, int] = field(default_factory=dict)
    abits_overrides: Mapping[str, int] = field(default_factory=dict)

    def weight_bits(self, layer: str, role: str, explicit: int | None = None) -> int:
        if layer in self.wbits_overrides:
            return int(self.wbits_overrides[layer])
        if explicit is not None:
            return explicit
        return {"first": self.first_wbits, "head": self.head_wbits}.get(role, self.wbits)

    def act_bits(self, group: str) -> int:
        return int(self.abits_overrides.get(group, self.abits))


def set_act_scale(act_module, scale: float) -> None:
    """Set a QuantReLU's learned power-of-two scale (stored as log2 of its threshold)."""
    bits = int(act_module.act_quant.bit_width())
    log2s = math.log2(scale)
    if log2s != round(log2s):
        raise ValueError(f"activation scale {scale} is not a power of two")
    param = act_module.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.value
    param.data.fill_(float(round(log2s) + bits))


def is_power_of_two(x: float) -> bool:
    if x <= 0 or not math.isfinite(x):
        return False
    m, _ = math.frexp(x)
    return m == 0.5
