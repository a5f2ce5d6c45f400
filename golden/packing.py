"""Beat packing: integer elements <-> AXI-stream words, and the hex files RTL testbenches read.

Convention (the one FINN's rtlsim path uses, npy_to_rtlsim_input with reverse_inner=True): the
elements are taken in C order, `elems_per_beat` consecutive elements form one beat, element 0 of a
beat sits in the least significant `bits` bits, element j in bits [j*bits, (j+1)*bits).  Signed
elements are stored as `bits`-wide two's complement.  BIPOLAR values must be mapped to their
0/1 codes first (golden.datatypes.encode).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from golden.errors import GoldenError


def padded_width(bits: int) -> int:
    """Stream width rounded up to whole bytes, as FINN's get_instream_width_padded (AXI requires it)."""
    return -(-int(bits) // 8) * 8


def _codes(values: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """uint64 wire codes of `values`, range-checked against a bits-wide (un)signed field."""
    v = np.asarray(values)
    if v.dtype.kind == "f":
        if not np.all(np.round(v) == v):
            raise GoldenError("pack: non-integer values")
        v = v.astype(np.int64)
    v = v.astype(np.int64)
    if not 1 <= bits <= 64:
        raise GoldenError(f"pack: element width {bits} outside 1..64")
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if v.size and (int(v.min()) < lo or int(v.max()) > hi):
        kind = "signed" if signed else "unsigned"
        raise GoldenError(f"pack: values in [{int(v.min())}, {int(v.max())}] do not fit {bits}-bit {kind}")
    return v.astype(np.uint64) & np.uint64((1 << bits) - 1 if bits < 64 else (1 << 64) - 1)


def pack(values: np.ndarray, bits: int, elems_per_beat: int, signed: bool) -> list[int]:
    """Flatten `values` in C order and pack `elems_per_beat` elements per beat, element 0 in the LSBs."""
    codes = _codes(values, bits, signed).ravel()
    if elems_per_beat < 1 or codes.size % elems_per_beat:
        raise GoldenError(f"pack: {codes.size} elements do not fill beats of {elems_per_beat}")
    n = codes.size // elems_per_beat
    if n == 0:
        return []
    weights = np.arange(bits, dtype=np.uint64)
    bit_planes = ((codes[:, None] >> weights) & np.uint64(1)).astype(np.uint8)  # LSB first
    row_bits = bit_planes.reshape(n, elems_per_beat * bits)
    nbytes = -(-row_bits.shape[1] // 8)
    padded = np.zeros((n, nbytes * 8), dtype=np.uint8)
    padded[:, : row_bits.shape[1]] = row_bits
    raw = np.packbits(padded, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in raw]


def unpack(
    beats: list[int], bits: int, elems_per_beat: int, signed: bool, shape: tuple[int, ...]
) -> np.ndarray:
    """Inverse of `pack`: int64 array of `shape`; bits above elems_per_beat*bits are ignored."""
    n = len(beats)
    if int(np.prod(shape)) != n * elems_per_beat:
        raise GoldenError(f"unpack: {n} beats of {elems_per_beat} elements do not fill shape {list(shape)}")
    if n == 0:
        return np.zeros(shape, dtype=np.int64)
    total = elems_per_beat * bits
    nbytes = -(-total // 8)
    mask = (1 << total) - 1
    raw = np.frombuffer(b"".join((int(b) & mask).to_bytes(nbytes, "little") for b in beats), dtype=np.uint8)
    row_bits = np.unpackbits(raw.reshape(n, nbytes), axis=1, bitorder="little")[:, :total]
    planes = row_bits.reshape(n * elems_per_beat, bits).astype(np.uint64)
    codes = (planes << np.arange(bits, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    if signed and bits < 64:
        sign = np.uint64(1 << (bits - 1))
        values = (codes ^ sign).astype(np.int64) - np.int64(1 << (bits - 1))
    else:
        values = codes.view(np.int64) if signed else codes.astype(np.int64)
    return values.reshape(shape)


def write_hex(path: str | Path, beats: list[int], width_bits: int) -> None:
    """One beat per line, lower-case hex, zero-padded (not sign-extended) to padded_width(width_bits)."""
    digits = padded_width(width_bits) // 4
    limit = 1 << int(width_bits)
    lines = []
    for b in beats:
        if not 0 <= int(b) < limit:
            raise GoldenError(f"write_hex: beat {b} does not fit {width_bits} bits")
        lines.append(format(int(b), f"0{digits}x"))
    Path(path).write_text("".join(line + "\n" for line in lines))


def read_hex(path: str | Path) -> list[int]:
    """Beats of a hex file written by `write_hex` (blank lines and // comments are skipped)."""
    beats = []
    for line in Path(path).read_text().splitlines():
        text = line.split("//", 1)[0].strip()
        if text:
            beats.append(int(text, 16))
    return beats


def hex_lines(codes: np.ndarray, bits: int, elems_per_beat: int, width_bits: int | None = None) -> bytes:
    """`write_hex(path, pack(codes, bits, elems_per_beat, signed=False), width_bits)`'s file content,
    vectorised for large tensors.  `codes` are unsigned wire codes (golden.datatypes.encode)."""
    c = np.asarray(codes).reshape(-1)
    if c.size and (c.dtype.kind not in "iu" or int(c.min()) < 0 or int(c.max()) >= (1 << bits)):
        raise GoldenError(f"hex_lines: codes must be unsigned {bits}-bit integers")
    if elems_per_beat < 1 or c.size % elems_per_beat:
        raise GoldenError(f"hex_lines: {c.size} elements do not fill beats of {elems_per_beat}")
    width = elems_per_beat * bits if width_bits is None else int(width_bits)
    if width < elems_per_beat * bits:
        raise GoldenError(f"hex_lines: {elems_per_beat} x {bits} bits do not fit a {width}-bit beat")
    nbytes = padded_width(width) // 8
    beats = c.size // elems_per_beat
    out = []
    step = max(1, (1 << 22) // max(1, elems_per_beat * bits))  # beats per chunk: ~4 Mbit
    for start in range(0, beats, step):
        chunk = c[start * elems_per_beat : (start + step) * elems_per_beat].astype(np.uint64)
        raw = _beat_bytes(chunk.reshape(-1, elems_per_beat), bits, nbytes)[:, ::-1]  # MSB first
        text = np.empty((raw.shape[0], 2 * nbytes + 1), dtype=np.uint8)
        text[:, 0:-1:2] = _HEX[raw >> 4]
        text[:, 1:-1:2] = _HEX[raw & 15]
        text[:, -1] = ord("\n")
        out.append(text.tobytes())
    return b"".join(out)


def _beat_bytes(codes: np.ndarray, bits: int, nbytes: int) -> np.ndarray:
    """(beats, nbytes) little-endian bytes of beats whose element j sits at bit j*bits."""
    n, epb = codes.shape
    if bits > 56:  # element + bit offset would overflow 64 bits: go through bit planes
        planes = ((codes[:, :, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
        row = np.zeros((n, nbytes * 8), dtype=np.uint8)
        row[:, : epb * bits] = planes.reshape(n, epb * bits)
        return np.packbits(row, axis=1, bitorder="little")
    acc = np.zeros((n, nbytes + 8), dtype=np.uint8)
    for j in range(epb):  # OR each element, shifted to its bit offset, into the bytes it spans
        first, shift = divmod(j * bits, 8)
        v = codes[:, j] << np.uint64(shift)
        for b in range((bits + shift + 7) // 8):
            acc[:, first + b] |= ((v >> np.uint64(8 * b)) & np.uint64(255)).astype(np.uint8)
    return acc[:, :nbytes]


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
