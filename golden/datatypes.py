"""FINN/QONNX integer datatype strings ("UINT4", "INT8", "BIPOLAR", ...) as plain records.

Golden must not import qonnx, so the handful of datatype facts it needs (width, signedness, range,
on-the-wire encoding) are re-derived here from the datatype names alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from golden.errors import GoldenError

_INT_RE = re.compile(r"^(U?)INT(\d+)$")


@dataclass(frozen=True)
class DType:
    """An integer datatype: `bits` on the wire, values in [min, max]."""

    name: str
    bits: int
    signed: bool
    min: int
    max: int

    @property
    def bipolar(self) -> bool:
        """BIPOLAR is the one type whose wire code is not its two's complement value."""
        return self.name == "BIPOLAR"

    def allowed(self, values: np.ndarray) -> np.ndarray:
        """Element-wise: is the value representable (integer, in range, and ±1 for BIPOLAR)?"""
        v = np.asarray(values)
        ok = (v >= self.min) & (v <= self.max) & (np.round(v) == v)
        if self.bipolar or self.name == "TERNARY":
            ok &= np.isin(v, [-1, 1] if self.bipolar else [-1, 0, 1])
        return ok


def parse_dtype(name: str) -> DType:
    """Parse a FINN datatype name; non-integer types (FLOAT32, FIXED<..>) raise GoldenError."""
    if not isinstance(name, str) or not name:
        raise GoldenError(f"missing datatype name ({name!r})")
    if name == "BINARY":
        return DType("BINARY", 1, False, 0, 1)
    if name == "BIPOLAR":
        return DType("BIPOLAR", 1, True, -1, 1)
    if name == "TERNARY":
        return DType("TERNARY", 2, True, -1, 1)
    m = _INT_RE.match(name)
    if m is None:
        raise GoldenError(f"datatype {name!r} is not an integer type; golden models integers only")
    bits = int(m.group(2))
    if bits < 1:
        raise GoldenError(f"datatype {name!r} has no bits")
    if m.group(1):
        return DType("BINARY" if bits == 1 else name, bits, False, 0, (1 << bits) - 1)
    return DType(name, bits, True, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


_STORAGE = [np.dtype(t) for t in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64")]


def storage_dtype(lo: int, hi: int) -> np.dtype:
    """Narrowest NumPy integer type holding [lo, hi] (golden keeps tensors this compact internally)."""
    for t in _STORAGE:
        info = np.iinfo(t)
        if info.min <= lo and hi <= info.max:
            return t
    raise GoldenError(f"no 64-bit integer holds [{lo}, {hi}]")


def smallest_dtype(value: int) -> DType:
    """Fewest-bits type holding `value`, preferring unsigned, exactly as QONNX's
    DataType.get_smallest_possible searches: BINARY, UINT2..64, BIPOLAR, TERNARY, INT1..64."""
    value = int(value)
    cands = ["BINARY"] + [f"UINT{b}" for b in range(2, 65)] + ["BIPOLAR", "TERNARY"]
    cands += [f"INT{b}" for b in range(1, 65)]
    for cand in cands:
        dt = parse_dtype(cand)
        if dt.min <= value <= dt.max:
            return dt
    raise GoldenError(f"no integer datatype up to 64 bits holds {value}")


def attr_dtype(attrs: dict[str, Any], key: str) -> DType:
    """The datatype named by node attribute `key` (e.g. inputDataType), or GoldenError if absent."""
    if key not in attrs:
        raise GoldenError(f"node has no datatype attribute {key!r}")
    return parse_dtype(attrs[key])


def encode(values: np.ndarray, dtype: DType) -> np.ndarray:
    """Wire codes (uint64) of `values`: BIPOLAR -1/+1 -> 0/1, signed -> `bits`-wide two's complement."""
    v = np.asarray(values, dtype=np.int64)
    ok = dtype.allowed(v)
    if not bool(np.all(ok)):
        bad = v[~ok].ravel()[:4]
        raise GoldenError(f"values {bad.tolist()} are not representable as {dtype.name}")
    if dtype.bipolar:
        v = (v + 1) // 2
    return v.astype(np.uint64) & np.uint64((1 << dtype.bits) - 1)


def decode(codes: np.ndarray, dtype: DType) -> np.ndarray:
    """Inverse of `encode`: int64 values from wire codes."""
    c = np.asarray(codes).astype(np.uint64) & np.uint64((1 << dtype.bits) - 1)
    if dtype.bipolar:
        return 2 * c.astype(np.int64) - 1
    if dtype.signed and dtype.bits == 64:
        return c.view(np.int64)
    if dtype.signed:
        sign = np.uint64(1 << (dtype.bits - 1))
        return (c ^ sign).astype(np.int64) - np.int64(sign)
    return c.astype(np.int64)


def graph_dtype_names(graph: onnx.GraphProto) -> dict[str, str]:
    """Tensor name -> FINN datatype name from the graph's quantization_annotation (key finn_datatype)."""
    out: dict[str, str] = {}
    for ann in graph.quantization_annotation:
        for kv in ann.quant_parameter_tensor_names:
            if kv.key == "finn_datatype":
                out[ann.tensor_name] = kv.value
    return out


def tensor_dtype(graph: onnx.GraphProto, tensor: str) -> DType | None:
    """Annotated integer datatype of `tensor`, None when it carries no annotation."""
    name = graph_dtype_names(graph).get(tensor)
    return None if name is None else parse_dtype(name)
