"""golden.ops against FINN's own python execution of single-node HW graphs: 0 mismatches, exactly.

Every case builds one ONNX node, runs it through qonnx's execute_onnx (FINN's execute_node of the
generic op) and through golden.run_node on the very same NodeProto, and counts differing elements.
A few cases are checked against hand-written expectations instead, where FINN is not the referee.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest

from golden.errors import GoldenError
from golden.node import NodeView
from golden.ops import run_node
from golden.streams import to_beats

try:
    from golden_helpers.finn_env import (
        HW,
        Finn,
        Port,
        finn,
        mismatches,
        random_thresholds,
        random_values,
        run_finn,
        seed_of,
        single_node_model,
    )
except ImportError:  # tests/ imported as a package
    from tests.golden_helpers.finn_env import (
        HW,
        Finn,
        Port,
        finn,
        mismatches,
        random_thresholds,
        random_values,
        run_finn,
        seed_of,
        single_node_model,
    )

__all__ = ["finn"]  # the session fixture, re-exported for pytest


def compare(
    finn: Finn,
    op_type: str,
    attrs: dict[str, Any],
    inputs: list[Port],
    outputs: list[Port],
    feed: dict[str, np.ndarray],
    domain: str = HW,
) -> list[np.ndarray]:
    """Run FINN and golden on one node; assert 0 mismatches on every output; return golden's."""
    model = single_node_model(finn, op_type, attrs, inputs, outputs, domain)
    ref = run_finn(finn, model, feed)
    view = NodeView.from_onnx(model.graph.node[0], model.graph)
    gold = run_node(view, [feed[p.name] for p in inputs if p.value is None])
    assert len(gold) == len(outputs)
    for port, g in zip(outputs, gold, strict=True):
        assert mismatches(g, ref[port.name]) == 0, f"output {port.name} differs from FINN"
    return gold


# ---------------------------------------------------------------------------------------------
# MVAU

MVAU_CASES = [
    # (MW, MH, SIMD, PE, idt, wdt, odt or None for noActivation, vecs, steps, ActVal, thresh rows)
    (27, 24, 3, 4, "INT8", "INT4", None, [1, 3, 3], 0, 0, 0),
    (24, 3, 24, 1, "UINT4", "INT2", "UINT4", [1, 2, 2], 15, 0, 3),
    (27, 24, 9, 24, "INT4", "UINT3", "INT4", [1, 4, 4], 15, -8, 24),
    (24, 24, 8, 8, "UINT8", "INT8", "UINT2", [1, 2, 2], 3, 0, 1),
    (27, 27, 27, 3, "INT2", "INT3", None, [1], 0, 0, 0),
    (9, 3, 3, 3, "UINT2", "UINT2", "INT3", [1], 7, -4, 3),
    (16, 8, 4, 2, "INT8", "INT8", None, [1, 4], 0, 0, 0),
]


@pytest.mark.parametrize("case", MVAU_CASES, ids=[f"mvau{i}" for i in range(len(MVAU_CASES))])
def test_mvau(finn: Finn, case: tuple) -> None:
    mw, mh, simd, pe, idt, wdt, odt, vecs, steps, act_val, rows = case
    rng = np.random.default_rng(seed_of(case))
    w = random_values(rng, wdt, (mw, mh))
    x = random_values(rng, idt, (*vecs, mw))
    attrs = dict(MW=mw, MH=mh, SIMD=simd, PE=pe, inputDataType=idt, weightDataType=wdt, numInputVectors=vecs)
    ports = [Port("x", idt, tuple(x.shape)), Port("w", wdt, value=w)]
    if odt is None:
        attrs.update(noActivation=1, outputDataType="INT32")
        out = Port("y", "INT32", (*vecs, mh))
    else:
        acc = x @ w
        t = random_thresholds(rng, int(acc.min()) - 2, int(acc.max()) + 2, rows, steps)
        attrs.update(noActivation=0, outputDataType=odt, ActVal=act_val)
        ports.append(Port("t", "INT32", value=t))
        out = Port("y", odt, (*vecs, mh))
    compare(finn, "MVAU", attrs, ports, [out], {"x": x})


@pytest.mark.parametrize("mode", ["bipolar", "xnor"])
def test_mvau_binary(finn: Finn, mode: str) -> None:
    """XNOR-popcount MVAUs: BIPOLAR x BIPOLAR, and BINARY x BINARY with binaryXnorMode."""
    rng = np.random.default_rng(7)
    mw, mh, vecs = 24, 8, [1, 3, 3]
    dt = "BIPOLAR" if mode == "bipolar" else "BINARY"
    w = random_values(rng, dt, (mw, mh))
    x = random_values(rng, dt, (*vecs, mw))
    t = random_thresholds(rng, 0, mw, mh, 1)
    attrs = dict(MW=mw, MH=mh, SIMD=8, PE=4, inputDataType=dt, weightDataType=dt, numInputVectors=vecs)
    attrs.update(noActivation=0, outputDataType="BIPOLAR", binaryXnorMode=int(mode == "xnor"))
    ports = [Port("x", dt, tuple(x.shape)), Port("w", dt, value=w), Port("t", "UINT6", value=t)]
    compare(finn, "MVAU", attrs, ports, [Port("y", "BIPOLAR", (*vecs, mh))], {"x": x})


