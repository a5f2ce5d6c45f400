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

import torch
from brevitas.core.function_wrapper.clamp import TensorClamp
from brevitas.core.function_wrapper.misc import Identity
from brevitas.core.function_wrapper.ops_ste import FloorSte, RoundSte, TensorClampSte
from brevitas.core.quant.delay import _NoDelay
from brevitas.core.quant.int import RescalingIntQuant
from brevitas.core.quant.int_base import IntQuant as CoreIntQuant
from brevitas.core.zero_point import ZeroZeroPoint
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


class GateQuant(UintQuant, PerTensorPoTScaling8bit, ActQuantSolver):
    """A sigmoid gate's codes (SAM): the constant scale 2^-bits, so the gate tops out at
    (2^bits - 1) / 2^bits; hls.lower turns the quantized sigmoid into thresholds."""

    scaling_impl_type = ScalingImplType.CONST
    scaling_init = 1.0  # threshold 1.0 over 2^bits levels: scale 2^-bits


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


class FakeQuant(torch.autograd.Function):
    """``scale * clamp(floor_or_round(x / scale), lo, hi)`` with Brevitas' straight-through
    gradients, as one autograd node. The values are Brevitas' bit for bit (the same float ops in
    the same order, zero point 0); the gradients are the same expressions in fewer passes over the
    tensor: x gets ``g`` where the code is in range (everywhere with a straight-through clamp), the
    scale ``g * (q - x / scale)`` there and ``g * q`` elsewhere, summed to its shape."""

    @staticmethod
    def forward(ctx, x, scale, lo: float, hi: float, floor: bool, ste_clamp: bool):
        u = x / scale
        f = torch.floor(u) if floor else torch.round(u)
        q = f.clamp(lo, hi)
        if ste_clamp:
            ctx.save_for_backward(u, q, scale)
        else:
            ctx.save_for_backward(u, q, scale, q == f)
        ctx.ste_clamp = ste_clamp
        return q * scale

    @staticmethod
    def backward(ctx, g):
        if ctx.ste_clamp:
            u, q, scale = ctx.saved_tensors
            gx = g
        else:
            u, q, scale, inside = ctx.saved_tensors
            gx = g * inside
        if scale.numel() == 1:  # one scale: two dot products, no temporaries
            gs = torch.dot(g.reshape(-1), q.reshape(-1)) - torch.dot(gx.reshape(-1), u.reshape(-1))
            return gx, gs.reshape(scale.shape), None, None, None, None
        return gx, _sum_to(g * q - gx * u, scale.shape), None, None, None, None


def _sum_to(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``t`` summed over the dimensions that ``shape`` broadcasts (autograd's rule)."""
    lead = t.dim() - len(shape)
    if lead > 0:
        t = t.sum(dim=tuple(range(lead)))
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and t.shape[i] != 1)
    return (t.sum(dim=dims, keepdim=True) if dims else t).reshape(shape)


class FusedIntQuant(CoreIntQuant):
    """Brevitas' ``IntQuant`` (same attributes, so export and the proxies see no difference)
    computing its forward through ``FakeQuant``: QAT spends most of a step in the fake
    quantizers' elementwise passes (benchmarks/qat_step.py)."""

    def forward(self, scale, zero_point, bit_width, x):
        floor = isinstance(self.float_to_int_impl, FloorSte)
        ste = isinstance(self.tensor_clamp_impl, TensorClampSte)
        lo, hi = float(self.min_int(bit_width)), float(self.max_int(bit_width))
        return FakeQuant.apply(x, scale, lo, hi, floor, ste)


def fuse_fake_quant(net: torch.nn.Module) -> int:
    """Swap every fusable ``IntQuant`` of ``net`` for a ``FusedIntQuant`` (zero point 0, FLOOR or
    ROUND, a plain or straight-through clamp, no quantization delay, identity input view); returns
    how many were swapped. Idempotent; call it again after Brevitas rebuilds a quantizer."""
    n = 0
    for m in net.modules():
        if not isinstance(m, RescalingIntQuant) or type(m.int_quant) is not CoreIntQuant:
            continue
        iq = m.int_quant
        if not (
            isinstance(m.zero_point_impl, ZeroZeroPoint)
            and isinstance(iq.float_to_int_impl, FloorSte | RoundSte)
            and isinstance(iq.tensor_clamp_impl, TensorClamp | TensorClampSte)
            and isinstance(iq.delay_wrapper.delay_impl, _NoDelay)
            and isinstance(iq.input_view_impl, Identity)
        ):
            continue
        fused = FusedIntQuant.__new__(FusedIntQuant)
        fused.__dict__ = iq.__dict__.copy()
        m.int_quant = fused
        n += 1
    return n


def unfuse_fake_quant(net: torch.nn.Module) -> int:
    """Back to Brevitas' own ``IntQuant`` everywhere: the baseline that the tests and
    ``benchmarks/qat_step.py`` compare ``FusedIntQuant`` against."""
    n = 0
    for m in net.modules():
        if isinstance(m, RescalingIntQuant) and type(m.int_quant) is FusedIntQuant:
            plain = CoreIntQuant.__new__(CoreIntQuant)
            plain.__dict__ = m.int_quant.__dict__.copy()
            m.int_quant = plain
            n += 1
    return n
