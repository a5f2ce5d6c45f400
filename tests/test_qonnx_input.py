"""`hwcsp hls --qonnx FILE` (hls.qonnx_in): a user's own Brevitas export through the whole chain.

The networks are defined here with Brevitas' stock fixed-point quantizers (nothing from the zoo):
odd channel counts, a stride-2 convolution, a 5x5 kernel, a non-square input, a residual add of two
branches sharing one signed quantizer and a concat of three branches sharing one unsigned
quantizer; W2A2 exported by torch's default (dynamo) exporter, W8A8 by the TorchScript one. Stock
activation quantizers round half to even: the ties occur here, so the threshold rule for them is
exercised. Each network runs through the command line as a user runs it: hls, golden == FINN ==
qonnx == Brevitas with 0 mismatching integers, every node's RTL, the stitched network at its
bottleneck. Models that break a hardware rule exit 2 with one line naming the node and the rule,
and leave no build directory behind.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

try:
    from golden_helpers.cli import hwcsp
    from golden_helpers.finn_env import Finn, finn
    from golden_helpers.refs import chain_tally
except ImportError:  # tests/ imported as a package
    from tests.golden_helpers.cli import hwcsp
    from tests.golden_helpers.finn_env import Finn, finn
    from tests.golden_helpers.refs import chain_tally

__all__ = ["finn"]

ROOT = Path(__file__).resolve().parents[1]
H, W = 12, 20  # a non-square input


def _brevitas():
    import brevitas.nn as qnn
    from brevitas import quant

    return qnn, quant


class Features(nn.Module):
    """3 -> 5 (3x3/2) -> 7 (5x5) -> residual (two 3x3 branches, one signed quantizer, add, ReLU)
    -> concat of three branches (one unsigned quantizer) -> a 1x1 head with a bias (the output is
    its accumulator)."""

    def __init__(self, wbits: int, abits: int):
        super().__init__()
        qnn, q = _brevitas()

        def conv(cin, cout, k, stride=1, bias=False, quant_out=True):
            return qnn.QuantConv2d(
                cin,
                cout,
                k,
                stride=stride,
                padding=k // 2,
                bias=bias,
                weight_quant=q.Int8WeightPerTensorFixedPoint,
                weight_bit_width=wbits,
                bias_quant=q.Int16Bias if bias else None,
                return_quant_tensor=quant_out,
            )

        def relu():
            act = q.Uint8ActPerTensorFixedPoint
            return qnn.QuantReLU(act_quant=act, bit_width=abits, return_quant_tensor=True)

        self.inp = qnn.QuantIdentity(act_quant=q.Uint8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.c1, self.r1 = conv(3, 5, 3, stride=2, bias=True), relu()
        self.c2, self.r2 = conv(5, 7, 5), relu()
        self.ca, self.cb = conv(7, 7, 3), conv(7, 7, 3)
        self.res = qnn.QuantIdentity(
            act_quant=q.Int8ActPerTensorFixedPoint, bit_width=abits, return_quant_tensor=True
        )
        self.r3 = relu()
        self.t1, self.t2, self.t3 = conv(7, 3, 1), conv(7, 5, 3), conv(7, 5, 5)
        self.rc = relu()  # shared by the three concat inputs: one scale
        self.head = conv(13, 9, 1, bias=True, quant_out=False)  # a plain tensor out (as exports want)

    def forward(self, x):
        x = self.r1(self.c1(self.inp(x)))
        y = self.r2(self.c2(x))
        s = self.r3(self.res(self.ca(y)) + self.res(self.cb(y)))
        cat = torch.cat([self.rc(self.t1(s)), self.rc(self.t2(s)), self.rc(self.t3(s))], dim=1)
        return self.head(cat)


class Spp(nn.Module):
    """SPP (YOLOv3-SPP, the heads issue): max pools 5/9/13 at stride 1 beside the map, one concat
    of four inputs (hls.lower builds the 9x9 and 13x13 pools as chains of 5x5 ones), then a
    Maxout (EFM's compression: channel g = max of channels g and g + 12) before the 1x1."""

    def __init__(self):
        super().__init__()
        qnn, q = _brevitas()
        w = dict(weight_quant=q.Int8WeightPerTensorFixedPoint, weight_bit_width=4, bias=False)
        self.inp = qnn.QuantIdentity(act_quant=q.Uint8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(3, 6, 3, padding=1, **w)
        self.r1 = qnn.QuantReLU(
            act_quant=q.Uint8ActPerTensorFixedPoint, bit_width=4, return_quant_tensor=True
        )
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in (5, 9, 13))
        self.c2 = qnn.QuantConv2d(12, 5, 1, **w)

    def forward(self, x):
        y = self.r1(self.c1(self.inp(x)))
        z = torch.cat([y, *(p(y) for p in self.pools)], dim=1)
        a, b = torch.split(z.value if hasattr(z, "value") else z, 12, dim=1)
        return self.c2(torch.maximum(a, b))


class Sam(nn.Module):
    """SAM (spatial attention, the heads issue): x * sigmoid(conv(x)) with a 4-bit gate at a
    power-of-two scale (the quantized sigmoid is thresholds on the conv's accumulator), the product
    of two code streams requantized by an unsigned quantizer without a ReLU, then a 1x1."""

    def __init__(self):
        super().__init__()
        qnn, q = _brevitas()
        w = dict(weight_quant=q.Int8WeightPerTensorFixedPoint, weight_bit_width=4)
        u8 = q.Uint8ActPerTensorFixedPoint
        self.inp = qnn.QuantIdentity(act_quant=u8, return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(3, 6, 3, padding=1, bias=False, **w)
        self.r1 = qnn.QuantReLU(act_quant=u8, bit_width=4, return_quant_tensor=True)
        self.att = qnn.QuantConv2d(6, 6, 3, padding=1, bias=True, bias_quant=q.Int16Bias, **w)
        self.gate = qnn.QuantSigmoid(act_quant=u8, bit_width=4, return_quant_tensor=True)
        self.req = qnn.QuantIdentity(act_quant=u8, bit_width=4, return_quant_tensor=True)
        self.c2 = qnn.QuantConv2d(6, 5, 1, bias=False, **w)
        with torch.no_grad():  # a gate that spans its codes, not one that sits near 1/2
            self.att.weight.mul_(8)

    def forward(self, x):
        y = self.r1(self.c1(self.inp(x)))
        return self.c2(self.req(y * self.gate(self.att(y))))


def calibrated(net: nn.Module, seed: int = 0) -> nn.Module:
    """Activation scales from runtime statistics (Brevitas' stock quantizers collect them in
    training mode), on images with structure (smooth ramps, not white noise)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    with torch.no_grad():
        net.train()
        for _ in range(40):
            x = torch.rand(8, 3, H, W, generator=g) * 0.5
            x += torch.linspace(0, 0.5, W).view(1, 1, 1, W)
            net(x)
    return net.eval()


def export(net: nn.Module, path: Path, dynamo: bool, shape=(1, 3, H, W)) -> Path:
    from brevitas.export import export_qonnx

    export_qonnx(net, torch.rand(*shape), export_path=str(path), dynamo=dynamo)
    return path


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, tuple[Path, nn.Module]]:
    d = tmp_path_factory.mktemp("qonnx")
    out = {}
    for name, (wb, ab, dynamo) in {"w2a2": (2, 2, True), "w8a8": (8, 8, False)}.items():
        torch.manual_seed(1)
        net = calibrated(Features(wb, ab))
        out[name] = (export(net, d / f"features_{name}.onnx", dynamo), net)
    for name, cls in (("spp", Spp), ("sam", Sam)):
        torch.manual_seed(1)
        net = calibrated(cls())
        out[name] = (export(net, d / f"{name}.onnx", False), net)
    return out


def _variant(stdout: str) -> Path:
    m = re.search(r"hls: report (\S+)/report/report\.md", stdout)
    assert m, stdout
    return Path(m.group(1))


@pytest.mark.parametrize("name", ["w2a2", "w8a8", "spp", "sam"])
def test_user_qonnx_through_the_whole_chain(exports, name, tmp_path, finn: Finn):
    path, net = exports[name]
    root = tmp_path / "build"
    r = hwcsp("hls", "--qonnx", str(path), "--macs", "64", "--no-baseline", "--build-root", str(root))
    assert r.returncode == 0, r.stderr[-3000:]
    hw = _variant(r.stdout)
    assert hw.parent.name.startswith(f"qonnx-{path.stem.replace('_', '-')}-{H}x{W}-")
    est = json.loads((hw / "report" / "estimates.json").read_text())
    assert est["verification"]["mismatches"] == 0
    assert est["verification"]["tensors_compared"] >= {"spp": 3, "sam": 5}.get(name, 9)
    if name == "spp":  # 9x9 and 13x13 as chains of 5x5 windows: 1 + 2 + 3 pools, none larger
        import onnx

        graph = onnx.load(str(hw / "model.hw.onnx")).graph
        pools = [n for n in graph.node if n.op_type.startswith("Pool")]
        kernels = [a.ints for n in pools for a in n.attribute if a.name == "KernelSize"]
        assert len(pools) == 6 and all(list(k) == [5, 5] for k in kernels), kernels
        maxes = [n.op_type for n in graph.node if n.op_type.startswith("ElementwiseMax")]
        assert maxes == ["ElementwiseMax_hls"], maxes  # the Maxout, on add.sv's MAX mode
    if name == "sam":  # the gate: a sigmoid as thresholds, and a product of two streams
        import onnx

        ops = [n.op_type for n in onnx.load(str(hw / "model.hw.onnx")).graph.node]
        assert ops.count("ElementwiseMul_hls") == 1, ops
    assert "weights of the QONNX file" in (hw / "report" / "report.md").read_text()

    # golden == FINN (every tensor) == qonnx (output and every activation), 0 mismatching integers
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(2, H, W, 3))
    tally = chain_tally(hw, None, finn, x)
    assert tally.mismatches == 0, str(tally)
    if name == "sam":  # the gate must use its range, not sit at one code
        import onnx

        from golden.execute import Program

        tmap = json.loads((hw / "tensor_map.json").read_text())
        gate = next(v for k, v in tmap.items() if k.startswith("/gate/"))
        codes = Program(onnx.load(str(hw / "model.hw.onnx"))).run({"input": x}, return_all=True)[gate]
        assert len(np.unique(codes)) >= 6, np.unique(codes)
    assert tally.tensors >= {"spp": 10, "sam": 10}.get(name, 9 + 20), str(tally)

    # == the Brevitas module the file was exported from (its output, both frames)
    import onnx

    from golden.execute import Program
    from golden.software import load_io_spec

    spec = load_io_spec(hw / "io_spec.json")
    gold = Program(onnx.load(str(hw / "model.hw.onnx"))).run({spec.input.name: x})
    (out,) = spec.outputs
    with torch.no_grad():
        y = net(torch.as_tensor(x.transpose(0, 3, 1, 2), dtype=torch.float32) * spec.input.scale)
    y = y.numpy().astype(np.float64) / out.scale - out.bias.reshape(1, -1, 1, 1)
    g = gold[out.name].transpose(0, 3, 1, 2)
    assert np.array_equal(y, np.round(y)) and int((g != y).sum()) == 0
    assert len(np.unique(g)) > 8, "the output accumulator is degenerate: the test would prove little"

    # golden vectors, every node's RTL on them, then the stitched network at the bottleneck
    args = ("--qonnx", str(path), "--macs", "64", "--build-root", str(root))
    r = hwcsp("golden", *args, "--n", "2")
    assert r.returncode == 0 and (hw / "vectors" / "manifest.json").is_file(), r.stderr[-2000:]
    r = hwcsp("sim", *args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert re.search(r"sim: (\d+) of \1 nodes pass", r.stdout), r.stdout[-2000:]
    r = hwcsp("verify", *args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    m = re.search(r"steady state (\d+) cycles per frame \(([\d.]+) x the estimate (\d+)\)", r.stdout)
    assert m and float(m.group(2)) <= 1.05, r.stdout[-2000:]


def test_half_even_ties_occur_and_match(exports):
    """The stock quantizers' ROUND is half-to-even; the test networks must hit its ties (else the
    tie rule of hls.lower would go untested): count them on the W8A8 network's activations."""
    from brevitas.quant_tensor import QuantTensor

    _, net = exports["w8a8"]
    ties = 0
    hooks = []

    def count(mod, inp, out):
        nonlocal ties
        if isinstance(mod, nn.Module) and hasattr(mod, "act_quant"):
            v = inp[0].value if isinstance(inp[0], QuantTensor) else inp[0]
            s = float(out.scale)
            r = torch.relu(v) / s if "ReLU" in type(mod).__name__ else v / s
            ties += int(((r - r.floor()) == 0.5).sum())

    for m in net.modules():
        if type(m).__name__ in ("QuantReLU",):
            hooks.append(m.register_forward_hook(count))
    rng = np.random.default_rng(3)
    with torch.no_grad():
        net(torch.as_tensor(rng.integers(0, 256, size=(2, 3, H, W)), dtype=torch.float32) / 256)
    for h in hooks:
        h.remove()
    assert ties > 0


# ----------------------------------------------------------------------------- refusals
def _net(kind: str) -> nn.Module:
    qnn, q = _brevitas()
    W4 = dict(weight_quant=q.Int8WeightPerTensorFixedPoint, weight_bit_width=4, bias=False)
    U4 = dict(act_quant=q.Uint8ActPerTensorFixedPoint, bit_width=4)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            act = q.Int8ActPerTensorFixedPoint if kind == "signed-input" else q.Uint8ActPerTensorFixedPoint
            self.inp = qnn.QuantIdentity(act_quant=act, return_quant_tensor=True)
            groups = 4 if kind == "depthwise" else 1
            wq = dict(W4, weight_quant=q.Int8WeightPerTensorFloat) if kind == "float-scale" else W4
            self.c1 = qnn.QuantConv2d(4, 4, 3, padding=1, groups=groups, **wq)
            self.bn = nn.BatchNorm2d(4)
            self.r1 = qnn.QuantReLU(**U4, return_quant_tensor=True)
            self.c2 = qnn.QuantConv2d(4, 4, 1, **W4)
            self.s1 = qnn.QuantIdentity(act_quant=q.Int8ActPerTensorFixedPoint, bit_width=4)
            self.s2 = qnn.QuantIdentity(act_quant=q.Int8ActPerTensorFixedPoint, bit_width=6)
            self.up = nn.ConvTranspose2d(4, 4, 2, stride=2)

        def forward(self, x):
            if kind != "float-input":
                x = self.inp(x)
            y = self.c1(x)
            if kind == "batchnorm":
                y = self.bn(y)
            if kind == "sigmoid":
                return self.c2(self.r1(torch.sigmoid(y)))
            y = self.r1(y)
            if kind == "join-scales":  # an add of two differently quantized branches
                return self.s1(self.c2(y)) + self.s2(self.c2(y))
            if kind == "concat-scales":
                return torch.cat([self.s1(self.c2(y)), self.s2(self.c2(y))], dim=1)
            if kind == "swish":
                z = self.c2(y)
                return self.c2(self.r1(z * torch.sigmoid(z)))
            if kind == "no-hw-layer":
                return self.up(y.value if hasattr(y, "value") else y)
            return self.c2(y)

    return Net()


REFUSALS = {
    "depthwise": r"depthwise convolution \(group=4\) is not supported",
    "float-scale": r"is not a power of two \(rule: fixed-point quantizers",
    "batchnorm": r"BatchNormalization is a float op inside the integer partition",
    "sigmoid": r"Sigmoid is not integer hardware",
    "join-scales": r"Add inputs have different scales",
    "concat-scales": r"Concat inputs have different scales",
    "swish": r"Sigmoid is not integer hardware",
    "no-hw-layer": r"ConvTranspose has no hardware layer",
    "float-input": r"a float input has no hardware stream",
    "signed-input": r"the input Quant is signed 8-bit",
}


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_rule_breaks_exit_2_with_one_line_and_write_nothing(kind, tmp_path):
    torch.manual_seed(0)
    net = _net(kind)
    with torch.no_grad():  # activation scales from runtime statistics
        net.train()
        for _ in range(4):
            net(torch.rand(2, 4, 8, 8))
    path = export(net.eval(), tmp_path / f"{kind}.onnx", dynamo=False, shape=(1, 4, 8, 8))
    root = tmp_path / "build"
    r = hwcsp("hls", "--qonnx", str(path), "--build-root", str(root))
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwcsp hls: error:"), r.stderr
    assert re.search(REFUSALS[kind], lines[0]), lines[0]
    assert not root.exists() or not any(root.iterdir()), sorted(root.rglob("*"))


@pytest.mark.parametrize(
    "content, message",
    [(b"\x08\x07garbage", "is not a readable ONNX model"), (None, "has no Quant nodes")],
)
def test_unreadable_or_plain_onnx_is_refused(tmp_path, content, message):
    path = tmp_path / "m.onnx"
    if content is None:  # a plain float ONNX model: no Quant node
        torch.onnx.export(nn.Conv2d(3, 4, 3), torch.rand(1, 3, 8, 8), str(path), dynamo=False)
    else:
        path.write_bytes(content)
    r = hwcsp("hls", "--qonnx", str(path), "--build-root", str(tmp_path / "build"))
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "build").exists()


def test_qonnx_and_a_model_or_config_arguments_are_refused(exports):
    path, _ = exports["w2a2"]
    for args, message in [
        (("cspdensenet-ref", "--qonnx", str(path)), "not both"),
        (("--qonnx", str(path), "--size", "64"), "--size: a QONNX file fixes"),
        ((), "give a model name or --qonnx FILE"),
    ]:
        r = hwcsp("hls", *args)
        assert r.returncode == 2 and message in r.stderr, r.stderr


def test_make_passes_qonnx_on():
    r = subprocess.run(
        ["make", "-n", "verify", "QONNX=mynet.onnx", "MACS=64"], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert re.search(r"hwcsp\.cli verify --qonnx mynet\.onnx .*--macs 64", r.stdout), r.stdout
