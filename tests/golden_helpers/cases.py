"""Attribute sets of specialised HW nodes, shared by the cycle and stream-folding tests.

Each case is one node as FINN's SpecializeLayers would leave it: suffixed op type, backend domain,
and the attributes that matter for folding (PE/SIMD, channel counts 3/24/27, kernels 1/2/3,
strides 1/2, signed/unsigned types, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HW = "finn.custom_op.fpgadataflow"


@dataclass(frozen=True)
class Case:
    """A specialised node: `op_type` carries the _hls/_rtl suffix."""

    op_type: str
    attrs: dict[str, Any]
    n_in: int = 1
    n_out: int = 1
    streamed_inputs: tuple[int, ...] = (0,)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def domain(self) -> str:
        return f"{HW}.{self.op_type.rsplit('_', 1)[1]}"

    @property
    def id(self) -> str:
        keys = (
            "MW",
            "MH",
            "IFMDim",
            "ConvKernelDim",
            "Stride",
            "NumChannels",
            "Channels",
            "PE",
            "SIMD",
            "depthwise",
        )
        parts = [f"{k}{self.attrs[k]}" for k in keys if k in self.attrs]
        return f"{self.op_type}-" + "-".join(p.replace(" ", "") for p in parts)


def _mvau(backend: str, mw: int, mh: int, simd: int, pe: int, vecs: list[int], act: bool, **kw: Any) -> Case:
    attrs = dict(
        MW=mw,
        MH=mh,
        SIMD=simd,
        PE=pe,
        numInputVectors=vecs,
        inputDataType="INT4",
        weightDataType="INT8",
        outputDataType="UINT4" if act else "INT20",
        noActivation=int(not act),
    )
    attrs.update(kw)
    streamed = (0, 1) if attrs.get("mem_mode", "internal_decoupled") != "internal_embedded" else (0,)
    return Case(f"MVAU_{backend}", attrs, n_in=3 if act else 2, streamed_inputs=streamed)


def _swg(
    ifm: list[int],
    k: list[int],
    s: list[int],
    c: int,
    simd: int,
    dw: int = 0,
    d: list[int] | None = None,
    **kw: Any,
) -> Case:
    d = d or [1, 1]
    ofm = [(ifm[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2)]
    attrs = dict(
        IFMDim=ifm,
        OFMDim=ofm,
        ConvKernelDim=k,
        Stride=s,
        Dilation=d,
        IFMChannels=c,
        SIMD=simd,
        depthwise=dw,
        inputDataType="UINT4",
        outputDataType="UINT4",
    )
    attrs.update(kw)
    return Case("ConvolutionInputGenerator_rtl", attrs)


MVAU_CASES = [
    _mvau("hls", 27, 24, 3, 4, [1, 8, 8], True),
    _mvau("hls", 24, 3, 24, 1, [1, 4, 4], False),
    _mvau("hls", 216, 24, 8, 8, [1, 16, 16], True),
    _mvau("hls", 27, 27, 9, 27, [1], False, mem_mode="internal_embedded"),
    _mvau("hls", 48, 16, 16, 2, [2, 3], True, mem_mode="external"),
    _mvau("rtl", 27, 24, 27, 8, [1, 10, 10], False),
    _mvau("rtl", 216, 48, 24, 16, [1, 5, 5], False, TH=2),
    _mvau("rtl", 24, 24, 1, 1, [1, 3, 3], False),
]

SWG_CASES = [
    _swg([8, 8], [3, 3], [1, 1], 3, 3),
    _swg([8, 8], [3, 3], [2, 2], 24, 8),
    _swg([9, 7], [2, 2], [1, 1], 27, 9),
    _swg([10, 10], [3, 3], [1, 1], 24, 4, d=[2, 2]),
    _swg([8, 8], [3, 3], [1, 1], 24, 8, dw=1),
    _swg([9, 9], [3, 3], [2, 2], 27, 3, dw=1),
    _swg([8, 8], [2, 2], [2, 2], 24, 24, dw=1),
    _swg([1, 16], [1, 3], [1, 1], 24, 8),
    _swg([16, 1], [3, 1], [2, 1], 3, 1),
    _swg([1, 16], [1, 3], [1, 2], 24, 8, dw=1),
    _swg([1, 12], [1, 4], [1, 4], 27, 9, dw=1),
    _swg([8, 8], [1, 1], [1, 1], 24, 8),
    _swg([8, 8], [1, 1], [2, 2], 27, 27),
    _swg([6, 6], [3, 3], [1, 1], 3, 3, parallel_window=1),
    _swg([6, 6], [3, 3], [1, 1], 24, 8, dw=1, parallel_window=1),
]

PAD_CASES = [
    Case(
        "FMPadding_rtl",
        dict(ImgDim=[8, 8], Padding=[1, 1, 1, 1], NumChannels=3, SIMD=1, inputDataType="INT8"),
    ),
    Case(
        "FMPadding_rtl",
        dict(ImgDim=[7, 9], Padding=[0, 1, 2, 3], NumChannels=24, SIMD=8, inputDataType="UINT4"),
    ),
    Case(
        "FMPadding_rtl",
        dict(
            ImgDim=[5, 5],
            Padding=[2, 0, 1, 0],
            NumChannels=27,
            SIMD=27,
            inputDataType="INT2",
            numInputVectors=2,
        ),
    ),
    Case(
        "FMPadding_rtl",
        dict(ImgDim=[1, 16], Padding=[0, 2, 0, 1], NumChannels=24, SIMD=3, inputDataType="UINT8"),
    ),
]


def _thr(backend: str, ch: int, pe: int, vecs: list[int], steps: int, **kw: Any) -> Case:
    attrs = dict(
        NumChannels=ch,
        PE=pe,
        numInputVectors=vecs,
        numSteps=steps,
        inputDataType="INT12",
        weightDataType="INT12",
        outputDataType="UINT4" if steps == 15 else "UINT2",
    )
    attrs.update(kw)
    return Case(f"Thresholding_{backend}", attrs, n_in=2)


THRESH_CASES = [
    _thr("hls", 3, 1, [1, 8, 8], 3),
    _thr("hls", 24, 8, [1, 4, 4], 15),
    _thr("hls", 27, 9, [1, 6, 6], 15, mem_mode="internal_embedded"),
    _thr("rtl", 24, 24, [1, 8, 8], 15),
    _thr("rtl", 27, 3, [1], 3),
]

POOL_CASES = [
    Case(
        "Pool_hls",
        dict(
            Function="MaxPool",
            Channels=3,
            PE=1,
            KernelSize=[2, 2],
            OutImgDims=[4, 4],
            InputDataType="INT4",
            OutputDataType="INT4",
        ),
    ),
    Case(
        "Pool_hls",
        dict(
            Function="MaxPool",
            Channels=24,
            PE=8,
            KernelSize=[3, 3],
            OutImgDims=[5, 5],
            InputDataType="UINT8",
            OutputDataType="UINT8",
        ),
    ),
    Case(
        "Pool_hls",
        dict(
            Function="AccPool",
            Channels=27,
            PE=27,
            KernelSize=[2, 2],
            OutImgDims=[3, 3],
            InputDataType="INT4",
            OutputDataType="INT6",
            BatchSize=2,
        ),
    ),
    Case(
        "Pool_hls",
        dict(
            Function="QuantAvgPool",
            Channels=24,
            PE=3,
            KernelSize=[2, 2],
            OutImgDims=[2, 6],
            InputDataType="UINT4",
            OutputDataType="UINT4",
            Size=2,
            AccumBits=6,
        ),
    ),
]

PLUMBING_CASES = [
    Case(
        "StreamingConcat_hls",
        dict(SIMD=3, ChannelsPerStream=[3, 24], inputDataTypes=["UINT4", "INT4"], numInputVectors=[1, 8, 8]),
        n_in=2,
        streamed_inputs=(0, 1),
    ),
    Case(
        "StreamingConcat_hls",
        dict(
            SIMD=9,
            ChannelsPerStream=[27, 27, 9],
            inputDataTypes=["INT8", "INT8", "UINT7"],
            numInputVectors=[1, 4, 4],
        ),
        n_in=3,
        streamed_inputs=(0, 1, 2),
    ),
    Case(
        "StreamingSplit_hls",
        dict(SIMD=3, ChannelsPerStream=[3, 24], inputDataType="INT4", numInputVectors=[1, 8, 8]),
        n_out=2,
    ),
    Case(
        "StreamingSplit_hls",
        dict(SIMD=8, ChannelsPerStream=[8, 16, 24], inputDataType="UINT8", numInputVectors=[1, 5, 5]),
        n_out=3,
    ),
    Case(
        "DuplicateStreams_hls",
        dict(NumChannels=24, PE=8, NumOutputStreams=2, inputDataType="INT4", numInputVectors=[1, 8, 8]),
        n_out=2,
    ),
    Case(
        "DuplicateStreams_hls",
        dict(NumChannels=27, PE=27, NumOutputStreams=3, inputDataType="UINT2", numInputVectors=[1, 3, 3]),
        n_out=3,
    ),
    Case(
        "UpsampleNearestNeighbour_hls",
        dict(HI=4, WI=4, HO=8, WO=8, NumChannels=24, SIMD=8, inputDataType="UINT4"),
    ),
    Case(
        "UpsampleNearestNeighbour_hls",
        dict(HI=5, WI=3, HO=10, WO=9, NumChannels=27, SIMD=3, inputDataType="INT8", batchSize=2),
    ),
    Case("GlobalAccPool_hls", dict(NumChannels=24, PE=8, inputDataType="INT4", numInputVectors=[1, 7, 7])),
    Case("GlobalAccPool_hls", dict(NumChannels=3, PE=1, inputDataType="UINT8", numInputVectors=[1, 4, 5])),
    Case("LabelSelect_hls", dict(Labels=10, PE=2, K=3, inputDataType="INT8", outputDataType="UINT8")),
    Case("LabelSelect_hls", dict(Labels=27, PE=9, K=1, inputDataType="UINT16")),
]


def _elt(
    op: str, lshape: list[int], rshape: list[int], pe: int, ldt: str, rdt: str, odt: str, **kw: Any
) -> Case:
    oshape = [max(a, b) for a, b in zip([1] * (len(lshape) - len(rshape)) + rshape, lshape, strict=True)]
    attrs = dict(
        lhs_shape=lshape,
        rhs_shape=rshape,
        out_shape=oshape,
        PE=pe,
        lhs_dtype=ldt,
        rhs_dtype=rdt,
        out_dtype=odt,
    )
    attrs.update(kw)
    return Case(op, attrs, n_in=2, streamed_inputs=(0, 1))


ELTWISE_CASES = [
    _elt("ElementwiseAdd_hls", [1, 8, 8, 24], [1, 8, 8, 24], 8, "INT8", "INT8", "INT9"),
    _elt("ElementwiseAdd_hls", [1, 4, 4, 27], [1, 1, 1, 27], 9, "UINT4", "INT4", "INT6"),
    _elt("ElementwiseAdd_hls", [1, 4, 4, 24], [1, 4, 4, 1], 4, "INT4", "INT4", "INT5"),
    _elt("ElementwiseAdd_hls", [1, 4, 4, 3], [3], 3, "UINT8", "UINT8", "UINT9", rhs_style="const"),
    _elt(
        "ElementwiseAdd_hls",
        [1, 4, 4, 3],
        [3],
        1,
        "UINT8",
        "UINT8",
        "UINT9",
        rhs_style="const",
        mem_mode="internal_decoupled",
    ),
    _elt("ElementwiseMul_hls", [1, 6, 6, 24], [24], 24, "INT4", "INT3", "INT7", rhs_style="const"),
    _elt("ElementwiseSub_rtl", [1, 5, 5, 27], [1, 5, 5, 27], 3, "UINT8", "UINT8", "INT9"),
    _elt("ElementwiseAdd_rtl", [1, 5, 5, 24], [1, 5, 5, 24], 8, "INT8", "INT8", "INT9"),
]

DWC_CASES = [
    Case(
        "StreamingDataWidthConverter_hls",
        dict(inShape=[1, 8, 8, 24], outShape=[1, 8, 8, 24], inWidth=32, outWidth=96, dataType="INT4"),
    ),
    Case(
        "StreamingDataWidthConverter_rtl",
        dict(inShape=[1, 8, 8, 24], outShape=[1, 8, 8, 24], inWidth=96, outWidth=12, dataType="UINT4"),
    ),
    Case(
        "StreamingDataWidthConverter_hls",
        dict(inShape=[1, 4, 4, 27], outShape=[1, 4, 4, 27], inWidth=24, outWidth=72, dataType="INT8"),
    ),
    Case(
        "StreamingDataWidthConverter_hls",
        dict(inShape=[1, 4, 4, 24], outShape=[1, 4, 4, 24], inWidth=48, outWidth=128, dataType="INT8"),
    ),
]

FIFO_CASES = [
    Case(
        "StreamingFIFO_rtl",
        dict(depth=32, folded_shape=[1, 8, 8, 3, 8], normal_shape=[1, 8, 8, 24], dataType="INT4"),
    ),
    Case("StreamingFIFO_hls", dict(depth=2, folded_shape=[1, 27, 1], normal_shape=[1, 27], dataType="UINT8")),
]

ALL_CASES = (
    MVAU_CASES
    + SWG_CASES
    + PAD_CASES
    + THRESH_CASES
    + POOL_CASES
    + PLUMBING_CASES
    + ELTWISE_CASES
    + DWC_CASES
    + FIFO_CASES
)
