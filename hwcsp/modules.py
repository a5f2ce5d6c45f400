"""Layer modules: one per graph op, float or Brevitas-quantized.

The quantized conv folds BatchNorm into its weights in every eval forward, so evaluation,
QAT checkpoints and the export (``fold_batchnorm``) compute the same integers.
"""

from __future__ import annotations

import brevitas.nn as qnn
import torch
import torch.nn.functional as F
from brevitas.inject.enum import FloatToIntImplType
from brevitas.quant.scaled_int import TruncTo8bit
from brevitas.quant_tensor import IntQuantTensor, QuantTensor
from torch import nn

from hwcsp.graph import Conv
from hwcsp.quant import (
    ActQuant,
    BiasQuant,
    GateQuant,
    HeadWeightQuant,
    InputQuant,
    SignedActQuant,
    WeightQuant,
)


def _value(x):
    return x.value if isinstance(x, QuantTensor) else x


def _like(x, value):
    """Wrap ``value`` in the quantization metadata of ``x`` (for ops that keep codes intact)."""
    if isinstance(x, IntQuantTensor):
        return IntQuantTensor(value, x.scale, x.zero_point, x.bit_width, x.signed, x.training)
    return value


class ConvBN(nn.Module):
    """Conv2d (+ BatchNorm). Returns the pre-activation; the network applies the act group."""

    def __init__(self, cin: int, spec: Conv, wbits: int | None):
        super().__init__()
        self.spec = spec
        self.quant = wbits is not None
        kw = dict(stride=spec.stride, padding=spec.k // 2, groups=spec.groups)
        if self.quant:
            head = spec.role == "head"
            # bias=True even with BatchNorm: Brevitas enables a bias quantizer only for a module
            # that has a bias, and the folded bias must go through it. With BatchNorm that bias
            # parameter stays zero and frozen; the folded one replaces it.
            self.conv = qnn.QuantConv2d(
                cin,
                spec.cout,
                spec.k,
                weight_quant=HeadWeightQuant if head else WeightQuant,
                weight_bit_width=wbits,
                bias=True,
                bias_quant=BiasQuant,
                return_quant_tensor=not head,
                **kw,
            )
            if spec.bn:
                nn.init.zeros_(self.conv.bias)
                self.conv.bias.requires_grad_(False)
        else:
            self.conv = nn.Conv2d(cin, spec.cout, spec.k, bias=not spec.bn, **kw)
        self.bn = nn.BatchNorm2d(spec.cout) if spec.bn else None

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight and bias with the BatchNorm running statistics folded in."""
        bn = self.bn
        inv = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        w = self.conv.weight * inv.reshape(-1, 1, 1, 1)
        b = bn.bias - bn.running_mean * inv
        return w, b

    def forward(self, x):
        if not self.quant:
            y = self.conv(x)
            return self.bn(y) if self.bn is not None else y
        if self.bn is None:
            return self.conv(x)
        c = self.conv
        if self.training:
            # QAT with folded BN (as torch.ao's ConvBn2d): quantize w*gamma/sigma_running, undo
            # the per-channel factor on the output, then normalise with batch statistics.
            bn = self.bn
            factor = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            qw = c.weight_quant(c.weight * factor.reshape(-1, 1, 1, 1))
            y = F.conv2d(_value(x), _value(qw), None, c.stride, c.padding, c.dilation, c.groups)
            return bn(y / factor.reshape(1, -1, 1, 1))
        w, b = self.folded()
        qw = c.weight_quant(w)
        qb = c.bias_quant(b, x, qw)
        return F.conv2d(x, qw, qb, c.stride, c.padding, c.dilation, c.groups)


class MaxPool(nn.Module):
    """Max pooling with explicit zero padding (left, right, top, bottom).

    Zero padding equals darknet's -inf padding because pooled inputs are ReLU outputs (>= 0).
    """

    def __init__(self, k: int, stride: int, pad: tuple[int, int, int, int]):
        super().__init__()
        self.k, self.stride, self.pad = k, stride, tuple(pad)

    def forward(self, x):
        if any(self.pad):
            x = F.pad(x, self.pad)
        return F.max_pool2d(x, self.k, self.stride)


class Split(nn.Module):
    """Channel split (the CSP part1/part2 route); keeps the codes' quantization metadata."""

    def __init__(self, sizes: tuple[int, ...]):
        super().__init__()
        self.sizes = list(sizes)

    def forward(self, x):
        return [_like(x, v) for v in torch.split(_value(x), self.sizes, dim=1)]


class Concat(nn.Module):
    """Channel concat. Codes of one scale but mixed signedness (a signed residual branch beside
    ReLU outputs) are joined in the widest signed type: the integers are unchanged."""

    def forward(self, *xs):
        if (
            all(isinstance(x, IntQuantTensor) for x in xs)
            and len({(float(x.bit_width), bool(x.signed)) for x in xs}) > 1
        ):
            signed = any(bool(x.signed) for x in xs)
            bits = max(float(x.bit_width) + (0 if x.signed or not signed else 1) for x in xs)
            v = torch.cat([x.value for x in xs], dim=1)
            f = xs[0]
            return IntQuantTensor(v, f.scale, f.zero_point, torch.tensor(bits), signed, f.training)
        return torch.cat(list(xs), dim=1)


class Add(nn.Module):
    def forward(self, a, b):
        return a + b


class Max(nn.Module):
    """Elementwise maximum of codes of one quantizer (Maxout): the codes and their scale stay."""

    def forward(self, *xs):
        v = _value(xs[0])
        for x in xs[1:]:
            v = torch.maximum(v, _value(x))
        return _like(xs[0], v)


class Mul(nn.Module):
    """Features times their gate (SAM): a product of codes at the product of the scales, which the
    group's quantizer after it requantizes."""

    def forward(self, a, b):
        return _value(a) * _value(b)


class Upsample(nn.Module):
    def __init__(self, scale: int):
        super().__init__()
        self.up = nn.Upsample(scale_factor=scale, mode="nearest")

    def forward(self, x):
        return self.up(x)


class _FloorTrunc(TruncTo8bit):
    """Truncation of a pooled sum back to the input's width: floor(sum / k^2), same scale."""

    float_to_int_impl_type = FloatToIntImplType.FLOOR


class AvgPool(nn.Module):
    """k x k average pooling. Quantized, the exact integer floor(sum / k^2) of the codes at the
    input's scale and width (Brevitas' truncating average pool): a shift in hardware."""

    def __init__(self, k: int, stride: int, bits: int | None):
        super().__init__()
        if bits is None:
            self.pool = nn.AvgPool2d(k, stride)
        else:
            self.pool = qnn.TruncAvgPool2d(k, stride, trunc_quant=_FloorTrunc, bit_width=bits)

    def forward(self, x):
        return self.pool(x)


class GlobalAvgPool(nn.Module):
    def forward(self, x):
        return _value(x).mean(dim=(2, 3), keepdim=True)


class Identity(nn.Module):
    def forward(self, x):
        return x


def make_act(bits: int | None) -> nn.Module:
    """ReLU, or its quantized form with a learned power-of-two scale (``bits`` wide)."""
    if bits is None:
        return nn.ReLU()
    return qnn.QuantReLU(act_quant=ActQuant, bit_width=bits, return_quant_tensor=True)


def make_gate(bits: int | None) -> nn.Module:
    """A sigmoid, or its ``bits``-bit quantized form at the constant scale 2^-bits (SAM's gate)."""
    if bits is None:
        return nn.Sigmoid()
    return qnn.QuantSigmoid(act_quant=GateQuant, bit_width=bits, return_quant_tensor=True)


def make_signed_act(bits: int | None, relu: nn.Module) -> nn.Module:
    """A residual branch's signed quantizer: ``bits`` + 1 wide, sharing the learned scale of its
    group's ReLU quantizer ``relu`` (the same parameter), so the add that joins them is exact."""
    if bits is None:
        return Identity()
    q = qnn.QuantIdentity(act_quant=SignedActQuant, bit_width=bits + 1, return_quant_tensor=True)
    tie_scale(q, relu)
    return q


def tie_scale(signed: nn.Module, relu: nn.Module) -> None:
    """One scale parameter for both: a signed b+1-bit threshold equals the unsigned b-bit one."""
    _scaling(signed).value = _scaling(relu).value


def _scaling(act: nn.Module):
    return act.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl


def make_input_quant(quant: bool) -> nn.Module:
    if not quant:
        return Identity()
    return qnn.QuantIdentity(act_quant=InputQuant, return_quant_tensor=True)
