"""Calibration of seeded weights and the "no degenerate test data" check.

Exactness tests only mean something where activations are alive. Seeded (untrained) weights
are therefore calibrated on real images: BatchNorm statistics from each conv's actual input and
one power-of-two scale per activation group, layer by layer in a single forward pass (forward
pre-hooks run in topological order, so each layer sees already-calibrated inputs).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from brevitas.quant_tensor import QuantTensor

from hwcsp.errors import UserError
from hwcsp.modules import ConvBN
from hwcsp.net import CSPNet, layer_key
from hwcsp.quant import INPUT_SCALE, is_power_of_two, set_act_scale

MIN_CODE_SHARE = 0.5  # each activation tensor uses at least half of its codes ...
MAX_ZERO_SHARE = 0.9  # ... with at most 90% zeros (DESIGN.md)


class DegenerateDataError(UserError, RuntimeError):
    pass


def _val(x):
    return x.value if isinstance(x, QuantTensor) else x


def images_to_input(images_u8) -> torch.Tensor:
    """UINT8 NCHW images → the model input p / 256 (exact at the input scale 2^-8)."""
    return torch.as_tensor(images_u8).float() * INPUT_SCALE


@torch.no_grad()
def calibrate(
    net: CSPNet, x: torch.Tensor, percentile: float = 99.0, margin: int = 0, set_bn: bool = True
) -> None:
    """Set BatchNorm statistics (``set_bn``) and activation scales of a quantized ``net`` on ``x``.

    Seeded weights need both; a trained float checkpoint keeps its BatchNorm statistics.
    Each group's scale is the power of two that maps the ``percentile`` of its first member's
    positive pre-activations onto the top code, minus ``margin`` octaves (finer) on retries.
    """
    if not net.quant:
        raise ValueError("calibrate() needs the quantized model")
    net.eval()
    done: set[str] = set()
    hooks = []

    def bn_hook(mod: ConvBN, args):
        if mod.bn is None:
            return
        c = mod.conv
        y = F.conv2d(_val(args[0]), c.weight, None, c.stride, c.padding, c.dilation, c.groups)
        mod.bn.running_mean.copy_(y.mean(dim=(0, 2, 3)))
        mod.bn.running_var.copy_(y.var(dim=(0, 2, 3), unbiased=False))

    def act_hook(mod, args, group):
        if group in done:
            return
        done.add(group)
        v = _val(args[0]).flatten()
        pos = v[v > 0]
        bits = int(mod.act_quant.bit_width())
        top = float(torch.quantile(pos[: 1 << 24], percentile / 100)) if pos.numel() else 1.0
        k = round(math.log2(max(top, 1e-8) / (2**bits - 1))) - margin
        set_act_scale(mod, 2.0**k)

    for n in net.graph.nodes:
        if n.op == "conv" and set_bn:
            hooks.append(net.layers[layer_key(n.name)].register_forward_pre_hook(bn_hook))
    for g, mod in net.acts.items():
        hooks.append(mod.register_forward_pre_hook(lambda m, a, g=g: act_hook(m, a, g)))
    try:
        net(x)
    finally:
        for h in hooks:
            h.remove()


@dataclass
class TensorHealth:
    layer: str
    group: str
    bits: int
    scale: float
    codes_used: int
    zero_share: float

    @property
    def code_share(self) -> float:
        return self.codes_used / 2**self.bits

    @property
    def ok(self) -> bool:
        return self.code_share >= MIN_CODE_SHARE and self.zero_share <= MAX_ZERO_SHARE

    def describe(self) -> str:
        return (
            f"{self.layer} (group {self.group}, {self.bits} b, scale 2^{int(math.log2(self.scale))}): "
            f"{self.codes_used}/{2**self.bits} codes, {100 * self.zero_share:.1f}% zeros"
        )


@torch.no_grad()
def activation_health(net: CSPNet, x: torch.Tensor) -> list[TensorHealth]:
    """Code usage of the input and of every activation-quantizer output on ``x``."""
    net.eval()
    taps: dict[str, object] = {}
    net(x, taps=taps)
    rows = []
    signed = [(layer, layer) for layer, _ in net.signed_calls()]  # residual branches: own codes
    gates = [(layer, "gate") for layer, _ in net.gate_calls()]  # constant scale: reported, not judged
    for layer, group in [("input", "input"), *net.act_calls(), *signed, *gates]:
        t = taps[layer]
        if not isinstance(t, QuantTensor):
            raise DegenerateDataError(f"{layer}: activation is not quantized")
        codes = t.int().flatten()
        scale = float(t.scale)
        rows.append(
            TensorHealth(
                layer,
                group,
                int(t.bit_width),
                scale,
                int(torch.unique(codes).numel()),
                float((codes == 0).float().mean()),
            )
        )
    return rows


def check_scales(net: CSPNet) -> None:
    """Every weight and activation scale must be a power of two."""
    for name, mod in net.named_modules():
        if hasattr(mod, "quant_weight") and hasattr(mod, "weight_quant"):
            s = mod.quant_weight().scale.flatten().tolist()
            bad = [v for v in s if not is_power_of_two(v)]
            if bad:
                raise DegenerateDataError(f"{name}: weight scale {bad[0]} is not a power of two")
    for g, mod in net.acts.items():
        s = float(mod.act_quant.scale())
        if not is_power_of_two(s):
            raise DegenerateDataError(f"activation group {g}: scale {s} is not a power of two")


@contextmanager
def one_thread() -> Iterator[None]:
    """Float reductions (BatchNorm statistics, percentiles) split over torch's threads round
    differently with the thread count, and a last-bit difference can move a folded weight or a
    power-of-two scale: calibration runs on one thread so that exports are the same byte for byte
    whatever thread count the caller set."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def calibrate_until_alive(
    net: CSPNet, x: torch.Tensor, tries: int = 4, set_bn: bool = True
) -> list[TensorHealth]:
    """Calibrate, then refine scales until every activation passes the liveness rule (on one thread,
    ``one_thread``)."""
    health: list[TensorHealth] = []
    for margin in range(tries):
        with one_thread():
            calibrate(net, x, margin=margin, set_bn=set_bn)
            health = activation_health(net, x)
        if all(h.ok for h in health):
            return health
    bad = "; ".join(h.describe() for h in health if not h.ok)
    raise DegenerateDataError(f"calibration could not make every activation alive: {bad}")