def test_mvau_3d_vectors_thresholds_by_channel(finn: Finn) -> None:
    """numInputVectors [1, N] with thresholds: golden thresholds each output channel (innermost axis).

    Known FINN bug (golden/README.md): FINN's python MVAU hands a rank-3 accumulator to
    multithreshold in NCHW mode, so it thresholds along the vector axis; with N == MH no assertion
    fires and it silently uses the wrong threshold rows.  The referee is an explicit integer loop.
    If the FINN assertion below starts failing, FINN was fixed: update the README.
    """
    rng = np.random.default_rng(3)
    mw, mh, n = 6, 4, 4
    w = rng.integers(-3, 4, (mw, mh))
    x = rng.integers(0, 4, (1, n, mw))
    t = np.sort(rng.integers(-20, 21, (mh, 3)), axis=1)
    attrs = dict(
        MW=mw,
        MH=mh,
        SIMD=2,
        PE=2,
        inputDataType="UINT2",
        weightDataType="INT3",
        outputDataType="INT3",
        numInputVectors=[1, n],
        ActVal=-1,
        noActivation=0,
    )
    ports = [Port("x", "UINT2", x.shape), Port("w", "INT3", value=w), Port("t", "INT8", value=t)]
    model = single_node_model(finn, "MVAU", attrs, ports, [Port("y", "INT3", (1, n, mh))])
    (y,) = run_node(NodeView.from_onnx(model.graph.node[0], model.graph), [x])
    expected = np.zeros((1, n, mh), dtype=np.int64)
    for v in range(n):
        for c in range(mh):
            acc = sum(int(x[0, v, k]) * int(w[k, c]) for k in range(mw))
            expected[0, v, c] = -1 + sum(acc >= int(t[c, i]) for i in range(3))
    assert np.array_equal(y, expected)
    assert mismatches(y, run_finn(finn, model, {"x": x})["y"]) > 0  # FINN's axis bug, see docstring


def test_mvau_wide_accumulator_is_exact(finn: Finn) -> None:
    """Accumulators beyond 2^24: golden is exact; FINN's python computes in float32 and rounds.

    The referee is python's arbitrary-precision integers.  If the FINN assertion starts failing,
    FINN moved to exact arithmetic: update golden/README.md.
    """
    mw = 2048
    w = np.full((mw, 2), 127)
    x = np.full((1, mw), 127)
    x[0, 0] = 126
    attrs = dict(
        MW=mw,
        MH=2,
        SIMD=8,
        PE=1,
        inputDataType="INT8",
        weightDataType="INT8",
        outputDataType="INT32",
        noActivation=1,
    )
    ports = [Port("x", "INT8", x.shape), Port("w", "INT8", value=w)]
    model = single_node_model(finn, "MVAU", attrs, ports, [Port("y", "INT32", (1, 2))])
    (y,) = run_node(NodeView.from_onnx(model.graph.node[0], model.graph), [x])
    exact = 126 * 127 + (mw - 1) * 127 * 127
    assert y.tolist() == [[exact, exact]]
    assert mismatches(y, run_finn(finn, model, {"x": x})["y"]) == 2  # float32 rounding in FINN


# ---------------------------------------------------------------------------------------------
# Thresholding

THRESH_CASES = [
    # (C, PE, idt, odt, steps, ActVal, broadcast rows, vecs)
    (3, 1, "INT8", "UINT2", 3, 0, False, [1, 4, 4]),
    (24, 8, "UINT4", "UINT4", 15, 0, False, [1, 2, 3]),
    (27, 9, "INT8", "INT4", 15, -8, False, [1, 3, 3]),
    (24, 24, "INT16", "UINT3", 7, 0, True, [1]),
    (27, 3, "UINT8", "INT2", 3, -2, False, [2, 2]),
]


@pytest.mark.parametrize("case", THRESH_CASES, ids=[f"thr{i}" for i in range(len(THRESH_CASES))])
def test_thresholding(finn: Finn, case: tuple) -> None:
    ch, pe, idt, odt, steps, act_val, bcast, vecs = case
    rng = np.random.default_rng(seed_of(case))
    x = random_values(rng, idt, (*vecs, ch))
    t = random_thresholds(rng, int(x.min()) - 1, int(x.max()) + 1, 1 if bcast else ch, steps)
    attrs = dict(
        NumChannels=ch,
        PE=pe,
        numSteps=steps,
        inputDataType=idt,
        weightDataType="INT17",
        outputDataType=odt,
        ActVal=act_val,
        numInputVectors=vecs,
    )
    ports = [Port("x", idt, tuple(x.shape)), Port("t", "INT17", value=t)]
    compare(finn, "Thresholding", attrs, ports, [Port("y", odt, tuple(x.shape))], {"x": x})


