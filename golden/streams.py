"""Stream folding of FINN HW layers: element types, folded shapes, beat widths and beat order.

The functions mirror FINN's get_input_datatype / get_output_datatype, get_folded_input_shape /
get_folded_output_shape and get_instream_width / get_outstream_width of the node classes (tested
against them), but are computed from the node attributes alone.

A stream of a node carries prod(folded_shape[:-1]) beats per frame.  `to_beats` gives the element
sequence of those beats: for almost every stream it is the logical NHWC tensor flattened in C order,
cut into consecutive groups of `elems_per_beat`.  The exceptions (see golden/README.md) are the
depthwise sliding-window output and the Pool input, whose beats run (OH, OW, C/SIMD, K, SIMD), and
a broadcast elementwise operand, whose single element is repeated across the PE lanes of its beat.
"""

from __future__ import annotations

import math

import numpy as np

from golden.datatypes import DType, parse_dtype, smallest_dtype
from golden.errors import GoldenError
from golden.node import NodeView
from golden.ops import attr, ints, swg_dims

Shape = tuple[int, ...]


def _fold(node: NodeView, n: int, p: int, what: str) -> int:
    """n // p, insisting that the parallelism divides the dimension (FINN HW requires it)."""
    if p < 1 or n % p:
        raise GoldenError(f"node {node.name} ({node.full_op_type}): {what}={p} does not divide {n}")
    return n // p


def _bad_index(node: NodeView, kind: str, ind: int) -> GoldenError:
    return GoldenError(f"node {node.name} ({node.full_op_type}): no {kind} stream {ind}")


# ---------------------------------------------------------------------------------------------
# datatypes


def _concat_out_dtype(node: NodeView) -> DType:
    """StreamingConcat's output type: the smallest UINT/INT covering every input range."""
    dts = [parse_dtype(n) for n in attr(node, "inputDataTypes")]
    lo, hi = min([0, *(d.min for d in dts)]), max([0, *(d.max for d in dts)])
    if lo >= 0:
        return parse_dtype(f"UINT{math.ceil(math.log2(hi + 1))}")
    return parse_dtype(f"INT{math.ceil(math.log2(max(-lo, 1 + hi)) + 1)}")


def _global_acc_pool_out_dtype(node: NodeView) -> DType:
    """GlobalAccPool's output type: smallest type of H*W times the extreme input value."""
    idt = parse_dtype(attr(node, "inputDataType"))
    vecs = ints(node, "numInputVectors", [1])
    npix = vecs[-1] * vecs[-2]
    return smallest_dtype(npix * (idt.min if idt.signed else idt.max))


