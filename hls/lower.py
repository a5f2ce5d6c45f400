"""CSP-aware streamlining: QONNX → integer-only, channels-last FINN-ONNX in one linear pass.

FINN's stock route (ConvertQONNXtoFINN, Streamline, LowerConvsToMatMul, StreamlinePlus,
transpose absorption) moves float scales node by node through forks and joins and re-infers
the whole graph after each move; on CSP graphs it costs minutes and grows faster than linearly
with depth. Here every tensor carries an exact affine description relative to the integers the
hardware sees, ``float = scale * (int + offset)``, propagated once in topological order:

- the input Quant becomes UINT8 codes at scale 2^-8 (the software side transposes to NHWC);
- weight and bias Quant nodes become integer initializers (scale per output channel);
- Conv → [Im2Col] + MatMul on integers: scale_in * scale_w, offset = integer bias;
- Relu → Quant(FLOOR, HALF_UP or half-even ROUND) → MultiThreshold with exact integer
  thresholds: v >= s*i  ⟺  acc >= ceil(s*i/scale - offset) (FLOOR), a tie of half-even rounding
  moving an odd step's threshold one unit up; every Quant scale must be a power of two;
- scale-preserving ops (MaxPool with its zero Pad, Split, nearest Resize) pass the scale on; a
  centred stride-1 max pool of 7x7 or more becomes a chain of 5x5 (and 3x3) pools, exactly;
  a 1x1 MaxPool of stride s (Darknet's strided shortcut) is a sliding window alone (Im2Col);
- AveragePool + FLOOR Trunc (floor(sum / k^2)) → FINN's QuantAvgPool2d; a global mean →
  GlobalAccPool, its 1/(H*W) an exact integer divisor (``Affine.div``) for the next thresholds;
- a signed Quant without a Relu (a residual branch) → a signed MultiThreshold (out_bias);
- Max of equal-scale codes (Maxout: a channel Split, then Max) → ElementwiseMax pairs;
- Sigmoid → Quant (SAM's gate) → thresholds read off qonnx's own execution of that Sigmoid and
  Quant on every accumulator value (a monotone staircase); Mul of two code streams (features times
  gate) → ElementwiseMul, the scales multiplied (not an equal-scale join);
- a grouped Conv → a split tree, one window and MVAU per group, per-group thresholds, a concat
  tree (at most four streams per split or concat, the RTL's limit);
  joins (Concat, Add, Max) require one scale on every input — which the zoo's shared quantizers
  guarantee — and are refused otherwise;
- each network output stays the integer accumulator; its 2^k scale and integer bias go to the
  software side (``io_spec.json``).

Every rule checks its premise and raises ``LoweringError`` naming the node otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hwcsp.errors import UserError


class LoweringError(UserError, ValueError):
    pass


# Why an op has no hardware layer: the rule it breaks ("" for any op not listed).
UNSUPPORTED = {
    "BatchNormalization": "is a float op inside the integer partition: fold it into the preceding "
    "convolution's weights and bias before quantizing (or export a BN-folded model)",
    "HardSigmoid": "is not integer hardware (rule: ReLU is the only activation)",
    "Tanh": "is not integer hardware (rule: ReLU is the only activation)",
    "LeakyRelu": "is not integer hardware (rule: ReLU is the only activation)",
    "Mul": "by a constant is a float multiplication inside the integer partition (a scale that was "
    "not absorbed): scales must come from Quant nodes; a product of two streams is supported",
    "Div": "is a float op inside the integer partition",
    "Gemm": "has no hardware layer here: use a 1x1 convolution on a 1x1 map",
    "MatMul": "has no hardware layer here: use a 1x1 convolution on a 1x1 map",
    "": "has no hardware layer (the supported ops: Quant, Conv, Relu, MaxPool, Pad, AveragePool "
    "+ Trunc, ReduceMean, Flatten, Split, Concat, Add, Max, Resize)",
}


@dataclass
class Affine:
    """float = scale * (int + offset) / div; scale and offset per channel (or scalar).

    ``div`` is an integer divisor that is not a power of two (a global average's H*W): kept
    apart so that the thresholds that absorb it stay exact."""

    name: str  # tensor name in the lowered graph
    scale: np.ndarray
    offset: np.ndarray
    bits: int
    signed: bool
    shape: tuple[int, ...]  # NHWC
    div: int = 1

    @property
    def dtype(self) -> str:
        return f"{'INT' if self.signed else 'UINT'}{self.bits}"

    @property
    def code_range(self) -> tuple[int, int]:
        if self.signed:
            return -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1
        return 0, 2**self.bits - 1

    def scalar_scale(self, where: str) -> float:
        s = np.unique(self.scale)
        if s.size != 1:
            raise LoweringError(f"{where}: needs one scale per tensor, found per-channel scales")
        return float(s[0])

    def require_codes(self, where: str) -> None:
        if np.any(self.offset != 0):
            raise LoweringError(f"{where}: input has a non-zero offset (bias not absorbed into thresholds)")
        if self.div != 1:
            raise LoweringError(
                f"{where}: input is a sum still to be divided by {self.div} (a Quant must follow)"
            )


@dataclass
class OutputSpec:
    name: str  # lowered graph output (integer accumulator, NHWC)
    qonnx_name: str
    scale: float  # float = scale * (int + bias)
    bias: list[int]
    bits: int
    signed: bool
    shape: tuple[int, ...]


@dataclass
class Lowered:
    model: object  # qonnx ModelWrapper
    input_name: str
    input_scale: float
    input_shape: tuple[int, ...]  # NHWC
    outputs: list[OutputSpec]
    tensor_map: dict[str, str] = field(default_factory=dict)  # QONNX activation tensor → lowered tensor


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _is_pow2(x: float) -> bool:
    return x > 0 and math.frexp(x)[0] == 0.5


def int_bits(lo: float, hi: float) -> tuple[int, bool]:
    """Smallest (bits, signed) integer type holding [lo, hi]."""
    lo, hi = math.floor(lo), math.ceil(hi)
    if lo >= 0:
        return max(1, hi.bit_length()), False
    return max((-lo - 1).bit_length(), max(hi, 0).bit_length()) + 1, True


class _Lowerer:
    def __init__(self, model: onnx.ModelProto):
        self.src = model
        g = model.graph
        self.inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.producer = {o: n for n in g.node for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in g.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.shapes = {}
        for vi in list(g.value_info) + list(g.input) + list(g.output):
            dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            if dims and all(d > 0 for d in dims):
                self.shapes[vi.name] = tuple(dims)
        self.env: dict[str, Affine] = {}
        self.consts: dict[str, tuple[np.ndarray, np.ndarray, int, bool]] = {}
        self.nodes: list = []
        self.new_inits: dict[str, np.ndarray] = {}
        self.dtypes: dict[str, str] = {}
        self.layouts: dict[str, str] = {}
        self.tensor_map: dict[str, str] = {}
        self.skip: set[str] = set()
        # grouped convolutions awaiting their activation Quant: QONNX tensor -> per-group accumulators
        self.grouped: dict[str, list[Affine]] = {}
        self.n = 0

    # ------------------------------------------------------------------ helpers
    def fresh(self, base: str) -> str:
        self.n += 1
        return f"{base}__{self.n}"

    def quant_params(self, node):
        s = self.inits.get(node.input[1])
        zp = self.inits.get(node.input[2])
        bw = self.inits.get(node.input[3])
        if s is None or zp is None or bw is None:
            raise LoweringError(f"{node.name}: Quant with non-constant scale, zero point or bit width")
        if np.any(zp != 0):
            raise LoweringError(f"{node.name}: non-zero zero point (only symmetric/unsigned codes)")
        bits = int(bw)
        if bits != bw:
            raise LoweringError(f"{node.name}: fractional bit width {bw}")
        if not all(_is_pow2(float(v)) for v in np.asarray(s).reshape(-1)):
            bad = next(float(v) for v in np.asarray(s).reshape(-1) if not _is_pow2(float(v)))
            raise LoweringError(
                f"{node.name}: scale {bad:g} is not a power of two (rule: fixed-point quantizers "
                "only, e.g. Brevitas' *FixedPoint ones, so that every threshold is an exact integer)"
            )
        return (
            np.asarray(s, dtype=np.float64),
            bits,
            bool(_attr(node, "signed", 1)),
            bool(_attr(node, "narrow", 0)),
        )

    def const_codes(self, node):
        """Integer codes of a Quant node on an initializer (weights, biases)."""
        x = self.inits[node.input[0]].astype(np.float64)
        s, bits, signed, narrow = self.quant_params(node)
        mode = _attr(node, "rounding_mode", b"ROUND")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode not in ("ROUND", "HALF_EVEN"):
            raise LoweringError(f"{node.name}: weight rounding mode {mode} not supported")
        lo = -(2 ** (bits - 1)) + (1 if narrow else 0) if signed else 0
        hi = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
        codes = np.clip(np.round(x / s), lo, hi)
        return codes.astype(np.int64), s, bits, signed

    def emit(self, op, inputs, outputs, domain="", **attrs):
        self.nodes.append(
            helper.make_node(op, inputs, outputs, name=f"{op}_{len(self.nodes)}", domain=domain, **attrs)
        )

    def init(self, name, arr, dtype: str | None = None):
        self.new_inits[name] = np.asarray(arr, dtype=np.float32)
        if dtype:
            self.dtypes[name] = dtype
        return name

    def set_t(self, qname: str, a: Affine) -> Affine:
        self.env[qname] = a
        self.dtypes[a.name] = a.dtype
        self.layouts[a.name] = "NHWC"
        return a

    # ------------------------------------------------------------------ ops
    def lower(self) -> Lowered:
        g = self.src.graph
        if len(g.input) != 1:
            raise LoweringError(f"expected one graph input, found {len(g.input)}")
        gin = g.input[0].name
        n, c, h, w = self.shapes[gin]
        qin = self.consumers.get(gin, [])
        if len(qin) != 1 or qin[0].op_type != "Quant":
            raise LoweringError("the graph input must feed exactly one input Quant node (UINT8 codes)")
        s, bits, signed, _ = self.quant_params(qin[0])
        if bits != 8 or signed or s.size != 1 or not _is_pow2(float(s)):
            raise LoweringError(
                f"input Quant must be UINT8 with a power-of-two scale, got {bits} b signed={signed} scale={s}"
            )
        in_scale = float(s)
        self.input_shape = (n, h, w, c)
        a = self.set_t(
            qin[0].output[0], Affine("input", np.array(in_scale), np.array(0.0), 8, False, self.input_shape)
        )
        self.tensor_map[qin[0].output[0]] = a.name
        self.skip.add(qin[0].name)

        for node in g.node:
            if node.name in self.skip:
                continue
            op = node.op_type
            handler = getattr(self, f"op_{op}", None)
            if handler is None:
                raise LoweringError(f"{node.name}: {op} {UNSUPPORTED.get(op, UNSUPPORTED[''])}")
            handler(node)

        outs = []
        for o in g.output:
            if o.name not in self.env:
                raise LoweringError(f"graph output {o.name} was not produced")
            a = self.env[o.name]
            where = f"output {o.name}"
            sc = a.scalar_scale(where)
            bias = np.broadcast_to(a.offset, (a.shape[-1],)).astype(np.float64)
            if np.any(bias != np.round(bias)):
                raise LoweringError(f"{where}: bias is not an integer multiple of the accumulator scale")
            if not _is_pow2(sc):
                raise LoweringError(f"{where}: output scale {sc} is not a power of two")
            outs.append(OutputSpec(a.name, o.name, sc, [int(b) for b in bias], a.bits, a.signed, a.shape))
        return Lowered(self.build(outs), "input", in_scale, self.input_shape, outs, self.tensor_map)

    def op_Quant(self, node):
        if node.input[0] in self.inits:  # weights or bias: consumed by their Conv
            self.consts[node.output[0]] = self.const_codes(node)
            return
        prod = self.producer.get(node.input[0])
        s, bits, signed, narrow = self.quant_params(node)
        relu = prod is not None and prod.op_type == "Relu"
        sigmoid = prod is not None and prod.op_type == "Sigmoid"
        if relu and signed:
            raise LoweringError(f"{node.name}: signed activations after Relu are not supported")
        if narrow:
            raise LoweringError(f"{node.name}: narrow-range activations are not supported")
        # (an unsigned Quant needs no Relu before it: its clamp at 0 is the lowest threshold)
        src = prod.input[0] if relu or sigmoid else node.input[0]
        if s.size != 1 or not _is_pow2(float(s)):
            raise LoweringError(f"{node.name}: activation scale must be one power of two, got {s}")
        mode = _attr(node, "rounding_mode", b"ROUND")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        out = node.output[0]
        parts = self.grouped.pop(src, None)
        if sigmoid:
            if parts is not None:
                raise LoweringError(f"{node.name}: a sigmoid after a grouped convolution is not supported")
            a = self._sigmoid_threshold(node, self.env[src], out, float(s), bits, signed)
        elif parts is None:
            a = self._threshold(node, self.env[src], out, float(s), bits, signed, mode)
        else:  # a grouped convolution: thresholds per group (into each MVAU), then one concat
            codes = [
                self._threshold(node, p, self.fresh(f"{out}.g{i}"), float(s), bits, signed, mode)
                for i, p in enumerate(parts)
            ]
            a = self._concat_tree(codes, out)
        self.set_t(out, a)
        self.tensor_map[out] = a.name

    def _threshold(self, node, x: Affine, out: str, s: float, bits: int, signed: bool, mode: str) -> Affine:
        lo = -(2 ** (bits - 1)) if signed else 0  # the lowest code; a threshold per step above it
        steps = np.arange(lo + 1, lo + 2**bits, dtype=np.float64)
        if mode == "FLOOR":
            edge = s * steps  # v >= s*i  ⟹  code >= i
        elif mode in ("HALF_UP", "ROUND", "HALF_EVEN"):
            edge = s * (steps - 0.5)
        else:
            raise LoweringError(f"{node.name}: rounding mode {mode} is not supported")
        ch = x.shape[-1]
        scale = np.broadcast_to(x.scale, (ch,)).astype(np.float64)
        offset = np.broadcast_to(x.offset, (ch,)).astype(np.float64)
        if np.any(scale <= 0):
            raise LoweringError(f"{node.name}: non-positive input scale")
        # v = scale * (acc + offset) / div >= edge  ⟺  acc >= edge * div / scale - offset (all exact)
        val = edge[None, :] * x.div / scale[:, None] - offset[:, None]
        thr = np.ceil(val)
        if mode in ("ROUND", "HALF_EVEN"):
            # Half-even rounding is monotone too: at a tie v = s*(i - 1/2) the code is i only when
            # i is even, so an odd step's threshold at an exact tie moves one accumulator unit up.
            thr += (val == thr) & (steps[None, :] % 2 == 1)
        # Outside the input's range a threshold is always or never passed: clip it to
        # [min, max + 1] (FINN's RoundAndClipThresholds), so the threshold memory is as narrow as
        # the accumulator (+ 1 bit at most) whatever the BatchNorm statistics were.
        xmin, xmax = (-(2 ** (x.bits - 1)), 2 ** (x.bits - 1) - 1) if x.signed else (0, 2**x.bits - 1)
        thr = np.clip(thr, xmin, xmax + 1)
        return self._emit_thresholds(x, out, thr, s, bits, signed)

    def _emit_thresholds(self, x: Affine, out: str, thr: np.ndarray, s: float, bits: int, signed: bool):
        """A MultiThreshold of ``x`` into ``bits``-bit codes at scale ``s`` (thr: channels x steps)."""
        lo = -(2 ** (bits - 1)) if signed else 0
        if np.all(thr == thr[:1]):
            thr = thr[:1]
        tb, ts = int_bits(thr.min(), thr.max())
        t = self.init(self.fresh(f"{out}.thr"), thr, f"{'INT' if ts else 'UINT'}{tb}")
        attrs = {"out_bias": float(lo)} if signed else {}
        self.emit(
            "MultiThreshold",
            [x.name, t],
            [out],
            domain="qonnx.custom_op.general",
            out_dtype=f"{'INT' if signed else 'UINT'}{bits}",
            data_layout="NHWC",
            **attrs,
        )
        a = Affine(out, np.array(s), np.array(0.0), bits, signed, x.shape)
        self.dtypes[out], self.layouts[out] = a.dtype, "NHWC"
        return a

    # Accumulators of more bits than this are not tabulated for a sigmoid's thresholds.
    SIGMOID_TABLE_BITS = 20

    def _sigmoid_threshold(self, node, x: Affine, out: str, s: float, bits: int, signed: bool):
        """Quant(Sigmoid(v)) on an accumulator: monotone, so exactly a set of thresholds (SAM's
        gate). They are read off the reference itself — qonnx executing this Sigmoid and this Quant
        on every accumulator value of each distinct channel scale and offset, as float32 exactly as
        the convolution delivers it — so the hardware equals qonnx's float sigmoid bit for bit."""
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx

        if x.div != 1:
            raise LoweringError(f"{node.name}: a sigmoid of a global mean is not supported")
        if x.bits > self.SIGMOID_TABLE_BITS:
            raise LoweringError(
                f"{node.name}: a sigmoid on a {x.bits}-bit accumulator is too wide to tabulate "
                f"(at most {self.SIGMOID_TABLE_BITS} bits)"
            )
        acc_lo, acc_hi = x.code_range
        acc = np.arange(acc_lo, acc_hi + 1, dtype=np.float64)
        ch = x.shape[-1]
        per_ch = list(
            zip(
                np.broadcast_to(x.scale, (ch,)).tolist(),
                np.broadcast_to(x.offset, (ch,)).tolist(),
                strict=True,
            )
        )
        pairs = sorted(set(per_ch))  # one table per distinct (scale, offset)
        exact = np.stack([sc * (acc + off) for sc, off in pairs])
        v = exact.astype(np.float32)  # what the float convolution delivers, when it is exact
        if not np.array_equal(v.astype(np.float64), exact):
            raise LoweringError(f"{node.name}: the accumulator is not exact in float32 (too wide)")
        quant = onnx.NodeProto()
        quant.CopyFrom(node)
        quant.input[0] = "sig"
        quant.output[0] = "code"
        graph = helper.make_graph(
            [helper.make_node("Sigmoid", ["v"], ["sig"]), quant],
            "sigmoid_table",
            [helper.make_tensor_value_info("v", onnx.TensorProto.FLOAT, list(v.shape))],
            [helper.make_tensor_value_info("code", onnx.TensorProto.FLOAT, list(v.shape))],
            [numpy_helper.from_array(np.asarray(self.inits[i], dtype=np.float32), i) for i in node.input[1:]],
            value_info=[helper.make_tensor_value_info("sig", onnx.TensorProto.FLOAT, list(v.shape))],
        )
        model = ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
        codes = execute_onnx(model, {"v": v})["code"].astype(np.float64) / s
        if not np.array_equal(codes, np.round(codes)) or np.any(np.diff(codes, axis=1) < 0):
            raise LoweringError(f"{node.name}: the quantized sigmoid is not a monotone integer staircase")
        lo = -(2 ** (bits - 1)) if signed else 0
        steps = np.arange(lo + 1, lo + 2**bits)
        first = {  # step i: the first accumulator whose code reaches i (acc_hi + 1: never)
            p: acc_lo + np.searchsorted(c, steps, side="left") for p, c in zip(pairs, codes, strict=True)
        }
        thr = np.stack([first[p] for p in per_ch]).astype(np.float64)
        return self._emit_thresholds(x, out, thr, s, bits, signed)

    def op_Sigmoid(self, node):
        users = self.consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Quant":
            raise LoweringError(
                f"{node.name}: Sigmoid is not integer hardware unless a Quant follows it directly "
                "(then it is a set of thresholds, as SAM's gate)"
            )

    def op_Mul(self, node):
        """The product of two streams of codes (SAM: features times their gate): not an
        equal-scale join — the scales multiply, and a Quant after it requantizes."""
        if any(i in self.inits for i in node.input):
            raise LoweringError(f"{node.name}: Mul {UNSUPPORTED['Mul']}")
        a, b = (self.env[i] for i in node.input)
        for t in (a, b):
            t.require_codes(node.name)
        if a.shape != b.shape:
            raise LoweringError(f"{node.name}: Mul of shapes {a.shape} and {b.shape} (no broadcasting)")
        sa, sb = a.scalar_scale(node.name), b.scalar_scale(node.name)
        corners = [p * q for p in a.code_range for q in b.code_range]
        bits, signed = int_bits(min(corners), max(corners))
        out = node.output[0]
        self.emit("Mul", [a.name, b.name], [out])
        self.set_t(out, Affine(out, np.array(sa * sb), np.array(0.0), bits, signed, a.shape))

    # Our RTL split, duplicator and concat take at most this many streams: wider ones become trees.
    MAX_FANOUT = 4

    def _split_tree(self, x: Affine, n: int, base: str) -> list[Affine]:
        """``x`` split into ``n`` equal channel parts by a tree of splits of <= MAX_FANOUT outputs."""
        if n <= self.MAX_FANOUT:
            c = x.shape[-1] // n
            outs = [self.fresh(f"{base}.{i}") for i in range(n)]
            sizes = self.init(self.fresh(f"{base}.sizes"), np.array([c] * n))
            self.new_inits[sizes] = np.array([c] * n, dtype=np.int64)
            self.emit("Split", [x.name, sizes], outs, axis=3)
            parts = []
            for i, o in enumerate(outs):
                sc = x.scale if x.scale.size == 1 else x.scale[i * c : (i + 1) * c]
                a = Affine(o, sc, np.array(0.0), x.bits, x.signed, (*x.shape[:3], c))
                self.dtypes[o], self.layouts[o] = a.dtype, "NHWC"
                parts.append(a)
            return parts
        k = next(d for d in range(self.MAX_FANOUT, 1, -1) if n % d == 0)
        return [
            p
            for i, top in enumerate(self._split_tree(x, k, base))
            for p in self._split_tree(top, n // k, f"{base}.{i}")
        ]

    def _concat_tree(self, parts: list[Affine], out: str) -> Affine:
        """One channel concat of ``parts`` into ``out`` by a tree of concats of <= MAX_FANOUT inputs."""
        if len(parts) > self.MAX_FANOUT:
            k = next(d for d in range(self.MAX_FANOUT, 1, -1) if len(parts) % d == 0)
            m = len(parts) // k
            parts = [
                self._concat_tree(parts[i * m : (i + 1) * m], self.fresh(f"{out}.c{i}")) for i in range(k)
            ]
        self.emit("Concat", [p.name for p in parts], [out], axis=3)
        a = Affine(
            out,
            parts[0].scale,
            parts[0].offset,
            max(p.bits for p in parts),
            any(p.signed for p in parts),
            (*parts[0].shape[:3], sum(p.shape[-1] for p in parts)),
        )
        self.dtypes[out], self.layouts[out] = a.dtype, "NHWC"
        return a

    def op_Relu(self, node):
        users = self.consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Quant":
            raise LoweringError(f"{node.name}: a Relu must be followed by exactly one activation Quant")

    def op_Conv(self, node):
        x = self.env[node.input[0]]
        x.require_codes(node.name)
        sx = x.scalar_scale(node.name)
        if node.input[1] not in self.consts:
            raise LoweringError(f"{node.name}: weights are not quantized (float layer inside the partition)")
        w, sw, wbits, wsigned = self.consts[node.input[1]]
        group = int(_attr(node, "group", 1))
        cout, cin_g = w.shape[:2]
        if group != 1 and cin_g == 1:
            raise LoweringError(f"{node.name}: depthwise convolution (group={group}) is not supported")
        if _attr(node, "dilations", [1, 1]) != [1, 1]:
            raise LoweringError(f"{node.name}: dilated convolution is not supported")
        stride = list(_attr(node, "strides", [1, 1]))
        pads = list(_attr(node, "pads", [0, 0, 0, 0]))
        c = x.shape[-1]
        if c != cin_g * group:
            raise LoweringError(f"{node.name}: {c} input channels, weights expect {cin_g * group}")
        sw = np.broadcast_to(sw.reshape(-1), (cout,)).astype(np.float64)
        acc_scale = sx * sw
        offset = np.zeros(cout)
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in self.consts:
                raise LoweringError(f"{node.name}: bias is not quantized")
            b, sb, _, _ = self.consts[node.input[2]]
            sb = np.broadcast_to(sb.reshape(-1), (cout,))
            offset = b.reshape(-1) * sb / acc_scale  # bias in accumulator units
        out = node.output[0]
        if group == 1:
            self.set_t(out, self._matmul(x, w, wbits, wsigned, acc_scale, offset, stride, pads, out))
            return
        # Grouped: split the input channels *before* the sliding window (a window after it would
        # cut kernel taps, not groups), one window and one MVAU per group: no zero block of the
        # block-diagonal weight matrix is ever executed. The activation Quant that must follow
        # thresholds each group and concatenates (op_Quant).
        users = self.consumers.get(out, [])
        if not users or any(u.op_type not in ("Relu", "Quant") for u in users):
            raise LoweringError(
                f"{node.name}: a grouped convolution must be followed by its activation Quant"
            )
        cg = cout // group
        parts = self._split_tree(x, group, f"{out}.in")
        self.grouped[out] = [
            self._matmul(
                p,
                w[i * cg : (i + 1) * cg],
                wbits,
                wsigned,
                acc_scale[i * cg : (i + 1) * cg],
                offset[i * cg : (i + 1) * cg],
                stride,
                pads,
                self.fresh(f"{out}.g{i}"),
            )
            for i, p in enumerate(parts)
        ]
        self.env[out] = self.grouped[out][0]  # only its Quant reads it (through self.grouped)

    def _im2col(self, x: Affine, out: str, k: list[int], stride: list[int], pads: list[int]) -> str:
        """A sliding window over codes ``x`` (FINN's ConvolutionInputGenerator after convert_to_hw)."""
        n, h, w, c = x.shape
        self.emit(
            "Im2Col",
            [x.name],
            [out],
            domain="qonnx.custom_op.general",
            stride=stride,
            kernel_size=k,
            pad_amount=pads,
            pad_value=0,
            input_shape=f"({n},{h},{w},{c})",
            dilations=[1, 1],
        )
        self.dtypes[out], self.layouts[out] = x.dtype, "NHWC"
        return out

    def _matmul(self, x: Affine, w, wbits, wsigned, acc_scale, offset, stride, pads, out: str) -> Affine:
        """[Im2Col +] MatMul of codes ``x`` with the (Cout, Cin, kh, kw) integer weights ``w``."""
        cout, _, kh, kw = w.shape
        n, h, wd, _ = x.shape
        oh = (h + pads[0] + pads[2] - kh) // stride[0] + 1
        ow = (wd + pads[1] + pads[3] - kw) // stride[1] + 1
        # [k_h*k_w*C_in, C_out] in Im2Col's (kh, kw, c) order
        wmat = w.transpose(0, 2, 3, 1).reshape(cout, -1).T
        src = x.name
        if kh * kw > 1 or stride != [1, 1] or any(pads):
            src = self._im2col(x, self.fresh(f"{out}.im2col"), [kh, kw], stride, pads)
        wname = self.init(self.fresh(f"{out}.W"), wmat, f"{'INT' if wsigned else 'UINT'}{wbits}")
        # accumulator range from the actual weights and the input datatype
        xmin, xmax = (-(2 ** (x.bits - 1)), 2 ** (x.bits - 1) - 1) if x.signed else (0, 2**x.bits - 1)
        pos = np.clip(wmat, 0, None).sum(0)
        neg = np.clip(wmat, None, 0).sum(0)
        lo = float(np.min(pos * xmin + neg * xmax))
        hi = float(np.max(pos * xmax + neg * xmin))
        bits, signed = int_bits(lo, hi)
        self.emit("MatMul", [src, wname], [out])
        a = Affine(out, acc_scale, offset, bits, signed, (n, oh, ow, cout))
        self.dtypes[out], self.layouts[out] = a.dtype, "NHWC"
        return a

    def op_MaxPool(self, node):
        prod = self.producer.get(node.input[0])
        pads = list(_attr(node, "pads", [0, 0, 0, 0]))
        if prod is not None and prod.op_type == "Pad":  # fold the zero Pad into the window
            src = self.env[prod.input[0]]
            pads = [a + b for a, b in zip(pads, self._pad_hw(prod), strict=True)]
        else:
            src = self.env[node.input[0]]
        src.require_codes(node.name)
        if any(pads) and src.signed:
            raise LoweringError(f"{node.name}: zero padding of signed values changes a max pool")
        k = list(_attr(node, "kernel_shape"))
        s = list(_attr(node, "strides", [1, 1]))
        if _attr(node, "ceil_mode", 0):
            raise LoweringError(f"{node.name}: ceil_mode pooling is not supported")
        n, h, w, c = src.shape
        oh = (h + pads[0] + pads[2] - k[0]) // s[0] + 1
        ow = (w + pads[1] + pads[3] - k[1]) // s[1] + 1
        out = node.output[0]
        if k == [1, 1]:  # a 1x1 window: pixel sampling (Darknet's strided shortcut), a sliding window alone
            if any(pads):
                raise LoweringError(f"{node.name}: a padded 1x1 max pool is not supported")
            self._im2col(src, out, k, s, [0, 0, 0, 0])
            self.set_t(out, Affine(out, src.scale, src.offset, src.bits, src.signed, (n, oh, ow, c)))
            return
        if self._cascade(node, src, k, s, pads):
            return
        inp = src.name
        if pads[0] != pads[2] or pads[1] != pads[3]:
            # MaxPoolNHWC only pads symmetrically: an explicit channels-last Pad (FMPadding)
            inp = self.fresh(f"{out}.pad")
            p = self.init(self.fresh(f"{out}.pads"), np.array(pads))
            self.new_inits[p] = np.array(pads, dtype=np.int64)
            v = self.init(self.fresh(f"{out}.padv"), np.array(0.0))
            ax = self.init(self.fresh(f"{out}.axes"), np.array([1, 2]))
            self.new_inits[ax] = np.array([1, 2], dtype=np.int64)
            self.emit("Pad", [src.name, p, v, ax], [inp], mode="constant")
            self.set_t(
                inp,
                Affine(
                    inp,
                    src.scale,
                    src.offset,
                    src.bits,
                    src.signed,
                    (n, h + pads[0] + pads[2], w + pads[1] + pads[3], c),
                ),
            )
            pads = [0, 0, 0, 0]
        self.emit(
            "MaxPoolNHWC",
            [inp],
            [out],
            domain="qonnx.custom_op.general",
            kernel_shape=k,
            strides=s,
            pads=pads,
            ceil_mode=0,
        )
        self.set_t(out, Affine(out, src.scale, src.offset, src.bits, src.signed, (n, oh, ow, c)))

    # A k x k stride-1 max pool centred by k//2 zero padding is a chain of smaller centred pools
    # (windows add: 1 + sum(k_i - 1) = k): exact for unsigned codes (a padded 0 never wins over a
    # code), and its sliding windows cost sum(k_i^2) instead of k^2 cycles per pixel (SPP's 13x13:
    # 75 instead of 169, 25 per node).
    CASCADE_FROM = 7

    def _cascade(self, node, src: Affine, k: list[int], s: list[int], pads: list[int]) -> bool:
        if s != [1, 1] or k[0] != k[1] or k[0] < self.CASCADE_FROM or k[0] % 2 == 0:
            return False
        if pads != [k[0] // 2] * 4 or src.signed:
            return False
        sizes = [5] * ((k[0] - 1) // 4) + ([3] if (k[0] - 1) % 4 else [])
        x = src
        for i, ks in enumerate(sizes):
            out = node.output[0] if i == len(sizes) - 1 else self.fresh(f"{node.output[0]}.p{ks}")
            p = ks // 2
            self.emit(
                "MaxPoolNHWC",
                [x.name],
                [out],
                domain="qonnx.custom_op.general",
                kernel_shape=[ks, ks],
                strides=[1, 1],
                pads=[p, p, p, p],
                ceil_mode=0,
            )
            x = self.set_t(out, Affine(out, src.scale, src.offset, src.bits, src.signed, src.shape))
        return True

    def _pad_hw(self, pad_node) -> list[int]:
        p = self.inits.get(pad_node.input[1])
        if p is None:
            raise LoweringError(f"{pad_node.name}: non-constant pads")
        mode = _attr(pad_node, "mode", b"constant")
        if mode not in (b"constant", "constant"):
            raise LoweringError(f"{pad_node.name}: pad mode {mode} not supported")
        if len(pad_node.input) > 2 and pad_node.input[2]:
            v = self.inits.get(pad_node.input[2])
            if v is None or np.any(v != 0):
                raise LoweringError(f"{pad_node.name}: only zero padding is supported")
        p = [int(v) for v in p]
        if p[0] or p[1] or p[4] or p[5]:
            raise LoweringError(f"{pad_node.name}: padding of batch or channel dimensions")
        return [p[2], p[3], p[6], p[7]]  # top, left, bottom, right

    def op_Pad(self, node):
        users = self.consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "MaxPool":
            raise LoweringError(f"{node.name}: a Pad is supported only in front of a MaxPool")

    def op_AveragePool(self, node):
        """k x k average pool + Brevitas' FLOOR Trunc back to the input width = floor(sum / k^2):
        FINN's QuantAvgPool2d (a sliding window and a Pool that shifts)."""
        x = self.env[node.input[0]]
        x.require_codes(node.name)
        users = self.consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Trunc":
            raise LoweringError(
                f"{node.name}: an average pool must be followed by one Trunc (exact integers)"
            )
        trunc = users[0]
        k = list(_attr(node, "kernel_shape"))
        st = list(_attr(node, "strides", [1, 1]))
        if (
            k[0] != k[1]
            or st[0] != st[1]
            or any(_attr(node, "pads", [0, 0, 0, 0]))
            or _attr(node, "ceil_mode", 0)
        ):
            raise LoweringError(f"{node.name}: only square, unpadded average pooling is supported")
        kk = k[0] * k[0]
        if x.signed or kk & (kk - 1):
            raise LoweringError(
                f"{node.name}: average pooling needs unsigned codes and a power-of-two window"
            )
        # Trunc(x, scale, zero point, in bits, out scale, out bits): the mean at scale sx/k^2 with
        # log2(k^2) more bits, truncated back to the input's scale and width
        ins = [self.inits.get(i) for i in trunc.input[1:6]]
        mode = _attr(trunc, "rounding_mode", b"FLOOR")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        sx = x.scalar_scale(node.name)
        if len(ins) != 5 or any(v is None for v in ins):
            raise LoweringError(f"{trunc.name}: Trunc needs constant scales and widths (QONNX Trunc v2)")
        t_scale, t_zp, t_bits, o_scale, o_bits = (float(np.asarray(v).reshape(-1)[0]) for v in ins)
        exact = (t_scale * kk, t_zp, t_bits, o_scale, o_bits) == (
            sx,
            0.0,
            x.bits + kk.bit_length() - 1,
            sx,
            x.bits,
        )
        if mode != "FLOOR" or not exact:
            raise LoweringError(
                f"{trunc.name}: only a FLOOR truncation back to the input's scale and width is exact"
            )
        shift = int(kk).bit_length() - 1
        if ((2**x.bits - 1) * kk).bit_length() - x.bits != shift:  # FINN's shift rule (get_shifts)
            raise LoweringError(f"{node.name}: FINN's QuantAvgPool shift differs from log2(k^2) here")
        self.skip.add(trunc.name)
        out = trunc.output[0]
        self.emit(
            "QuantAvgPool2d",
            [x.name],
            [out],
            domain="qonnx.custom_op.general",
            kernel=k[0],
            stride=st[0],
            ibits=x.bits,
            obits=x.bits,
            signed=0,
            data_layout="NHWC",
        )
        n, h, w, c = x.shape
        shape = (n, (h - k[0]) // st[0] + 1, (w - k[0]) // st[0] + 1, c)
        self.set_t(out, Affine(out, np.array(sx), np.array(0.0), x.bits, False, shape))

    def op_Trunc(self, node):
        raise LoweringError(f"{node.name}: a Trunc outside an average pool is not supported")

    def op_ReduceMean(self, node):
        """Global average = GlobalAccPool (a sum); the 1/(H*W) goes into the next thresholds."""
        x = self.env[node.input[0]]
        x.require_codes(node.name)
        axes = self.inits.get(node.input[1]) if len(node.input) > 1 else _attr(node, "axes")
        if axes is None or sorted(int(a) for a in np.asarray(axes).reshape(-1)) != [2, 3]:
            raise LoweringError(f"{node.name}: only the global mean over H and W is supported")
        if x.signed:
            raise LoweringError(f"{node.name}: global pooling of signed values is not supported")
        n, h, w, c = x.shape
        out = node.output[0]
        hi = (2**x.bits - 1) * h * w
        self.emit(
            "GlobalAccPool",
            [x.name],
            [out],
            domain="finn.custom_op.fpgadataflow",
            backend="fpgadataflow",
            NumChannels=c,
            PE=1,
            inputDataType=x.dtype,
            numInputVectors=[n, h, w],
        )
        sx = x.scalar_scale(node.name)
        self.set_t(
            out, Affine(out, np.array(sx), np.array(0.0), int(hi).bit_length(), False, (n, 1, 1, c), h * w)
        )

    def op_Flatten(self, node):
        x = self.env[node.input[0]]
        if x.shape[1:3] != (1, 1):
            raise LoweringError(f"{node.name}: flatten of a {x.shape[1]}x{x.shape[2]} map (only 1x1)")
        self.env[node.output[0]] = x  # NHWC 1x1xC: the same stream

    def op_Split(self, node):
        x = self.env[node.input[0]]
        axis = int(_attr(node, "axis", 0))
        if axis not in (1, -3):
            raise LoweringError(f"{node.name}: split along axis {axis}; only channel splits are supported")
        sizes = self.inits.get(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        if sizes is None:
            raise LoweringError(f"{node.name}: split sizes must be explicit (not num_outputs)")
        sizes = [int(v) for v in sizes]
        name = self.init(self.fresh(f"{node.name}.sizes"), np.array(sizes))
        self.new_inits[name] = np.array(sizes, dtype=np.int64)
        self.emit("Split", [x.name, name], list(node.output), axis=3)
        start = 0
        for o, sz in zip(node.output, sizes, strict=True):
            sc = x.scale if x.scale.size == 1 else x.scale[start : start + sz]
            off = x.offset if x.offset.size == 1 else x.offset[start : start + sz]
            self.set_t(o, Affine(o, sc, off, x.bits, x.signed, (*x.shape[:3], sz)))
            start += sz

    def _same_scale(self, node, xs: list[Affine]) -> float:
        scales = set()
        for x in xs:
            x.require_codes(node.name)
            scales.add(x.scalar_scale(node.name))
        if len(scales) != 1:
            raise LoweringError(
                f"{node.name}: {node.op_type} inputs have different scales {sorted(scales)}; "
                "a join stays integer only if its inputs share one quantizer"
            )
        return scales.pop()

    def op_Concat(self, node):
        if int(_attr(node, "axis", 0)) not in (1, -3):
            raise LoweringError(f"{node.name}: concat along a non-channel axis")
        xs = [self.env[i] for i in node.input]
        s = self._same_scale(node, xs)
        bits = max(x.bits for x in xs)
        signed = any(x.signed for x in xs)
        out = node.output[0]
        self.emit("Concat", [x.name for x in xs], [out], axis=3)
        shape = (*xs[0].shape[:3], sum(x.shape[-1] for x in xs))
        self.set_t(out, Affine(out, np.array(s), np.array(0.0), bits, signed, shape))

    def op_Add(self, node):
        if any(i in self.inits for i in node.input):
            raise LoweringError(f"{node.name}: Add of a constant outside a conv bias")
        a, b = (self.env[i] for i in node.input)
        s = self._same_scale(node, [a, b])
        if a.shape != b.shape:
            a, b = self._broadcast(node, a, b)
        out = node.output[0]
        self.emit("Add", [a.name, b.name], [out])
        bits = max(a.bits, b.bits) + 1
        self.set_t(out, Affine(out, np.array(s), np.array(0.0), bits, a.signed or b.signed, a.shape))

    def _broadcast(self, node, a: Affine, b: Affine) -> tuple[Affine, Affine]:
        """A per-frame vector added to every pixel (CEM's global context): the 1x1 input is
        upsampled to the frame by nearest-neighbour repetition, a streamable layer, so the add
        stays elementwise. The upsample waits for the global pool's one output per frame, and
        the other input waits for it: the FIFO analysis sizes that wait (a whole frame)."""
        small, big = (a, b) if a.shape[1:3] == (1, 1) else (b, a)
        n, h, w, c = big.shape
        if small.shape != (n, 1, 1, c) or h != w:
            raise LoweringError(
                f"{node.name}: residual add of shapes {a.shape} and {b.shape}; a broadcast add "
                "needs one 1x1 input of as many channels and a square frame"
            )
        name = self.init(self.fresh(f"{node.name}.scales"), np.array([1.0, float(h), float(w), 1.0]))
        out = self.fresh(f"{node.name}.broadcast")
        self.emit("Resize", [small.name, "", name], [out], mode="nearest")
        up = self.set_t(out, Affine(out, small.scale, small.offset, small.bits, small.signed, big.shape))
        return (up, big) if small is a else (big, up)

    def op_Max(self, node):
        """An elementwise maximum of equal-scale inputs (Maxout: the max of channel chunks after a
        Split): a join like Add, exact on codes; more than two inputs become a tree of pairs."""
        if any(i in self.inits for i in node.input):
            raise LoweringError(f"{node.name}: Max with a constant (a clip) is not supported")
        xs = [self.env[i] for i in node.input]
        s = self._same_scale(node, xs)
        if len({x.shape for x in xs}) != 1:
            raise LoweringError(f"{node.name}: Max of shapes {sorted({x.shape for x in xs})}")
        while len(xs) > 1:
            a, b = xs[0], xs[1]
            out = node.output[0] if len(xs) == 2 else self.fresh(f"{node.output[0]}.max")
            self.emit("Max", [a.name, b.name], [out])
            (alo, ahi), (blo, bhi) = a.code_range, b.code_range
            bits, signed = int_bits(min(alo, blo), max(ahi, bhi))
            xs = [self.set_t(out, Affine(out, np.array(s), np.array(0.0), bits, signed, a.shape)), *xs[2:]]

    def op_Resize(self, node):
        x = self.env[node.input[0]]
        mode = _attr(node, "mode", b"nearest")
        if mode not in (b"nearest", "nearest"):
            raise LoweringError(f"{node.name}: only nearest-neighbour resize is supported")
        scales = self.inits.get(node.input[2]) if len(node.input) > 2 else None
        if scales is None or len(scales) != 4 or scales[0] != 1 or scales[1] != 1:
            raise LoweringError(f"{node.name}: resize needs constant NCHW scales (1, 1, f, f)")
        f = [float(scales[2]), float(scales[3])]
        if any(v != int(v) or v < 1 for v in f):
            raise LoweringError(f"{node.name}: non-integer upsampling factor {f}")
        name = self.init(self.fresh(f"{node.name}.scales"), np.array([1.0, f[0], f[1], 1.0]))
        out = node.output[0]
        self.emit("Resize", [x.name, "", name], [out], mode="nearest")
        n, h, w, c = x.shape
        self.set_t(
            out, Affine(out, x.scale, x.offset, x.bits, x.signed, (n, int(h * f[0]), int(w * f[1]), c))
        )

    # ------------------------------------------------------------------ graph
    def build(self, outs: list[OutputSpec]):
        shapes = {a.name: a.shape for a in self.env.values()}
        vi_in = helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, list(self.input_shape))
        vi_out = [helper.make_tensor_value_info(o.name, onnx.TensorProto.FLOAT, list(o.shape)) for o in outs]
        produced = {o for n in self.nodes for o in n.output}
        vis = [
            helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, list(shp))
            for t, shp in shapes.items()
            if t in produced and t not in {o.name for o in outs}
        ]
        inits = [numpy_helper.from_array(v, k) for k, v in self.new_inits.items()]
        graph = helper.make_graph(self.nodes, "hwcsp_lowered", [vi_in], vi_out, inits, value_info=vis)
        model = helper.make_model(
            graph, producer_name="hwcsp.hls.lower", opset_imports=[helper.make_opsetid("", 18)]
        )
        from qonnx.core.datatype import DataType
        from qonnx.core.modelwrapper import ModelWrapper

        w = ModelWrapper(model)
        for t, dt in sorted(self.dtypes.items()):
            w.set_tensor_datatype(t, DataType[dt])
        for t in sorted(self.layouts):
            if w.get_initializer(t) is None:
                w.set_tensor_layout(t, ["N", "H", "W", "C"])
        return w


def lower_qonnx(model: onnx.ModelProto) -> Lowered:
    """Lower a QONNX model exported by ``quant.export`` (see module docstring)."""
    return _Lowerer(model).lower()
