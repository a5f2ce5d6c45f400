"""hwcsp.quant.FusedIntQuant (the QAT models' fake quantizers) against Brevitas' own IntQuant.

Same model, same weights, same batch: the forward values must be bit-identical (they are what
export, calibration and evaluation see) and every parameter's gradient equal up to the rounding of
a differently ordered sum. Also the expressions on their own, with values on and beyond the
clamp edges, for a floor/plain-clamp activation quantizer and a round/straight-through weight one.
"""

from __future__ import annotations

import copy

import pytest
import torch

import hwcsp
from hwcsp.quant import FakeQuant, FusedIntQuant, fuse_fake_quant, unfuse_fake_quant


def _grads(net, x):
    net.zero_grad(set_to_none=True)
    outs = net(x)
    outs = [outs] if torch.is_tensor(outs) else outs
    g = torch.Generator().manual_seed(1)
    loss = sum((o * torch.randn(o.shape, generator=g)).sum() for o in outs)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    return [o.detach() for o in outs], grads


@pytest.mark.parametrize("model", ["cspdensenetb-ref-prn", "resnet10"])
def test_fused_qat_model_equals_brevitas(model):
    torch.manual_seed(0)
    fused = hwcsp.create_model(model, size=64, width=0.25, wbits=4, abits=4, num_classes=10).train()
    plain = copy.deepcopy(fused)
    assert unfuse_fake_quant(plain) > 20 and not any(isinstance(m, FusedIntQuant) for m in plain.modules())
    x = torch.rand(2, 3, 64, 64)
    out_f, g_f = _grads(fused, x)
    out_p, g_p = _grads(plain, x)
    assert all(torch.equal(a, b) for a, b in zip(out_f, out_p, strict=True))
    assert g_f.keys() == g_p.keys() and len(g_f) > 20
    scales = [k for k in g_f if k.endswith("scaling_impl.value")]
    assert scales and any(g_p[k].abs().sum() > 0 for k in scales)  # the learned scales do get gradients
    for k in g_f:
        torch.testing.assert_close(g_f[k], g_p[k], rtol=1e-4, atol=1e-6 * float(g_p[k].abs().max()), msg=k)
    assert fuse_fake_quant(plain) == unfuse_fake_quant(copy.deepcopy(fused))  # the swap is reversible


def _reference(x, s, lo, hi, floor, ste):
    """Brevitas' composition written out: floor/round STE, clamp by two wheres (or STE), rescale."""
    u = x / s
    f = u + ((torch.floor(u) if floor else torch.round(u)) - u).detach()
    if ste:
        q = f + (f.clamp(lo, hi) - f).detach()
    else:
        q = torch.where(f > hi, torch.tensor(hi), f)
        q = torch.where(q < lo, torch.tensor(lo), q)
    return q * s


@pytest.mark.parametrize("floor, ste, lo, hi", [(True, False, 0.0, 15.0), (False, True, -7.0, 7.0)])
def test_fake_quant_values_and_gradients(floor, ste, lo, hi):
    torch.manual_seed(0)
    x0 = torch.randn(4, 6, 5, 5) * 2
    x0[0, 0, 0] = torch.tensor([-9.0, 0.0, 0.25, 3.75, 4.0])  # below, at and above the edges (s = 1/4)
    x0[0, 0, 1, 0] = 9.0
    s0 = torch.full((1, 6, 1, 1), 0.25) if ste else torch.tensor(0.25)
    outs = []
    for fn in (_reference, None):
        x, s = x0.clone().requires_grad_(), s0.clone().requires_grad_()
        if fn is None:
            y = FakeQuant.apply(x, s, lo, hi, floor, ste)
        else:
            y = fn(x, s, lo, hi, floor, ste)
        (y * torch.linspace(-1, 1, y.numel()).view(y.shape)).sum().backward()
        outs.append((y.detach(), x.grad, s.grad))
    (y_r, gx_r, gs_r), (y_f, gx_f, gs_f) = outs
    assert torch.equal(y_r, y_f)
    assert torch.equal(gx_r, gx_f)
    assert gs_f.shape == s0.shape
    torch.testing.assert_close(gs_f, gs_r, rtol=1e-5, atol=1e-6)
    if not ste:  # outside the range x gets no gradient, inside all of it
        assert (gx_f[x0 / 0.25 >= hi + 1] == 0).all() and (gx_f[x0 < 0] == 0).all()
