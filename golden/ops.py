"""Integer semantics of every FINN HW layer golden supports, on logical NHWC int64 tensors.

Each op maps (node, inputs) to outputs with the values FINN's own Python execution of the generic
node produces (`execute_node` of finn.custom_op.fpgadataflow.*), re-derived with NumPy integers
only.  Tensors are *logical*: channels innermost, in im2col (kh, kw, C) order after a sliding window
generator, whatever the stream order on the wire is (see golden.streams for that).

`inputs` holds the streamed inputs only, in node-input order; inputs that are initializers
(weights, thresholds, constant operands) are taken from `node.inits`.  A full-length list (one entry
per node input, None where an initializer should be used) is accepted as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from golden.accum import FLOAT32_EXACT, FLOAT64_EXACT, channel_bounds
from golden.datatypes import attr_dtype, parse_dtype, storage_dtype
from golden.errors import GoldenError
from golden.node import NodeView

Op = Callable[[NodeView, list[np.ndarray]], list[np.ndarray]]
_REQUIRED = object()


def attr(node: NodeView, key: str, default: Any = _REQUIRED) -> Any:
    """Node attribute `key`, FINN's default when absent, GoldenError when required and absent."""
    if key in node.attrs:
        return node.attrs[key]
    if default is _REQUIRED:
        raise GoldenError(f"node {node.name} ({node.full_op_type}): missing attribute {key!r}")
    return default


def ints(node: NodeView, key: str, default: Any = _REQUIRED) -> list[int]:
    """An `ints` attribute as a list of python ints."""
    value = attr(node, key, default)
    return [int(v) for v in (value if isinstance(value, list | tuple | np.ndarray) else [value])]


def as_int(node: NodeView, x: Any, what: str) -> np.ndarray:
    """The tensor as an integer array: integer arrays pass through uncopied (golden never writes
    into its inputs), bools become uint8, integral floats int64; other values are an error."""
    a = np.asarray(x)
    if a.dtype.kind == "i" or (a.dtype.kind == "u" and a.dtype.itemsize < 8):
        return a
    if a.dtype.kind in "ub":
        if a.dtype.kind == "u" and a.size and int(a.max()) > np.iinfo(np.int64).max:
            raise GoldenError(f"node {node.name} ({node.full_op_type}): {what} exceeds int64")
        return a.astype(np.uint8 if a.dtype.kind == "b" else np.int64)
    if a.dtype.kind != "f" or not np.all(np.isfinite(a)) or not np.all(np.round(a) == a):
        raise GoldenError(f"node {node.name} ({node.full_op_type}): {what} holds non-integer values")
    return a.astype(np.int64)


def int_range(a: np.ndarray) -> tuple[int, int]:
    """The value range an integer array's dtype admits (no pass over the data)."""
    info = np.iinfo(a.dtype)
    return int(info.min), int(info.max)


def shaped(node: NodeView, x: np.ndarray, shape: list[int], what: str = "input") -> np.ndarray:
    """Reshape to the node's normal shape (FINN reshapes the same way); a size mismatch is an error."""
    shape = [int(s) for s in shape]
    if x.size != int(np.prod(shape)):
        raise GoldenError(
            f"node {node.name} ({node.full_op_type}): {what} has shape {list(x.shape)}, "
            f"expected {shape} ({int(np.prod(shape))} elements)"
        )
    return x.reshape(shape)