def test_thresholding_bipolar_output(finn: Finn) -> None:
    rng = np.random.default_rng(11)
    x = random_values(rng, "INT4", (1, 3, 3, 24))
    t = random_thresholds(rng, -8, 7, 24, 1)
    attrs = dict(
        NumChannels=24,
        PE=4,
        numSteps=1,
        inputDataType="INT4",
        weightDataType="INT4",
        outputDataType="BIPOLAR",
        numInputVectors=[1, 3, 3],
    )
    ports = [Port("x", "INT4", (1, 3, 3, 24)), Port("t", "INT4", value=t)]
    compare(finn, "Thresholding", attrs, ports, [Port("y", "BIPOLAR", (1, 3, 3, 24))], {"x": x})


def test_threshold_semantics_by_hand() -> None:
    """out = ActVal + #{i : x >= T[c, i]}: equality counts, per-channel rows."""
    node = NodeView.make(
        "Thresholding",
        dict(
            NumChannels=2,
            PE=1,
            numSteps=3,
            inputDataType="INT4",
            weightDataType="INT4",
            outputDataType="INT3",
            ActVal=-2,
            numInputVectors=[3],
        ),
        inits={1: np.array([[-1, 0, 3], [2, 2, 5]])},
    )
    (y,) = run_node(node, [np.array([[-2, 2], [0, 1], [3, 5]])])
    assert y.tolist() == [[-2, 0], [0, -2], [1, 1]]


# ---------------------------------------------------------------------------------------------
# sliding window generator

SWG_CASES = [
    # (IFMDim, kernel, stride, dilation, C, SIMD)
    ([5, 5], [3, 3], [1, 1], [1, 1], 3, 3),
    ([6, 6], [3, 3], [2, 2], [1, 1], 24, 8),
    ([7, 5], [2, 2], [1, 1], [1, 1], 27, 9),
    ([1, 9], [1, 3], [1, 2], [1, 1], 4, 2),
    ([9, 1], [3, 1], [2, 1], [1, 1], 3, 1),
    ([7, 7], [3, 3], [1, 1], [2, 2], 3, 3),
    ([4, 4], [1, 1], [2, 2], [1, 1], 24, 24),
    ([6, 5], [3, 2], [2, 1], [1, 1], 27, 27),
]


