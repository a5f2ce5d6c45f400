"""Beat packing, hex files, stream folding and parameter-memory layout.

Referees: hand-written hex for small examples, FINN's finn.util.data_packing helpers, FINN's
folded-shape / stream-width methods of every specialised node in golden_helpers.cases, and the
weight/threshold images FINN's make_weight_file writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from golden.datatypes import encode, parse_dtype
from golden.errors import GoldenError
from golden.memlayout import (
    mvau_weight_layout,
    mvau_weight_matrix,
    mvau_weight_words,
    threshold_layout,
    threshold_matrix,
    threshold_words,
)
from golden.node import NodeView
from golden.packing import pack, padded_width, read_hex, unpack, write_hex
from golden.streams import (
    folded_in_shape,
    folded_out_shape,
    from_beats,
    in_dtype,
    in_elems_per_beat,
    in_width,
    out_dtype,
    out_elems_per_beat,
    out_width,
    to_beats,
)

try:
    from golden_helpers.cases import ALL_CASES, HW, Case
    from golden_helpers.finn_env import Finn, finn, hw_node, random_thresholds, random_values, seed_of
except ImportError:  # tests/ imported as a package
    from tests.golden_helpers.cases import ALL_CASES, HW, Case
    from tests.golden_helpers.finn_env import Finn, finn, hw_node, random_thresholds, random_values, seed_of

__all__ = ["finn"]  # the session fixture, re-exported for pytest

# ---------------------------------------------------------------------------------------------
# pack / unpack by hand


@pytest.mark.parametrize(
    ("values", "bits", "epb", "signed", "expected"),
    [
        ([-1, 2], 4, 2, True, [0x2F]),  # element 0 (-1 = 0xf) in the low nibble
        ([1, 2, 3, 4], 4, 2, False, [0x21, 0x43]),
        ([1, 0, 1, 1], 1, 4, False, [0b1101]),
        ([-2, 1, -1], 2, 3, True, [0b11_01_10]),
        ([-128, 127], 8, 1, True, [0x80, 0x7F]),
        ([5, -3], 3, 2, True, [0b101_101]),  # -3 = 0b101 and 5 = 0b101: INT3 cannot hold 5
    ],
    ids=["int4", "uint4", "binary", "int2x3", "int8", "int3-overflow"],
)
def test_pack_by_hand(values: list[int], bits: int, epb: int, signed: bool, expected: list[int]) -> None:
    if signed and max(values) >= 1 << (bits - 1):
        with pytest.raises(GoldenError, match="do not fit"):
            pack(np.array(values), bits, epb, signed)
        return
    assert pack(np.array(values), bits, epb, signed) == expected
    assert unpack(expected, bits, epb, signed, (len(values),)).tolist() == values


def test_pack_wide_beats_by_hand() -> None:
    """Beats wider than 64 bits: 3 INT32 elements, element 0 lowest."""
    beats = pack(np.array([1, -1, 2]), 32, 3, True)
    assert beats == [(2 << 64) | (0xFFFFFFFF << 32) | 1]


def test_hex_file_by_hand(tmp_path: Path) -> None:
    """INT4 [-1, 2] in one 8-bit beat is "2f"; a 12-bit beat pads to 16 bits, no sign extension."""
    path = tmp_path / "s.hex"
    write_hex(path, pack(np.array([-1, 2]), 4, 2, True), 8)
    assert path.read_text() == "2f\n"
    write_hex(path, pack(np.array([-1, -1, -1, 1, 0, 0]), 4, 3, True), 12)
    assert path.read_text() == "0fff\n0001\n"
    assert read_hex(path) == [0xFFF, 0x001]
    with pytest.raises(GoldenError):
        write_hex(path, [1 << 12], 12)


@pytest.mark.parametrize("bits", [1, 2, 3, 7, 8, 13, 24, 32, 63])
@pytest.mark.parametrize("signed", [False, True])
def test_round_trip(bits: int, signed: bool) -> None:
    rng = np.random.default_rng(bits)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    x = rng.integers(lo, hi, size=(4, 3, 6), endpoint=True, dtype=np.int64)
    for epb in (1, 3, 6, 9):
        beats = pack(x, bits, epb, signed)
        assert len(beats) == x.size // epb
        assert all(0 <= b < 1 << (bits * epb) for b in beats)
        assert np.array_equal(unpack(beats, bits, epb, signed, x.shape), x)


def test_hex_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(-8, 8, size=(5, 10))
    beats = pack(x, 4, 5, True)
    write_hex(tmp_path / "a.hex", beats, 20)
    lines = (tmp_path / "a.hex").read_text().splitlines()
    assert all(len(line) == 6 and line == line.lower() for line in lines)
    assert np.array_equal(unpack(read_hex(tmp_path / "a.hex"), 4, 5, True, x.shape), x)


def test_padded_width() -> None:
    assert [padded_width(b) for b in (1, 8, 9, 12, 16, 17, 100)] == [8, 8, 16, 16, 16, 24, 104]


def test_pack_rejects_ragged_beats() -> None:
    with pytest.raises(GoldenError, match="beats"):
        pack(np.arange(5), 4, 2, False)


# ---------------------------------------------------------------------------------------------
# agreement with finn.util.data_packing

PACK_DTYPES = ["UINT1", "BINARY", "UINT4", "INT4", "INT3", "INT8", "UINT7", "INT16", "INT20", "BIPOLAR"]


@pytest.mark.parametrize("dtype", PACK_DTYPES)
def test_pack_matches_finn(finn: Finn, dtype: str) -> None:
    rng = np.random.default_rng(seed_of(dtype))
    x = random_values(rng, dtype, (3, 4, 6))
    dt = parse_dtype(dtype)
    codes = encode(x, dt).astype(np.int64)
    width = 6 * dt.bits
    fdt = finn.DataType[dtype]
    ours = pack(codes, dt.bits, 6, signed=False) if dt.bipolar else pack(x, dt.bits, 6, dt.signed)
    theirs = finn.data_packing.npy_to_rtlsim_input(x.astype(np.float32), fdt, width)
    assert ours == [int(v) for v in theirs]
    hexes = finn.data_packing.pack_innermost_dim_as_hex_string(
        x.astype(np.float32), fdt, padded_width(width), reverse_inner=True, prefix=""
    )
    assert [format(b, f"0{padded_width(width) // 4}x") for b in ours] == list(hexes.ravel())
    packed = finn.data_packing.finnpy_to_packed_bytearray(x, fdt, reverse_inner=True, reverse_endian=True)
    assert ours == [int.from_bytes(bytes(row), "little") for row in packed.reshape(-1, packed.shape[-1])]
    back = finn.data_packing.rtlsim_output_to_npy(ours, None, fdt, x.shape, width, dt.bits)
    decoded = unpack(ours, dt.bits, 6, dt.signed and not dt.bipolar, x.shape)
    decoded = 2 * decoded - 1 if dt.bipolar else decoded
    assert np.array_equal(decoded, back)


# ---------------------------------------------------------------------------------------------
# stream folding against FINN's node methods


def _pair(finn: Finn, case: Case) -> tuple[object, NodeView]:
    node = hw_node(case.op_type, case.attrs, case.n_in, case.n_out, case.domain)
    return finn.getCustomOp(node), NodeView.from_onnx(node, onnx.GraphProto())


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_stream_folding_matches_finn(finn: Finn, case: Case) -> None:
    op, view = _pair(finn, case)
    for ind in case.streamed_inputs:
        assert tuple(folded_in_shape(view, ind)) == tuple(op.get_folded_input_shape(ind)), f"in {ind}"
        assert in_width(view, ind) == op.get_instream_width(ind), f"width in {ind}"
        assert padded_width(in_width(view, ind)) == op.get_instream_width_padded(ind)
        assert in_dtype(view, ind).name == op.get_input_datatype(ind).name
        assert (
            in_elems_per_beat(view, ind)
            == op.get_instream_width(ind) // op.get_input_datatype(ind).bitwidth()
        )
    for ind in range(case.n_out):
        assert tuple(folded_out_shape(view, ind)) == tuple(op.get_folded_output_shape(ind)), f"out {ind}"
        assert out_width(view, ind) == op.get_outstream_width(ind), f"width out {ind}"
        assert padded_width(out_width(view, ind)) == op.get_outstream_width_padded(ind)
        assert out_dtype(view, ind).name == op.get_output_datatype(ind).name
        assert out_elems_per_beat(view, ind) * out_dtype(view, ind).bits == op.get_outstream_width(ind)


UNSTREAMED = [c for c in ALL_CASES if c.op_type.startswith(("MVAU", "Thresholding", "ElementwiseAdd_hls"))]


@pytest.mark.parametrize("case", UNSTREAMED, ids=[c.id for c in UNSTREAMED])
def test_parameter_stream_widths_match_finn(finn: Finn, case: Case) -> None:
    """Widths of the parameter inputs: 0 where FINN embeds them, the memstream width otherwise."""
    op, view = _pair(finn, case)
    for ind in range(1, case.n_in):
        assert in_width(view, ind) == op.get_instream_width(ind), f"input {ind}"


def test_beat_order_round_trip() -> None:
    """to_beats/from_beats are inverse, also for the permuted depthwise and Pool streams."""
    swg = NodeView.make(
        "ConvolutionInputGenerator_rtl",
        dict(
            IFMDim=[4, 4],
            OFMDim=[2, 2],
            ConvKernelDim=[3, 3],
            Stride=[1, 1],
            Dilation=[1, 1],
            IFMChannels=6,
            SIMD=2,
            depthwise=1,
            inputDataType="UINT4",
            outputDataType="UINT4",
        ),
    )
    t = np.arange(2 * 2 * 9 * 6).reshape(1, 2, 2, 54)
    beats = to_beats(swg, t)
    assert beats.shape == (2 * 2 * 9 * 3, 2)
    # pixel (0, 0), channel fold 0: the 9 taps of channels 0 and 1, tap-major
    assert beats[:9].tolist() == [[6 * k, 6 * k + 1] for k in range(9)]
    assert np.array_equal(from_beats(swg, beats).reshape(t.shape), t)
    pool = NodeView.make(
        "Pool_hls",
        dict(
            Channels=6,
            PE=2,
            KernelSize=[3, 3],
            OutImgDims=[2, 2],
            Function="MaxPool",
            InputDataType="UINT4",
            OutputDataType="UINT4",
        ),
    )
    assert np.array_equal(to_beats(pool, t, output=False), beats)
    assert np.array_equal(from_beats(pool, beats, output=False).reshape(t.shape), t)


def test_broadcast_operand_beats_repeat_the_element() -> None:
    node = NodeView.make(
        "ElementwiseAdd_hls",
        dict(
            lhs_shape=[1, 2, 2, 4],
            rhs_shape=[1, 2, 2, 1],
            out_shape=[1, 2, 2, 4],
            PE=2,
            lhs_dtype="INT4",
            rhs_dtype="INT4",
            out_dtype="INT5",
        ),
    )
    beats = to_beats(node, np.array([1, 2, 3, 4]).reshape(1, 2, 2, 1), ind=1, output=False)
    assert beats.tolist() == [[1, 1], [2, 2], [3, 3], [4, 4]]


# ---------------------------------------------------------------------------------------------
# parameter memories against FINN's weight/threshold images

WEIGHT_CASES = [
    # (MW, MH, SIMD, PE, wdt)
    (27, 24, 3, 4, "INT4"),
    (24, 3, 24, 1, "UINT2"),
    (16, 8, 4, 8, "INT8"),
    (27, 27, 9, 3, "BIPOLAR"),
    (12, 6, 1, 1, "INT3"),
]


@pytest.mark.parametrize("case", WEIGHT_CASES, ids=[f"w{c}" for c in WEIGHT_CASES])
def test_mvau_weight_words_match_finn_dat(finn: Finn, case: tuple, tmp_path: Path) -> None:
    mw, mh, simd, pe, wdt = case
    rng = np.random.default_rng(seed_of(case))
    w = random_values(rng, wdt, (mw, mh))
    attrs = dict(
        MW=mw,
        MH=mh,
        SIMD=simd,
        PE=pe,
        inputDataType="INT4",
        weightDataType=wdt,
        outputDataType="INT20",
        noActivation=1,
        mem_mode="internal_decoupled",
    )
    node = hw_node("MVAU_hls", attrs, n_in=2, domain=HW + ".hls")
    op = finn.getCustomOp(node)
    view = NodeView.make("MVAU_hls", attrs, inits={1: w})
    lay = mvau_weight_layout(view)
    assert (lay.depth, lay.word_bits) == (op.calc_wmem(), op.get_instream_width(1))
    hw = op.get_hw_compatible_weight_tensor(w.astype(np.float32))  # (1, PE, WMEM, SIMD), SIMD reversed
    ours = mvau_weight_matrix(view)  # (WMEM, PE, SIMD)
    expect = np.flip(hw[0], axis=-1).transpose(1, 0, 2)
    assert np.array_equal((ours + 1) // 2 if wdt == "BIPOLAR" else ours, expect)  # FINN: BIPOLAR as 0/1
    op.make_weight_file(w.astype(np.float32), "decoupled_verilog_dat", str(tmp_path / "memblock.dat"))
    finn_words = [int(line, 16) for line in (tmp_path / "memblock.dat").read_text().split()]
    assert list(mvau_weight_words(view)) == finn_words


THRESH_MEM_CASES = [
    # (C, PE, steps, tdt, broadcast)
    (24, 8, 15, "INT12", False),
    (3, 1, 3, "INT8", False),
    (27, 9, 1, "UINT6", False),
    (24, 4, 3, "INT10", True),
]


@pytest.mark.parametrize("case", THRESH_MEM_CASES, ids=[f"t{c}" for c in THRESH_MEM_CASES])
def test_threshold_words_match_finn(finn: Finn, case: tuple, tmp_path: Path) -> None:
    """Our words equal the threshold stream FINN feeds Thresholding_hls in node rtlsim (the decoupled
    npy, element 0 in the LSBs); FINN's memblock.dat holds the same thresholds with the step order
    inside each PE lane reversed (README, "FINN findings")."""
    ch, pe, steps, tdt, bcast = case
    rng = np.random.default_rng(seed_of(case))
    dt = parse_dtype(tdt)
    t = random_thresholds(rng, dt.min, dt.max, 1 if bcast else ch, steps)
    attrs = dict(
        NumChannels=ch,
        PE=pe,
        numSteps=steps,
        inputDataType=tdt,
        weightDataType=tdt,
        outputDataType="UINT4",
        numInputVectors=[1, 2, 2],
    )
    op = finn.getCustomOp(hw_node("Thresholding_hls", attrs, n_in=2, domain=HW + ".hls"))
    view = NodeView.make("Thresholding_hls", attrs, inits={1: t})
    lay = threshold_layout(view)
    assert (lay.depth, lay.word_bits) == (op.calc_tmem(), op.get_instream_width(1))
    hw = op.get_hw_compatible_threshold_tensor(t.astype(np.float32))  # (1, PE, TMEM, steps)
    assert np.array_equal(threshold_matrix(view), hw[0].transpose(1, 0, 2))
    op.make_weight_file(t.astype(np.float32), "decoupled_npy", str(tmp_path / "thr.npy"))
    stream = finn.data_packing.npy_to_rtlsim_input(
        str(tmp_path / "thr.npy"), finn.DataType[tdt], lay.word_bits
    )
    assert list(threshold_words(view)) == [int(v) for v in stream]
    op.make_weight_file(t.astype(np.float32), "decoupled_verilog_dat", str(tmp_path / "memblock.dat"))
    dat = [int(line, 16) for line in (tmp_path / "memblock.dat").read_text().split()]
    reversed_steps = encode(threshold_matrix(view)[..., ::-1], dt).astype(np.int64)
    assert dat == pack(reversed_steps, dt.bits, pe * steps, signed=False)


def test_mvau_threshold_words_by_hand() -> None:
    """MH=4, PE=2, 2 steps, INT4: address 0 holds channels 0 and 1, address 1 channels 2 and 3."""
    t = np.array([[-1, 2], [0, 3], [-8, 7], [1, 1]])
    node = NodeView.make(
        "MVAU",
        dict(MW=2, MH=4, SIMD=1, PE=2, weightDataType="INT2", accDataType="INT4"),
        inits={1: np.zeros((2, 4)), 2: t},
    )
    words = threshold_words(node)
    # lanes (ch0: -1, 2), (ch1: 0, 3) -> nibbles f, 2, 0, 3 from the LSB up
    assert [hex(w) for w in words] == ["0x302f", "0x1178"]


def test_weight_words_by_hand() -> None:
    """MW=2, MH=2, SIMD=2, PE=1, INT4: word nf holds W[0, nf] in the low nibble, W[1, nf] above."""
    w = np.array([[1, -1], [-2, 3]])
    node = NodeView.make("MVAU", dict(MW=2, MH=2, SIMD=2, PE=1, weightDataType="INT4"), inits={1: w})
    assert [hex(x) for x in mvau_weight_words(node)] == ["0xe1", "0x3f"]


def test_thresholds_outside_the_input_range_are_refused() -> None:
    """FINN's Thresholding RTL compares as the input type: thresholds lie in [min, max + 1]."""

    def node(t: list[list[int]], idt: str = "UINT4") -> NodeView:
        attrs = dict(NumChannels=2, PE=1, numSteps=2, inputDataType=idt, weightDataType="INT6",
                     outputDataType="UINT2")  # fmt: skip
        return NodeView.make("Thresholding_rtl", attrs, inits={1: np.array(t)})

    assert len(threshold_words(node([[0, 16], [3, 4]]))) == 2  # max + 1 is allowed
    with pytest.raises(GoldenError, match=r"1 threshold\(s\) outside \[0, 16\] for input UINT4, e.g. -1"):
        threshold_words(node([[-1, 5], [3, 4]]))
    with pytest.raises(GoldenError, match=r"outside \[0, 16\].* e.g. 17"):
        threshold_words(node([[0, 5], [3, 17]]))
    assert len(threshold_words(node([[-8, 8], [0, 1]], "INT4"))) == 2