def _label_select_out_dtype(node: NodeView) -> DType:
    """LabelSelect's output type; when unset FINN picks a byte-multiple type for Labels-1."""
    name = attr(node, "outputDataType", "")
    if name:
        return parse_dtype(name)
    dt = smallest_dtype(int(attr(node, "Labels")) - 1)
    bits = -(-dt.bits // 8) * 8
    return parse_dtype(dt.name.replace(str(dt.bits), str(bits)) if dt.name != "BINARY" else f"UINT{bits}")


def in_dtype(node: NodeView, ind: int = 0) -> DType:
    """Element type of input stream `ind` (weights/thresholds for ind 1 of MVAU/Thresholding)."""
    op = node.op_type
    if op in ("MVAU", "Thresholding"):
        key = {0: "inputDataType", 1: "weightDataType"}.get(ind)
    elif op == "StreamingConcat":
        names = attr(node, "inputDataTypes")
        if not 0 <= ind < len(names):
            raise _bad_index(node, "input", ind)
        return parse_dtype(names[ind])
    elif op.startswith("Elementwise"):
        key = {0: "lhs_dtype", 1: "rhs_dtype"}.get(ind)
    elif op == "Pool":
        key = "InputDataType" if ind == 0 else None
    elif op in ("StreamingDataWidthConverter", "StreamingFIFO"):
        key = "dataType" if ind == 0 else None
    else:
        key = "inputDataType" if ind == 0 else None
    if key is None:
        raise _bad_index(node, "input", ind)
    return parse_dtype(attr(node, key))


def out_dtype(node: NodeView, ind: int = 0) -> DType:
    """Element type of output stream `ind`, derived as FINN's get_output_datatype does."""
    op = node.op_type
    n_out = len(node.outputs) or 1
    if not 0 <= ind < n_out:
        raise _bad_index(node, "output", ind)
    if op in ("MVAU", "Thresholding", "ConvolutionInputGenerator"):
        return parse_dtype(attr(node, "outputDataType"))
    if op == "Pool":
        return parse_dtype(attr(node, "OutputDataType"))
    if op.startswith("Elementwise"):
        return parse_dtype(attr(node, "out_dtype"))
    if op == "StreamingConcat":
        return _concat_out_dtype(node)
    if op == "GlobalAccPool":
        return _global_acc_pool_out_dtype(node)
    if op == "LabelSelect":
        return _label_select_out_dtype(node)
    return in_dtype(node, 0)


# ---------------------------------------------------------------------------------------------
# shapes


def _vec_fold(node: NodeView, ch: int, p_key: str, vecs_key: str = "numInputVectors") -> Shape:
    vecs = ints(node, vecs_key, [1])
    p = int(attr(node, p_key))
    return (*vecs, _fold(node, ch, p, p_key), p)


def _elementwise_folded_in(node: NodeView, ind: int) -> Shape:
    lshape, rshape = ints(node, "lhs_shape", [1]), ints(node, "rhs_shape", [1])
    shape = [lshape, rshape][ind]
    pe = int(attr(node, "PE", 1))
    broadcast_last = (lshape[-1] == 1) != (rshape[-1] == 1)
    if not broadcast_last or shape[-1] != 1:
        return (*shape[:-1], _fold(node, shape[-1], pe, "PE"), pe)
    return (*shape[:-1], 1, shape[-1])


def _dwc_folded(node: NodeView, width_key: str) -> Shape:
    """FINN folds both DWC sides over inShape: (.., C/e, e), or (total/e, e) when e does not divide C."""
    shape = ints(node, "inShape")
    bits = parse_dtype(attr(node, "dataType")).bits
    width = int(attr(node, width_key))
    if width % bits:
        raise GoldenError(f"node {node.name} (DWC): {width_key}={width} is not a multiple of {bits} bits")
    elems = width // bits
    if shape[-1] % elems == 0:
        return (*shape[:-1], shape[-1] // elems, elems)
    total = int(np.prod(shape))
    return (_fold(node, total, elems, f"{width_key}/bits"), elems)


def _weights_folded(node: NodeView) -> Shape:
    """MVAU weight stream: (vectors, NF*SF, PE*SIMD/TH) for the streaming mem_modes."""
    mode = attr(node, "mem_mode", "internal_decoupled")
    mw, mh = int(attr(node, "MW")), int(attr(node, "MH"))
    simd, pe = int(attr(node, "SIMD")), int(attr(node, "PE"))
    vecs = ints(node, "numInputVectors", [1])
    sf, nf = _fold(node, mw, simd, "SIMD"), _fold(node, mh, pe, "PE")
    th = int(attr(node, "TH", 1))
    if mode == "dynamic":
        return (*vecs[:2], mw, nf, pe)
    if mode in ("external", "external_mem", "internal_decoupled"):
        return (int(np.prod(vecs)), sf * nf, simd * pe // th)
    raise GoldenError(f"node {node.name} (MVAU): mem_mode {mode!r} has no weight stream")


def _threshold_stream_mode(node: NodeView) -> str:
    """Thresholding has a threshold stream only on the HLS backend (mem_mode, default decoupled)."""
    return attr(node, "mem_mode", "internal_decoupled") if node.backend == "hls" else ""


def folded_in_shape(node: NodeView, ind: int = 0) -> Shape:
    """FINN's get_folded_input_shape(ind): the input tensor with its last axis as (folds, lanes)."""
    op = node.op_type
    if op == "MVAU":
        if ind == 1:
            return _weights_folded(node)
        if ind != 0:
            raise _bad_index(node, "input", ind)
        return _vec_fold(node, int(attr(node, "MW")), "SIMD")
    if op == "Thresholding":
        if ind == 1 and _threshold_stream_mode(node) == "internal_decoupled":
            vecs = ints(node, "numInputVectors", [1])
            tmem = _fold(node, int(attr(node, "NumChannels")), int(attr(node, "PE")), "PE")
            return (int(np.prod(vecs)), tmem, int(attr(node, "PE")) * int(attr(node, "numSteps", 1)))
        if ind != 0:
            raise _bad_index(node, "input", ind)
        return _vec_fold(node, int(attr(node, "NumChannels")), "PE")
    if op.startswith("Elementwise"):
        if ind not in (0, 1):
            raise _bad_index(node, "input", ind)
        return _elementwise_folded_in(node, ind)
    if op == "StreamingConcat":
        cps = ints(node, "ChannelsPerStream")
        if not 0 <= ind < len(cps):
            raise _bad_index(node, "input", ind)
        return _vec_fold(node, cps[ind], "SIMD")
    if ind != 0:
        raise _bad_index(node, "input", ind)
    if op == "ConvolutionInputGenerator":
        h, w, c, *_ = swg_dims(node)
        simd = int(attr(node, "SIMD"))
        return (1, h, w, _fold(node, c, simd, "SIMD"), simd)
    if op == "FMPadding":
        h, w = ints(node, "ImgDim")
        simd = int(attr(node, "SIMD", 1))
        return (1, h, w, _fold(node, int(attr(node, "NumChannels")), simd, "SIMD"), simd)
    if op == "Pool":
        ch, pe = int(attr(node, "Channels")), int(attr(node, "PE", 1))
        k = int(np.prod(ints(node, "KernelSize")))
        _fold(node, ch, pe, "PE")
        return (int(attr(node, "BatchSize", 1)), *ints(node, "OutImgDims"), k * ch // pe, pe)
    if op == "StreamingSplit":
        return _vec_fold(node, sum(ints(node, "ChannelsPerStream")), "SIMD")
    if op in ("DuplicateStreams", "GlobalAccPool"):
        return _vec_fold(node, int(attr(node, "NumChannels")), "PE")
    if op == "UpsampleNearestNeighbour":
        simd = int(attr(node, "SIMD"))
        hi, wi = int(attr(node, "HI")), int(attr(node, "WI"))
        ch = int(attr(node, "NumChannels"))
        return (int(attr(node, "batchSize", 1)), hi, wi, _fold(node, ch, simd, "SIMD"), simd)
    if op == "StreamingDataWidthConverter":
        return _dwc_folded(node, "inWidth")
    if op == "StreamingFIFO":
        return tuple(ints(node, "folded_shape"))
    if op == "LabelSelect":
        return _vec_fold(node, int(attr(node, "Labels")), "PE")
    raise GoldenError(f"node {node.name}: op type {node.full_op_type!r} has no golden stream model")


def _parallel_window(node: NodeView) -> bool:
    return bool(int(attr(node, "parallel_window", 0)))


def folded_out_shape(node: NodeView, ind: int = 0) -> Shape:
    """FINN's get_folded_output_shape(ind)."""
    op = node.op_type
    if op == "StreamingSplit":
        cps = ints(node, "ChannelsPerStream")
        if not 0 <= ind < len(cps):
            raise _bad_index(node, "output", ind)
        return _vec_fold(node, cps[ind], "SIMD")
    n_out = int(attr(node, "NumOutputStreams")) if op == "DuplicateStreams" else 1
    if not 0 <= ind < n_out:
        raise _bad_index(node, "output", ind)
    if op == "MVAU":
        return _vec_fold(node, int(attr(node, "MH")), "PE")
    if op in ("Thresholding", "DuplicateStreams"):
        return folded_in_shape(node, 0)
    if op.startswith("Elementwise"):
        oshape = ints(node, "out_shape", [1])
        pe = int(attr(node, "PE", 1))
        return (*oshape[:-1], _fold(node, oshape[-1], pe, "PE"), pe)
    if op == "StreamingConcat":
        return _vec_fold(node, sum(ints(node, "ChannelsPerStream")), "SIMD")
    if op == "ConvolutionInputGenerator":
        *_, kh, kw, _sh, _sw, _dh, _dw, oh, ow = swg_dims(node)
        c, simd = int(attr(node, "IFMChannels")), int(attr(node, "SIMD"))
        _fold(node, c, simd, "SIMD")
        if _parallel_window(node):
            return (1, oh, ow, c // simd, kh * kw * simd)
        return (1, oh, ow, kh * kw * c // simd, simd)
    if op == "FMPadding":
        h, w = ints(node, "ImgDim")
        top, left, bottom, right = ints(node, "Padding", [1, 1, 1, 1])
        simd = int(attr(node, "SIMD", 1))
        c = int(attr(node, "NumChannels"))
        return (1, h + top + bottom, w + left + right, _fold(node, c, simd, "SIMD"), simd)
    if op == "Pool":
        ch, pe = int(attr(node, "Channels")), int(attr(node, "PE", 1))
        return (int(attr(node, "BatchSize", 1)), *ints(node, "OutImgDims"), _fold(node, ch, pe, "PE"), pe)
    if op == "GlobalAccPool":
        vecs = ints(node, "numInputVectors", [1])
        ch, pe = int(attr(node, "NumChannels")), int(attr(node, "PE"))
        lead = [vecs[0], 1, 1] if len(vecs) == 3 else vecs
        return (*lead, _fold(node, ch, pe, "PE"), pe)
    if op == "UpsampleNearestNeighbour":
        simd = int(attr(node, "SIMD"))
        ho, wo = int(attr(node, "HO")), int(attr(node, "WO"))
        ch = int(attr(node, "NumChannels"))
        return (int(attr(node, "batchSize", 1)), ho, wo, _fold(node, ch, simd, "SIMD"), simd)
    if op == "StreamingDataWidthConverter":
        return _dwc_folded(node, "outWidth")
    if op == "StreamingFIFO":
        return tuple(ints(node, "folded_shape"))
    if op == "LabelSelect":
        return (*ints(node, "numInputVectors", [1]), int(attr(node, "K")), 1)
    raise GoldenError(f"node {node.name}: op type {node.full_op_type!r} has no golden stream model")


# ---------------------------------------------------------------------------------------------
# widths


def in_width(node: NodeView, ind: int = 0) -> int:
    """FINN's get_instream_width(ind) in bits; 0 for an input with no stream (embedded constants)."""
    op = node.op_type
    if op == "MVAU":
        if ind == 1:
            mode = attr(node, "mem_mode", "internal_decoupled")
            pe, simd, th = int(attr(node, "PE")), int(attr(node, "SIMD")), int(attr(node, "TH", 1))
            wbits = in_dtype(node, 1).bits
            if mode == "dynamic":
                return pe * wbits
            if mode in ("external", "external_mem", "internal_decoupled"):
                return pe * simd * wbits // th
            return 0
        if ind == 2:
            if int(attr(node, "noActivation", 0)):
                raise _bad_index(node, "input", ind)
            return 0  # thresholds are always embedded in the MVAU
    if op == "Thresholding" and ind == 1:
        if _threshold_stream_mode(node) != "internal_decoupled":
            return 0
        return int(attr(node, "PE")) * in_dtype(node, 1).bits * int(attr(node, "numSteps", 1))
    if op.startswith("Elementwise"):
        if ind not in (0, 1):
            raise _bad_index(node, "input", ind)
        style = attr(node, ["lhs_style", "rhs_style"][ind], "input")
        embedded = attr(node, "mem_mode", "internal_embedded") == "internal_embedded"
        if style == "const" and embedded and not int(attr(node, "mlo_max_iter", 0)):
            return 0
        elems = folded_in_shape(node, ind)[-1]
        lshape, rshape = ints(node, "lhs_shape", [1]), ints(node, "rhs_shape", [1])
        if ((lshape[-1] == 1) != (rshape[-1] == 1)) and elems == 1:
            elems *= int(attr(node, "PE", 1))
        return elems * in_dtype(node, ind).bits
    if op == "StreamingDataWidthConverter":
        return int(attr(node, "inWidth"))
    return folded_in_shape(node, ind)[-1] * in_dtype(node, ind).bits


def out_width(node: NodeView, ind: int = 0) -> int:
    """FINN's get_outstream_width(ind) in bits."""
    if node.op_type == "StreamingDataWidthConverter":
        return int(attr(node, "outWidth"))
    return folded_out_shape(node, ind)[-1] * out_dtype(node, ind).bits


def in_elems_per_beat(node: NodeView, ind: int = 0) -> int:
    """Elements in one beat of input stream `ind` (stream width / element bits); 0 if no stream."""
    width = in_width(node, ind)
    return width // in_dtype(node, ind).bits if width else 0


def out_elems_per_beat(node: NodeView, ind: int = 0) -> int:
    """Elements in one beat of output stream `ind`."""
    return out_width(node, ind) // out_dtype(node, ind).bits


def n_in_beats(node: NodeView, ind: int = 0) -> int:
    """Beats input stream `ind` carries per frame."""
    return int(np.prod(folded_in_shape(node, ind)[:-1]))


def n_out_beats(node: NodeView, ind: int = 0) -> int:
    """Beats output stream `ind` carries per frame."""
    return int(np.prod(folded_out_shape(node, ind)[:-1]))


# ---------------------------------------------------------------------------------------------
# beat order


def _window_permuted(node: NodeView, ind: int, output: bool) -> tuple[Shape, int, int] | None:
    """(logical shape as (..., K, C/P, P), K, P) for streams whose beats run (.., C/P, K, P)."""
    op = node.op_type
    if op == "ConvolutionInputGenerator" and output and int(attr(node, "depthwise", 0)):
        *_, kh, kw, _sh, _sw, _dh, _dw, oh, ow = swg_dims(node)
        c, p = int(attr(node, "IFMChannels")), int(attr(node, "SIMD"))
        return (1, oh, ow, kh * kw, c // p, p), kh * kw, p
    if op == "Pool" and not output and ind == 0:
        ch, p = int(attr(node, "Channels")), int(attr(node, "PE", 1))
        k = int(np.prod(ints(node, "KernelSize")))
        return (int(attr(node, "BatchSize", 1)), *ints(node, "OutImgDims"), k, ch // p, p), k, p
    return None


def to_beats(node: NodeView, tensor: np.ndarray, ind: int = 0, *, output: bool = True) -> np.ndarray:
    """The elements of stream `ind` in wire order, shaped (beats, elems_per_beat).

    `tensor` is the logical value (as golden.ops produces it).  Use golden.packing.pack on each
    row (or on the flattened result) to get the bus words.
    """
    folded = folded_out_shape(node, ind) if output else folded_in_shape(node, ind)
    epb = out_elems_per_beat(node, ind) if output else in_elems_per_beat(node, ind)
    if epb == 0:
        raise GoldenError(f"node {node.name} ({node.full_op_type}): input {ind} is not streamed")
    t = np.asarray(tensor)
    if t.size != int(np.prod(folded)):
        raise GoldenError(
            f"node {node.name} ({node.full_op_type}): tensor of {t.size} elements for a stream of "
            f"folded shape {list(folded)}"
        )
    perm = _window_permuted(node, ind, output)
    if perm is not None:
        shape, _, _ = perm
        nd = len(shape)
        order = [*range(nd - 3), nd - 2, nd - 3, nd - 1]
        t = t.reshape(shape).transpose(order)
    flat = t.reshape(-1, folded[-1])
    if flat.shape[1] != epb:  # broadcast elementwise operand: one element, repeated on every lane
        flat = np.repeat(flat, epb // flat.shape[1], axis=1)
    return flat.reshape(-1, epb)


def from_beats(node: NodeView, beats: np.ndarray, ind: int = 0, *, output: bool = True) -> np.ndarray:
    """Inverse of `to_beats`: the logical tensor (flat-reshaped to the folded shape's element count)."""
    folded = folded_out_shape(node, ind) if output else folded_in_shape(node, ind)
    b = np.asarray(beats).reshape(int(np.prod(folded[:-1])), -1)
    if b.shape[1] != folded[-1]:
        b = b[:, : folded[-1]]
    perm = _window_permuted(node, ind, output)
    if perm is None:
        return b.reshape(folded)
    shape, _, _ = perm
    nd = len(shape)
    wire = [*shape[: nd - 3], shape[nd - 2], shape[nd - 3], shape[nd - 1]]
    order = [*range(nd - 3), nd - 2, nd - 3, nd - 1]
    return b.reshape(wire).transpose(order).reshape(folded)