def _swg_attrs(case: tuple, depthwise: int, idt: str = "INT4") -> tuple[dict[str, Any], list[int]]:
    ifm, k, s, d, c, simd = case
    ofm = [(ifm[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2)]
    attrs = dict(
        IFMDim=ifm,
        OFMDim=ofm,
        ConvKernelDim=k,
        Stride=s,
        Dilation=d,
        IFMChannels=c,
        SIMD=simd,
        inputDataType=idt,
        outputDataType=idt,
        depthwise=depthwise,
    )
    return attrs, ofm


@pytest.mark.parametrize("case", SWG_CASES, ids=[f"swg{i}" for i in range(len(SWG_CASES))])
def test_convolution_input_generator(finn: Finn, case: tuple) -> None:
    ifm, k, _s, _d, c, _simd = case
    attrs, ofm = _swg_attrs(case, 0)
    rng = np.random.default_rng(sum(ifm) + c)
    x = random_values(rng, "INT4", (1, *ifm, c))
    out = Port("y", "INT4", (1, *ofm, k[0] * k[1] * c))
    compare(finn, "ConvolutionInputGenerator", attrs, [Port("x", "INT4", x.shape)], [out], {"x": x})


@pytest.mark.parametrize("case", [SWG_CASES[i] for i in (0, 1, 2, 3, 6)], ids=lambda c: f"dw{c[0]}{c[4]}")
def test_depthwise_swg_beat_order(finn: Finn, case: tuple) -> None:
    """The RTL SWG's cppsim output (FINN interleaves it into the wire order for depthwise) equals
    golden's logical im2col rearranged by golden.streams.to_beats."""
    ifm, k, _s, _d, c, _simd = case
    attrs, ofm = _swg_attrs(case, 1, "UINT4")
    rng = np.random.default_rng(5)
    x = random_values(rng, "UINT4", (1, *ifm, c))
    model = single_node_model(
        finn,
        "ConvolutionInputGenerator_rtl",
        {**attrs, "exec_mode": "cppsim"},
        [Port("x", "UINT4", x.shape)],
        [Port("y", "UINT4", (1, *ofm, k[0] * k[1] * c))],
        domain=HW + ".rtl",
    )
    ref = run_finn(finn, model, {"x": x})["y"]
    view = NodeView.from_onnx(model.graph.node[0], model.graph)
    (logical,) = run_node(view, [x])
    assert mismatches(to_beats(view, logical).ravel(), ref.ravel()) == 0


def test_swg_by_hand() -> None:
    """2x2 kernel over a 2x3 single-channel image: windows in (kh, kw) order, one per output pixel."""
    node = NodeView.make(
        "ConvolutionInputGenerator",
        dict(
            IFMDim=[2, 3],
            OFMDim=[1, 2],
            ConvKernelDim=[2, 2],
            Stride=[1, 1],
            Dilation=[1, 1],
            IFMChannels=1,
            SIMD=1,
            inputDataType="UINT4",
            outputDataType="UINT4",
        ),
    )
    (y,) = run_node(node, [np.arange(6).reshape(1, 2, 3, 1)])
    assert y.tolist() == [[[[0, 1, 3, 4], [1, 2, 4, 5]]]]


# ---------------------------------------------------------------------------------------------
# FMPadding

PAD_CASES = [
    # (ImgDim, Padding [top, left, bottom, right], C, SIMD, dtype)
    ([4, 5], [1, 0, 2, 3], 3, 1, "INT4"),
    ([3, 3], [1, 1, 1, 1], 24, 8, "UINT8"),
    ([5, 4], [0, 2, 1, 0], 27, 9, "INT2"),
    ([1, 6], [0, 1, 0, 2], 4, 4, "UINT3"),
]


@pytest.mark.parametrize("case", PAD_CASES, ids=[f"pad{i}" for i in range(len(PAD_CASES))])
def test_fmpadding(finn: Finn, case: tuple) -> None:
    img, pad, c, simd, dt = case
    rng = np.random.default_rng(c)
    x = random_values(rng, dt, (1, *img, c))
    oshape = (1, img[0] + pad[0] + pad[2], img[1] + pad[1] + pad[3], c)
    attrs = dict(ImgDim=img, Padding=pad, NumChannels=c, SIMD=simd, inputDataType=dt)
    compare(finn, "FMPadding", attrs, [Port("x", dt, x.shape)], [Port("y", dt, oshape)], {"x": x})


def test_fmpadding_order_by_hand() -> None:
    """Padding = [top, left, bottom, right]: [1, 2, 0, 0] puts the pixel at row 1, column 2."""
    node = NodeView.make(
        "FMPadding", dict(ImgDim=[1, 1], Padding=[1, 2, 0, 0], NumChannels=1, SIMD=1, inputDataType="UINT4")
    )
    (y,) = run_node(node, [np.array([[[[7]]]])])
    assert y[0, :, :, 0].tolist() == [[0, 0, 0], [0, 0, 7]]


# ---------------------------------------------------------------------------------------------
# Pool, GlobalAccPool, Upsample, LabelSelect

POOL_CASES = [
    # (Function, C, PE, kernel, OutImgDims, idt, odt)
    ("MaxPool", 3, 1, [2, 2], [2, 2], "INT4", "INT4"),
    ("MaxPool", 24, 8, [3, 3], [3, 2], "UINT8", "UINT8"),
    ("AccPool", 27, 9, [2, 2], [2, 2], "INT4", "INT6"),
    ("QuantAvgPool", 24, 24, [2, 2], [2, 3], "UINT4", "UINT4"),
    ("QuantAvgPool", 3, 3, [3, 3], [1, 1], "UINT8", "UINT4"),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[f"pool{i}" for i in range(len(POOL_CASES))])
def test_pool(finn: Finn, case: tuple) -> None:
    fxn, c, pe, k, odims, idt, odt = case
    rng = np.random.default_rng(c + pe)
    x = random_values(rng, idt, (1, *odims, k[0] * k[1] * c))
    attrs = dict(
        Function=fxn,
        Channels=c,
        PE=pe,
        KernelSize=k,
        OutImgDims=odims,
        InputDataType=idt,
        OutputDataType=odt,
        BatchSize=1,
    )
    if fxn == "QuantAvgPool":
        from golden.ops import quant_avg_pool_shift

        attrs["Size"] = quant_avg_pool_shift(NodeView.make("Pool", attrs), k[0] * k[1])
    out = Port("y", odt, (1, *odims, c))
    compare(finn, "Pool", attrs, [Port("x", idt, x.shape)], [out], {"x": x})


def test_global_acc_pool(finn: Finn) -> None:
    rng = np.random.default_rng(2)
    x = random_values(rng, "INT4", (1, 4, 5, 24))
    attrs = dict(NumChannels=24, PE=8, inputDataType="INT4", numInputVectors=[1, 4, 5])
    compare(
        finn,
        "GlobalAccPool",
        attrs,
        [Port("x", "INT4", x.shape)],
        [Port("y", "INT9", (1, 1, 1, 24))],
        {"x": x},
    )


UPSAMPLE_CASES = [(3, 2, 6, 6, 3, 1), (4, 4, 8, 8, 24, 8), (2, 3, 6, 9, 27, 9)]


@pytest.mark.parametrize("case", UPSAMPLE_CASES, ids=[f"up{i}" for i in range(len(UPSAMPLE_CASES))])
def test_upsample(finn: Finn, case: tuple) -> None:
    hi, wi, ho, wo, c, simd = case
    rng = np.random.default_rng(c)
    x = random_values(rng, "INT8", (1, hi, wi, c))
    attrs = dict(HI=hi, WI=wi, HO=ho, WO=wo, NumChannels=c, SIMD=simd, inputDataType="INT8")
    compare(
        finn,
        "UpsampleNearestNeighbour",
        attrs,
        [Port("x", "INT8", x.shape)],
        [Port("y", "INT8", (1, ho, wo, c))],
        {"x": x},
    )


def test_label_select(finn: Finn) -> None:
    x = np.array([[3, 9, 1, 9, 0, -2, 7, 9, 4, 1]])  # ties: the lower index comes first
    attrs = dict(Labels=10, PE=2, K=4, inputDataType="INT8", outputDataType="UINT8")
    gold = compare(
        finn, "LabelSelect", attrs, [Port("x", "INT8", x.shape)], [Port("y", "UINT8", (1, 4))], {"x": x}
    )
    assert gold[0].tolist() == [[1, 3, 7, 6]]


# ---------------------------------------------------------------------------------------------
# stream plumbing


@pytest.mark.parametrize("cps", [[3, 24], [8, 8, 8], [27, 3]], ids=str)
def test_streaming_concat(finn: Finn, cps: list[int]) -> None:
    rng = np.random.default_rng(len(cps))
    dts = ["UINT4", "INT4", "INT8"][: len(cps)]
    xs = {
        f"x{i}": random_values(rng, dt, (1, 2, 3, c)) for i, (c, dt) in enumerate(zip(cps, dts, strict=False))
    }
    attrs = dict(
        SIMD=1 if 27 in cps else 3 if 3 in cps else 8,
        ChannelsPerStream=cps,
        inputDataTypes=dts,
        numInputVectors=[1, 2, 3],
    )
    ports = [Port(k, dt, v.shape) for (k, v), dt in zip(xs.items(), dts, strict=True)]
    compare(finn, "StreamingConcat", attrs, ports, [Port("y", "INT9", (1, 2, 3, sum(cps)))], xs)


@pytest.mark.parametrize("cps", [[3, 24], [8, 16], [9, 9, 9]], ids=str)
def test_streaming_split(finn: Finn, cps: list[int]) -> None:
    rng = np.random.default_rng(sum(cps))
    x = random_values(rng, "INT4", (1, 3, 2, sum(cps)))
    attrs = dict(
        SIMD=3 if 3 in cps else 8 if 8 in cps else 9,
        ChannelsPerStream=cps,
        inputDataType="INT4",
        numInputVectors=[1, 3, 2],
    )
    outs = [Port(f"y{i}", "INT4", (1, 3, 2, c)) for i, c in enumerate(cps)]
    compare(finn, "StreamingSplit", attrs, [Port("x", "INT4", x.shape)], outs, {"x": x})


@pytest.mark.parametrize("n_out", [2, 3])
def test_duplicate_streams(finn: Finn, n_out: int) -> None:
    rng = np.random.default_rng(n_out)
    x = random_values(rng, "UINT4", (1, 4, 4, 24))
    attrs = dict(
        NumChannels=24, PE=8, NumOutputStreams=n_out, inputDataType="UINT4", numInputVectors=[1, 4, 4]
    )
    outs = [Port(f"y{i}", "UINT4", x.shape) for i in range(n_out)]
    compare(finn, "DuplicateStreams", attrs, [Port("x", "UINT4", x.shape)], outs, {"x": x})


def test_dwc_and_fifo_are_identity(finn: Finn) -> None:
    rng = np.random.default_rng(4)
    x = random_values(rng, "INT4", (1, 4, 4, 24))
    dwc = dict(inShape=[1, 4, 4, 24], outShape=[1, 4, 4, 24], inWidth=32, outWidth=96, dataType="INT4")
    compare(
        finn,
        "StreamingDataWidthConverter",
        dwc,
        [Port("x", "INT4", x.shape)],
        [Port("y", "INT4", x.shape)],
        {"x": x},
    )
    fifo = dict(depth=16, folded_shape=[1, 4, 4, 3, 8], normal_shape=[1, 4, 4, 24], dataType="INT4")
    compare(finn, "StreamingFIFO", fifo, [Port("x", "INT4", x.shape)], [Port("y", "INT4", x.shape)], {"x": x})


# ---------------------------------------------------------------------------------------------
# elementwise binary

ELTWISE_CASES = [
    # (op, lhs shape, rhs shape, lhs dt, rhs dt, out dt, rhs const, PE)
    ("ElementwiseAdd", (1, 4, 4, 24), (1, 4, 4, 24), "INT8", "INT8", "INT9", False, 8),
    ("ElementwiseAdd", (1, 3, 3, 27), (1, 1, 1, 27), "UINT4", "INT4", "INT6", False, 9),
    ("ElementwiseAdd", (1, 3, 3, 3), (3,), "UINT8", "UINT8", "UINT9", True, 3),
    ("ElementwiseAdd", (1, 2, 2, 24), (1, 2, 2, 1), "INT4", "INT4", "INT5", False, 4),
    ("ElementwiseSub", (1, 4, 4, 24), (1, 4, 4, 24), "UINT4", "UINT4", "INT5", False, 24),
    ("ElementwiseMul", (1, 3, 3, 27), (27,), "INT4", "INT3", "INT7", True, 3),
    ("ElementwiseAbsDiff", (1, 2, 2, 24), (1, 2, 2, 24), "INT4", "INT4", "UINT5", False, 8),
    ("ElementwiseMax", (1, 2, 2, 24), (1,), "INT8", "INT8", "INT8", True, 8),
    ("ElementwiseGreaterOrEqual", (1, 2, 2, 24), (1, 2, 2, 24), "INT4", "INT4", "BINARY", False, 4),
    ("ElementwiseEqual", (1, 2, 2, 3), (1, 2, 2, 3), "UINT2", "UINT2", "BINARY", False, 1),
    ("ElementwiseLess", (1, 2, 2, 3), (1, 2, 2, 3), "INT3", "UINT2", "BINARY", False, 3),
    ("ElementwiseAnd", (1, 2, 2, 8), (1, 2, 2, 8), "UINT2", "UINT2", "BINARY", False, 2),
    ("ElementwiseXor", (1, 2, 2, 8), (1, 2, 2, 8), "UINT2", "INT2", "BINARY", False, 2),
    ("ElementwiseBitwiseAnd", (1, 2, 2, 8), (1, 2, 2, 8), "INT4", "INT4", "INT4", False, 8),
    ("ElementwiseBitwiseXor", (1, 2, 2, 8), (1, 2, 2, 8), "UINT4", "INT4", "INT4", False, 4),
]


@pytest.mark.parametrize("case", ELTWISE_CASES, ids=[f"{c[0][11:]}{i}" for i, c in enumerate(ELTWISE_CASES)])
def test_elementwise(finn: Finn, case: tuple) -> None:
    op, lshape, rshape, ldt, rdt, odt, rconst, pe = case
    rng = np.random.default_rng(len(lshape) + len(rshape) + pe)
    lhs = random_values(rng, ldt, lshape)
    rhs = random_values(rng, rdt, rshape)
    oshape = tuple(np.broadcast_shapes(lshape, rshape))
    attrs = dict(
        lhs_dtype=ldt,
        rhs_dtype=rdt,
        out_dtype=odt,
        lhs_shape=list(lshape),
        rhs_shape=list(rshape),
        out_shape=list(oshape),
        PE=pe,
        rhs_style="const" if rconst else "input",
    )
    rport = Port("b", rdt, value=rhs) if rconst else Port("b", rdt, rshape)
    feed = {"a": lhs} if rconst else {"a": lhs, "b": rhs}
    compare(finn, op, attrs, [Port("a", ldt, lshape), rport], [Port("y", odt, oshape)], feed)


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_elementwise_bitshift(finn: Finn, direction: str) -> None:
    rng = np.random.default_rng(1)
    lhs = random_values(rng, "INT8", (1, 2, 2, 8))
    rhs = random_values(rng, "UINT2", (1, 2, 2, 8))
    attrs = dict(
        lhs_dtype="INT8",
        rhs_dtype="UINT2",
        out_dtype="INT12",
        lhs_shape=[1, 2, 2, 8],
        rhs_shape=[1, 2, 2, 8],
        out_shape=[1, 2, 2, 8],
        PE=4,
        direction=direction,
    )
    compare(
        finn,
        "ElementwiseBitShift",
        attrs,
        [Port("a", "INT8", lhs.shape), Port("b", "UINT2", rhs.shape)],
        [Port("y", "INT12", lhs.shape)],
        {"a": lhs, "b": rhs},
    )


def test_elementwise_does_not_clip_like_finn(finn: Finn) -> None:
    """out_dtype narrower than the result: FINN's python passes the exact sum on; so does golden."""
    lhs = np.full((1, 1, 1, 4), 7)
    rhs = np.array([[[[7, 1, -8, 0]]]])
    attrs = dict(
        lhs_dtype="INT4",
        rhs_dtype="INT4",
        out_dtype="INT4",
        lhs_shape=[1, 1, 1, 4],
        rhs_shape=[1, 1, 1, 4],
        out_shape=[1, 1, 1, 4],
        PE=1,
    )
    (y,) = compare(
        finn,
        "ElementwiseAdd",
        attrs,
        [Port("a", "INT4", lhs.shape), Port("b", "INT4", rhs.shape)],
        [Port("y", "INT4", lhs.shape)],
        {"a": lhs, "b": rhs},
    )
    assert y.ravel().tolist() == [14, 8, -1, 7]


# ---------------------------------------------------------------------------------------------
# refusals


def test_unknown_op_is_an_error() -> None:
    with pytest.raises(GoldenError, match="VVAU"):
        run_node(NodeView.make("VVAU", {}, name="dw0"), [np.zeros((1, 1))])


def test_refusals_name_the_node() -> None:
    with pytest.raises(GoldenError, match="avg0"):
        run_node(
            NodeView.make(
                "Pool",
                dict(
                    Function="AvgPool",
                    Channels=1,
                    KernelSize=[2, 2],
                    OutImgDims=[1, 1],
                    InputDataType="UINT4",
                    OutputDataType="UINT4",
                ),
                name="avg0",
            ),
            [np.zeros((1, 1, 1, 4))],
        )
    with pytest.raises(GoldenError, match="shape"):
        run_node(
            NodeView.make(
                "DuplicateStreams", dict(NumChannels=4, PE=1, NumOutputStreams=2, inputDataType="INT4")
            ),
            [np.zeros((1, 5))],
        )
    with pytest.raises(GoldenError, match="non-integer"):
        run_node(
            NodeView.make(
                "DuplicateStreams", dict(NumChannels=2, PE=1, NumOutputStreams=2, inputDataType="INT4")
            ),
            [np.array([[0.5, 1.0]])],
        )


# ---------------------------------------------------------------------------------------------
# whole-graph execution


def _graph_model(finn: Finn, with_float_node: bool = False) -> Any:
    """A hand-built HW partition: pad -> SWG -> MVAU -> duplicate -> threshold/add -> DWC -> split ->
    concat -> depthwise SWG -> MaxPool -> GlobalAccPool."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(42)
    w = rng.integers(-8, 8, (27, 24))
    t_mvau = np.sort(rng.integers(-60, 60, (24, 15)), axis=1)
    t_thr = np.sort(rng.integers(0, 16, (24, 3)), axis=1)
    tensors = {
        "x": ((1, 6, 6, 3), "UINT4"),
        "p": ((1, 8, 8, 3), "UINT4"),
        "c": ((1, 6, 6, 27), "UINT4"),
        "m": ((1, 6, 6, 24), "UINT4"),
        "d0": ((1, 6, 6, 24), "UINT4"),
        "d1": ((1, 6, 6, 24), "UINT4"),
        "t": ((1, 6, 6, 24), "UINT2"),
        "a": ((1, 6, 6, 24), "UINT5"),
        "b": ((1, 6, 6, 24), "UINT5"),
        "s0": ((1, 6, 6, 8), "UINT5"),
        "s1": ((1, 6, 6, 16), "UINT5"),
        "k": ((1, 6, 6, 24), "UINT5"),
        "win": ((1, 3, 3, 96), "UINT5"),
        "mp": ((1, 3, 3, 24), "UINT5"),
        "y": ((1, 1, 1, 24), "UINT9"),
    }

    def hw(op: str, ins: list[str], outs: list[str], **attrs: Any) -> Any:
        return helper.make_node(
            op, ins, outs, domain=HW, backend="fpgadataflow", name=f"{op}_{outs[0]}", **attrs
        )

    nodes = [
        hw(
            "FMPadding",
            ["x"],
            ["p"],
            ImgDim=[6, 6],
            Padding=[1, 1, 1, 1],
            NumChannels=3,
            SIMD=3,
            inputDataType="UINT4",
        ),
        hw(
            "ConvolutionInputGenerator",
            ["p"],
            ["c"],
            IFMDim=[8, 8],
            OFMDim=[6, 6],
            ConvKernelDim=[3, 3],
            Stride=[1, 1],
            Dilation=[1, 1],
            IFMChannels=3,
            SIMD=3,
            inputDataType="UINT4",
            outputDataType="UINT4",
        ),
        hw(
            "MVAU",
            ["c", "w", "tm"],
            ["m"],
            MW=27,
            MH=24,
            SIMD=3,
            PE=4,
            inputDataType="UINT4",
            weightDataType="INT4",
            outputDataType="UINT4",
            numInputVectors=[1, 6, 6],
        ),
        hw(
            "DuplicateStreams",
            ["m"],
            ["d0", "d1"],
            NumChannels=24,
            PE=4,
            NumOutputStreams=2,
            inputDataType="UINT4",
            numInputVectors=[1, 6, 6],
        ),
        hw(
            "Thresholding",
            ["d0", "tt"],
            ["t"],
            NumChannels=24,
            PE=4,
            numSteps=3,
            inputDataType="UINT4",
            weightDataType="UINT4",
            outputDataType="UINT2",
            numInputVectors=[1, 6, 6],
        ),
        hw(
            "ElementwiseAdd",
            ["d1", "t"],
            ["a"],
            lhs_dtype="UINT4",
            rhs_dtype="UINT2",
            out_dtype="UINT5",
            lhs_shape=[1, 6, 6, 24],
            rhs_shape=[1, 6, 6, 24],
            out_shape=[1, 6, 6, 24],
            PE=4,
        ),
        hw(
            "StreamingDataWidthConverter",
            ["a"],
            ["b"],
            inShape=[1, 6, 6, 24],
            outShape=[1, 6, 6, 24],
            inWidth=20,
            outWidth=40,
            dataType="UINT5",
        ),
        hw(
            "StreamingSplit",
            ["b"],
            ["s0", "s1"],
            SIMD=8,
            ChannelsPerStream=[8, 16],
            inputDataType="UINT5",
            numInputVectors=[1, 6, 6],
        ),
        hw(
            "StreamingConcat",
            ["s1", "s0"],
            ["k"],
            SIMD=8,
            ChannelsPerStream=[16, 8],
            inputDataTypes=["UINT5", "UINT5"],
            numInputVectors=[1, 6, 6],
        ),
        hw(
            "ConvolutionInputGenerator",
            ["k"],
            ["win"],
            IFMDim=[6, 6],
            OFMDim=[3, 3],
            ConvKernelDim=[2, 2],
            Stride=[2, 2],
            Dilation=[1, 1],
            IFMChannels=24,
            SIMD=8,
            depthwise=1,
            inputDataType="UINT5",
            outputDataType="UINT5",
        ),
        hw(
            "Pool",
            ["win"],
            ["mp"],
            Function="MaxPool",
            Channels=24,
            PE=8,
            KernelSize=[2, 2],
            OutImgDims=[3, 3],
            InputDataType="UINT5",
            OutputDataType="UINT5",
        ),
        hw(
            "GlobalAccPool",
            ["mp"],
            ["y"],
            NumChannels=24,
            PE=8,
            inputDataType="UINT5",
            numInputVectors=[1, 3, 3],
        ),
    ]
    if with_float_node:
        nodes[6] = helper.make_node("Relu", ["a"], ["b"], name="relu_in_partition")
    vi = {n: helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, (s, _) in tensors.items()}
    graph = helper.make_graph(
        nodes, "partition", [vi["x"]], [vi["y"]], value_info=[v for n, v in vi.items() if n not in ("x", "y")]
    )
    model = finn.ModelWrapper(finn.qonnx_make_model(graph, producer_name="golden-tests"))
    for name, (value, dt) in {"w": (w, "INT4"), "tm": (t_mvau, "INT8"), "tt": (t_thr, "UINT4")}.items():
        model.set_initializer(name, value.astype(np.float32))
        model.set_tensor_datatype(name, finn.DataType[dt])
    for name, (_, dt) in tensors.items():
        model.set_tensor_datatype(name, finn.DataType[dt])
    return model


def test_execute_graph_matches_finn(finn: Finn) -> None:
    from golden.execute import execute

    model = _graph_model(finn)
    rng = np.random.default_rng(9)
    frames = [random_values(rng, "UINT4", (1, 6, 6, 3)) for _ in range(2)]
    gold = execute(model.model, {"x": np.concatenate(frames)}, return_all=True)
    for f, x in enumerate(frames):
        ref = finn.execute_onnx(model, {"x": x.astype(np.float32)}, return_full_exec_context=True)
        for name in ("m", "t", "a", "k", "mp", "y"):
            assert mismatches(gold[name][f : f + 1], ref[name]) == 0, f"tensor {name}, frame {f}"
    assert gold["y"].shape == (2, 1, 1, 24)


def test_execute_refuses_what_it_cannot_referee(finn: Finn) -> None:
    from golden.execute import execute

    good = _graph_model(finn).model
    x = np.ones((1, 6, 6, 3), dtype=np.int64)
    with pytest.raises(GoldenError, match="float layer inside the partition"):
        execute(_graph_model(finn, with_float_node=True).model, {"x": x})
    with pytest.raises(GoldenError, match="shape"):
        execute(good, {"x": np.ones((1, 6, 5, 3))})
    with pytest.raises(GoldenError, match="outside UINT4"):
        execute(good, {"x": x * 16})
    bad = onnx.ModelProto()
    bad.CopyFrom(good)
    for attr in bad.graph.node[5].attribute:  # ElementwiseAdd declared UINT3: 15 + 3 overflows it
        if attr.name == "out_dtype":
            attr.s = b"UINT3"
    with pytest.raises(GoldenError, match=r"ElementwiseAdd_a.*outside UINT3"):
        execute(bad, {"x": np.full((1, 6, 6, 3), 15)})