def gather(node: NodeView, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """All node inputs in order: streamed ones from `inputs`, the rest from `node.inits`."""
    n = len(node.inputs)
    if len(inputs) == n:
        full = [node.inits.get(i) if x is None else x for i, x in enumerate(inputs)]
    else:
        it = iter(inputs)
        full = [node.inits[i] if i in node.inits else next(it, None) for i in range(n)]
        if next(it, None) is not None:
            raise GoldenError(f"node {node.name} ({node.full_op_type}): too many inputs ({len(inputs)})")
    for i, x in enumerate(full):
        if x is None:
            raise GoldenError(f"node {node.name} ({node.full_op_type}): input {i} is missing")
    return [np.asarray(x) for x in full]


def threshold_table(node: NodeView, thresholds: np.ndarray, channels: int) -> np.ndarray:
    """Thresholds as int64 (rows, steps), rows = channels or 1.  Integer accumulators make a
    fractional threshold t equivalent to ceil(t), so floats are rounded up once here."""
    t = np.asarray(thresholds)
    if t.ndim != 2 or t.shape[0] not in (1, channels):
        raise GoldenError(
            f"node {node.name} ({node.full_op_type}): thresholds of shape {list(t.shape)}, "
            f"expected ({channels}, steps) or (1, steps)"
        )
    if t.dtype.kind == "f":
        if not np.all(np.isfinite(t)):
            raise GoldenError(f"node {node.name} ({node.full_op_type}): non-finite thresholds")
        if t.size and float(np.abs(t).max()) >= 2.0**62:
            raise GoldenError(f"node {node.name} ({node.full_op_type}): thresholds beyond 62 bits")
        t = np.ceil(t)
    return t.astype(np.int64)


def _compare_dtype(acc: np.ndarray, t: np.ndarray) -> np.dtype:
    """A dtype in which both the accumulator values and the thresholds compare exactly."""
    tlo, thi = (int(t.min()), int(t.max())) if t.size else (0, 0)
    if acc.dtype.kind == "f":  # holds integers exactly (golden's float fast path)
        limit = FLOAT32_EXACT if acc.dtype == np.float32 else FLOAT64_EXACT
        if max(-tlo, thi) < limit:
            return acc.dtype
        return np.dtype(np.float64) if max(-tlo, thi) < FLOAT64_EXACT else np.dtype(np.int64)
    alo, ahi = int_range(acc)
    return storage_dtype(min(alo, tlo), max(ahi, thi))


_CHUNK = 1 << 15  # elements per threshold block: the block and its masks stay in cache


def count_thresholds(node: NodeView, acc: np.ndarray, thresholds: np.ndarray, channels: int) -> np.ndarray:
    """#{i : acc >= T[c, i]} per element, channels innermost; T has one row per channel or one row.

    The step order does not matter: it is a count, as in FINN and the HLS.  Computed block by block
    over the flat accumulator against each step's thresholds tiled to the block (long, cache-resident
    compare loops; no (..., steps) temporary), in a dtype exact for both sides.
    """
    cached = node.cache.get("thresholds")
    if cached is None or cached[0] is not thresholds:
        cached = (thresholds, threshold_table(node, thresholds, channels), {})
        node.cache["thresholds"] = cached
    t, tiles = cached[1], cached[2]
    cmp = _compare_dtype(acc, t)
    rows = max(1, _CHUNK // channels)
    if cmp not in tiles:  # per step: the row broadcast to `rows` pixels (one value if T is one row)
        tiles[cmp] = [
            (np.tile(t[:, i].astype(cmp), rows) if t.shape[0] > 1 else t[0, i].astype(cmp))
            for i in range(t.shape[1])
        ]
    steps = tiles[cmp]
    a = np.ascontiguousarray(acc, dtype=cmp).reshape(-1)
    count = np.zeros(a.shape, dtype=np.uint8 if len(steps) < 256 else np.int64)
    block = rows * channels
    mask = np.empty(min(block, a.size), dtype=bool)
    for start in range(0, a.size, block):
        ab, cb = a[start : start + block], count[start : start + block]
        mb = mask[: ab.size]
        for tile in steps:
            np.greater_equal(ab, tile if tile.ndim == 0 else tile[: ab.size], out=mb)
            cb += mb
    return count.reshape(acc.shape)


def activate(
    node: NodeView, count: np.ndarray, odt_name: str, bipolar_bias_first: bool, steps: int
) -> np.ndarray:
    """Threshold count (0..steps) -> output value: ActVal + count, or FINN's BIPOLAR mapping."""
    act_val = int(attr(node, "ActVal", 0))
    if odt_name != "BIPOLAR":
        out = count.astype(storage_dtype(min(act_val, 0), max(act_val + steps, 0)))
        if act_val:
            out += act_val
        return out
    # MVAU maps count c to 2c - 1 (ActVal ignored); Thresholding maps to 2(c + ActVal) - 1.
    bias = act_val if bipolar_bias_first else 0
    out = count.astype(storage_dtype(min(2 * bias - 1, -1), max(2 * (steps + bias) - 1, 1)))
    out *= 2
    out += 2 * bias - 1
    return out


# ---------------------------------------------------------------------------------------------
# compute layers


def _mvau_float_weights(node: NodeView, w: np.ndarray, ftype: type) -> np.ndarray:
    key = ("w", np.dtype(ftype).name)
    cached = node.cache.get(key)
    if cached is None or cached[0] is not w:
        cached = (w, np.ascontiguousarray(w, dtype=ftype))
        node.cache[key] = cached
    return cached[1]


def mvau_accumulate(node: NodeView, x: np.ndarray, w: np.ndarray, from_init: bool) -> np.ndarray:
    """acc = x @ W (or the XNOR popcount), x as (vectors, MW).  float32/float64 BLAS where
    golden.accum's partial-sum bound proves it exact (result then holds integers as floats),
    int64 otherwise.  Streamed (non-initializer) weights always take the int64 path."""
    mw = int(attr(node, "MW"))
    idt, wdt = attr(node, "inputDataType"), attr(node, "weightDataType")
    xnor = bool(int(attr(node, "binaryXnorMode", 0)))
    bipolar = idt == "BIPOLAR" and wdt == "BIPOLAR"
    arith = "int64"
    if from_init:
        absb = int(channel_bounds(node)[2].max(initial=0))
        arith = "float32" if absb < FLOAT32_EXACT else "float64" if absb < FLOAT64_EXACT else "int64"
    if arith == "int64":
        xi, wi = x.astype(np.int64, copy=False), w.astype(np.int64, copy=False)
        if xnor:
            return xi @ wi + (1 - xi) @ (1 - wi)  # number of matching binary digits
        return (mw + xi @ wi) // 2 if bipolar else xi @ wi
    ftype = np.float32 if arith == "float32" else np.float64
    xf, wf = x.astype(ftype), _mvau_float_weights(node, w, ftype)
    if xnor:
        return xf @ wf + (1 - xf) @ (1 - wf)
    acc = xf @ wf
    if bipolar:  # x @ W has the parity of MW: the halving is exact
        acc += mw
        acc *= 0.5
    return acc


def mvau(node: NodeView, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """MatMul of NHWC vectors by W[MW, MH], then multi-threshold unless noActivation."""
    mw, mh = int(attr(node, "MW")), int(attr(node, "MH"))
    vecs = ints(node, "numInputVectors", [1])
    no_act = int(attr(node, "noActivation", 0))
    args = gather(node, inputs)
    x = shaped(node, as_int(node, args[0], "input"), [*vecs, mw])
    w = as_int(node, args[1], "weights")
    if w.shape != (mw, mh):
        raise GoldenError(f"node {node.name} (MVAU): weights of shape {list(w.shape)}, expected [{mw}, {mh}]")
    idt = parse_dtype(attr(node, "inputDataType"))
    if x.size and (int(x.min()) < idt.min or int(x.max()) > idt.max):  # the exactness proof needs it
        raise GoldenError(
            f"node {node.name} (MVAU): input values in [{int(x.min())}, {int(x.max())}] are outside "
            f"inputDataType {idt.name}"
        )
    from_init = 1 in node.inits and args[1] is node.inits[1]
    acc = mvau_accumulate(node, x.reshape(-1, mw), w, from_init).reshape(*vecs, mh)
    if no_act:
        if acc.dtype.kind == "f":
            lo, hi, _ = channel_bounds(node)
            return [acc.astype(storage_dtype(int(lo.min(initial=0)), int(hi.max(initial=0))))]
        return [acc]
    count = count_thresholds(node, acc, args[2], mh)
    steps = node.cache["thresholds"][1].shape[1]
    return [activate(node, count, attr(node, "outputDataType"), bipolar_bias_first=False, steps=steps)]


def thresholding(node: NodeView, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Per-channel multi-threshold on the innermost axis."""
    ch = int(attr(node, "NumChannels"))
    vecs = ints(node, "numInputVectors", [1])
    args = gather(node, inputs)
    x = shaped(node, as_int(node, args[0], "input"), [*vecs, ch])
    steps = int(attr(node, "numSteps", 1))
    if np.asarray(args[1]).ndim == 2 and np.asarray(args[1]).shape[1] != steps:
        raise GoldenError(
            f"node {node.name} (Thresholding): numSteps={steps} but thresholds have "
            f"{np.asarray(args[1]).shape[1]} columns"
        )
    count = count_thresholds(node, x, args[1], ch)
    odt = attr(node, "outputDataType")
    return [activate(node, count, odt, bipolar_bias_first=True, steps=steps)]


# ---------------------------------------------------------------------------------------------
# sliding windows, padding, pooling


def conv_out_dim(ifm: int, k: int, stride: int, dilation: int) -> int:
    """Output size of an unpadded window sweep (qonnx compute_conv_output_dim with pad 0)."""
    span = dilation * (k - 1) + 1
    if span > ifm or stride < 1:
        return 0
    return (ifm - span) // stride + 1


def swg_dims(node: NodeView) -> tuple[int, int, int, int, int, int, int, int, int, int, int]:
    """(H, W, C, kh, kw, sh, sw, dh, dw, oh, ow) of a ConvolutionInputGenerator, validated."""
    h, w = ints(node, "IFMDim")
    kh, kw = ints(node, "ConvKernelDim")
    sh, sw = ints(node, "Stride", [1, 1])
    dh, dw = ints(node, "Dilation", [1, 1])
    c = int(attr(node, "IFMChannels"))
    oh, ow = conv_out_dim(h, kh, sh, dh), conv_out_dim(w, kw, sw, dw)
    if oh < 1 or ow < 1:
        raise GoldenError(f"node {node.name} (ConvolutionInputGenerator): kernel larger than the image")
    if "OFMDim" in node.attrs and ints(node, "OFMDim") != [oh, ow]:
        raise GoldenError(
            f"node {node.name} (ConvolutionInputGenerator): OFMDim={ints(node, 'OFMDim')} "
            f"but IFMDim/kernel/stride/dilation give {[oh, ow]}"
        )
    return h, w, c, kh, kw, sh, sw, dh, dw, oh, ow


def convolution_input_generator(node: NodeView, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """im2col: one output pixel per window, its elements ordered (kh, kw, C)."""
    h, w, c, kh, kw, sh, sw, dh, dw, oh, ow = swg_dims(node)
    x = shaped(node, as_int(node, gather(node, inputs)[0], "input"), [1, h, w, c])
    if kh == kw == sh == sw == 1:
        return [x]  # pointwise: every pixel is its own window
    taps = [
        x[:, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw, :]
        for i in range(kh)
        for j in range(kw)
    ]
    return [np.stack(taps, axis=3).reshape(1, oh, ow, kh * kw * c)]


def fm_padding(node: NodeView, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Zero padding; Padding = [top, left, bottom, right] (FINN: [H_begin, W_begin, H_end, W_end])."""
    h, w = ints(node, "ImgDim")
    c = int(attr(node, "NumChannels"))
    top, left, bottom, right = ints(node, "Padding", [1, 1, 1, 1])
    if not attr_dtype(node.attrs, "inputDataType").allowed(np.int64(0)):
        raise GoldenError(f"node {node.name} (FMPadding): datatype cannot represent the zero it pads with")
    x = shaped(node, as_int(node, gather(node, inputs)[0], "input"), [1, h, w, c])
    out = np.zeros((1, h + top + bottom, w + left + right, c), dtype=x.dtype)
    out[:, top : top + h, left : left + w, :] = x
    return [out]


def quant_avg_pool_shift(node: NodeView, k_prod: int) -> int:
    """Right shift of QuantAvgPool as FINN's python derives it: bits of (2^ibits-1)*K minus obits."""
    ibits = attr_dtype(node.attrs, "InputDataType").bits
    obits = attr_dtype(node.attrs, "OutputDataType").bits
    return max(0, int(((1 << ibits) - 1) * k_prod).bit_length() - obits)


def pool(node: NodeView, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Reduce each window (logical (k, C) order, as the SWG emits it) over k."""
    ch = int(attr(node, "Channels"))
    k_prod = int(np.prod(ints(node, "KernelSize")))
    odims = ints(node, "OutImgDims")
    batch = int(attr(node, "BatchSize", 1))
    fxn = attr(node, "Function")
    x = shaped(node, as_int(node, gather(node, inputs)[0], "input"), [batch, *odims, k_prod * ch])
    win = x.reshape([batch, *odims, k_prod, ch])
    axis = win.ndim - 2
    if fxn == "MaxPool":
        return [win.max(axis=axis)]
    if fxn == "AccPool":
        return [win.sum(axis=axis, dtype=np.int64)]
    if fxn == "QuantAvgPool":
        shift = quant_avg_pool_shift(node, k_prod)
        if "Size" in node.attrs and int(node.attrs["Size"]) != shift:
            raise GoldenError(
                f"node {node.name} (Pool QuantAvgPool): Size={node.attrs['Size']} (the HLS shift) "
                f"differs from the shift {shift} FINN's python model uses"
            )
        return [np.right_shift(win.sum(axis=axis, dtype=np.int64), shift)]
    raise GoldenError(
        f"node {node.name} (Pool): Function {fxn!r} has no integer golden semantics "
        "(FINN's python AvgPool is a float mean)"
    )


def global_acc_pool(node: NodeView, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Sum over H and W of an NHWC tensor -> (N, 1, 1, C)."""
    ch = int(attr(node, "NumChannels"))
    vecs = ints(node, "numInputVectors", [1])
    if len(vecs) != 3:
        raise GoldenError(f"node {node.name} (GlobalAccPool): numInputVectors must be [N, H, W]")
    x = shaped(node, as_int(node, gather(node, inputs)[0], "input"), [*vecs, ch])
    return [x.sum(axis=(1, 2), keepdims=True, dtype=np.int64)]


def upsample_nearest(node: NodeView, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Nearest-neighbour upsampling by integer factors HO/HI, WO/WI: out[y, x] = in[y // s, x // s]."""
    hi, wi, ho, wo = (int(attr(node, k)) for k in ("HI", "WI", "HO", "WO"))
    ch = int(attr(node, "NumChannels"))
    batch = int(attr(node, "batchSize", 1))
    if ho % hi or wo % wi:
        raise GoldenError(
            f"node {node.name} (UpsampleNearestNeighbour): {hi}x{wi} -> {ho}x{wo} is not an integer scale"
        )
    x = shaped(node, as_int(node, gather(node, inputs)[0], "input"), [batch, hi, wi, ch])
    return [np.repeat(np.repeat(x, ho // hi, axis=1), wo // wi, axis=2)]


# ---------------------------------------------------------------------------------------------
# stream plumbing


def streaming_concat(node: NodeView, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Concatenate along channels."""
    cps = ints(node, "ChannelsPerStream")
    vecs = ints(node, "numInputVectors", [1])
    args = gather(node, inputs)
    if len(args) != len(cps):
        raise GoldenError(f"node {node.name} (StreamingConcat): {len(args)} inputs for {len(cps)} streams")
    parts = [
        shaped(node, as_int(node, a, f"input {i}"), [*vecs, c], f"input {i}")
        for i, (a, c) in enumerate(zip(args, cps, strict=True))
    ]
    return [np.concatenate(parts, axis=-1)]


def streaming_split(node: NodeView, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Split channels into consecutive groups of ChannelsPerStream."""
    cps = ints(node, "ChannelsPerStream")
    vecs = ints(node, "numInputVectors", [1])
    x = shaped(node, as_int(node, gather(node, inputs)[0], "input"), [*vecs, sum(cps)])
    return list(np.split(x, np.cumsum(cps)[:-1], axis=-1))


def duplicate_streams(node: NodeView, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """NumOutputStreams identical copies."""
    ch = int(attr(node, "NumChannels"))
    vecs = ints(node, "numInputVectors", [1])
    x = shaped(node, as_int(node, gather(node, inputs)[0], "input"), [*vecs, ch])
    return [x] * int(attr(node, "NumOutputStreams"))  # golden never writes into a tensor: share it


def data_width_converter(node: NodeView, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Identity on values (re-chunks the stream); outShape may re-view the same flat sequence."""
    ishape, oshape = ints(node, "inShape"), ints(node, "outShape")
    x = shaped(node, as_int(node, gather(node, inputs)[0], "input"), ishape)
    return [shaped(node, x, oshape, "outShape")]


def streaming_fifo(node: NodeView, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Identity on values."""
    x = as_int(node, gather(node, inputs)[0], "input")
    if "normal_shape" in node.attrs:
        x = shaped(node, x, ints(node, "normal_shape"))
    return [x]


def label_select(node: NodeView, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Indices of the K largest labels, largest first, lower index first among equals (ONNX TopK)."""
    labels, k = int(attr(node, "Labels")), int(attr(node, "K"))
    vecs = ints(node, "numInputVectors", [1])
    x = shaped(node, as_int(node, gather(node, inputs)[0], "input"), [*vecs, labels])
    order = np.argsort(-x.astype(np.int64), axis=-1, kind="stable")
    return [order[..., :k].astype(np.int64)]


# ---------------------------------------------------------------------------------------------
# elementwise binary


def _bit_shift(node: NodeView) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    direction = attr(node, "direction")
    if direction not in ("LEFT", "RIGHT"):
        raise GoldenError(f"node {node.name} (ElementwiseBitShift): direction {direction!r}")
    return np.left_shift if direction == "LEFT" else np.right_shift


ELEMENTWISE: dict[str, Callable[[NodeView], Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "ElementwiseAdd": lambda n: np.add,
    "ElementwiseSub": lambda n: np.subtract,
    "ElementwiseMul": lambda n: np.multiply,
    "ElementwiseAbsDiff": lambda n: lambda a, b: np.abs(a - b),
    "ElementwiseMax": lambda n: np.maximum,
    "ElementwiseAnd": lambda n: np.logical_and,
    "ElementwiseOr": lambda n: np.logical_or,
    "ElementwiseXor": lambda n: np.logical_xor,
    "ElementwiseEqual": lambda n: np.equal,
    "ElementwiseLess": lambda n: np.less,
    "ElementwiseLessOrEqual": lambda n: np.less_equal,
    "ElementwiseGreater": lambda n: np.greater,
    "ElementwiseGreaterOrEqual": lambda n: np.greater_equal,
    "ElementwiseBitwiseAnd": lambda n: np.bitwise_and,
    "ElementwiseBitwiseOr": lambda n: np.bitwise_or,
    "ElementwiseBitwiseXor": lambda n: np.bitwise_xor,
    "ElementwiseBitShift": _bit_shift,
}


def elementwise(node: NodeView, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """lhs (op) rhs with NumPy broadcasting, exact in int64 and NOT clipped to out_dtype.

    FINN's python execution does not clip or wrap either, so a result outside out_dtype is passed
    on as is (golden.execute flags it as a range error at the node that produced it).
    """
    lshape, rshape = ints(node, "lhs_shape", [1]), ints(node, "rhs_shape", [1])
    oshape = ints(node, "out_shape", [1])
    if list(np.broadcast_shapes(tuple(lshape), tuple(rshape))) != oshape:
        raise GoldenError(
            f"node {node.name} ({node.op_type}): {lshape} and {rshape} do not broadcast to {oshape}"
        )
    for key in ("lhs_dtype", "rhs_dtype"):
        attr_dtype(node.attrs, key)  # integer operands only
    args = gather(node, inputs)
    lhs = shaped(node, as_int(node, args[0], "lhs"), lshape, "lhs")
    rhs = shaped(node, as_int(node, args[1], "rhs"), rshape, "rhs")
    fn = ELEMENTWISE[node.op_type](node)
    narrow = lhs.dtype.itemsize <= 2 and rhs.dtype.itemsize <= 2
    wide = np.int32 if narrow and node.op_type not in ("ElementwiseMul", "ElementwiseBitShift") else np.int64
    result = np.asarray(fn(lhs.astype(wide, copy=False), rhs.astype(wide, copy=False)))
    return [result.astype(np.uint8) if result.dtype == bool else result]


def elementwise_div(node: NodeView, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Rejected: FINN's python ElementwiseDiv is a float division, not an integer op."""
    raise GoldenError(f"node {node.name} (ElementwiseDiv): float division has no integer golden semantics")


OPS: dict[str, Op] = {
    "MVAU": mvau,
    "Thresholding": thresholding,
    "ConvolutionInputGenerator": convolution_input_generator,
    "FMPadding": fm_padding,
    "Pool": pool,
    "GlobalAccPool": global_acc_pool,
    "UpsampleNearestNeighbour": upsample_nearest,
    "StreamingConcat": streaming_concat,
    "StreamingSplit": streaming_split,
    "DuplicateStreams": duplicate_streams,
    "StreamingDataWidthConverter": data_width_converter,
    "StreamingFIFO": streaming_fifo,
    "LabelSelect": label_select,
    "ElementwiseDiv": elementwise_div,
    **{name: elementwise for name in ELEMENTWISE},
}


def run_node(node: NodeView, inputs: list[np.ndarray], *, narrow: bool = False) -> list[np.ndarray]:
    """Evaluate one HW node; an op type without golden semantics is an error, never a pass-through.

    Outputs are int64, or with `narrow=True` the compact integer dtype the op computed them in
    (what golden.execute passes between nodes; values are the same).
    """
    op = OPS.get(node.op_type)
    if op is None:
        raise GoldenError(
            f"node {node.name}: op type {node.full_op_type!r} has no golden semantics "
            f"(supported: {', '.join(sorted(OPS))})"
        )
    outs = op(node, list(inputs))
    if len(outs) != len(node.outputs) and node.outputs:
        raise GoldenError(
            f"node {node.name} ({node.full_op_type}): {len(outs)} outputs for {len(node.outputs)}"
        )
    if narrow:
        return [np.asarray(o) for o in outs]
    return [np.asarray(o, dtype=np.int64) for o in outs]
