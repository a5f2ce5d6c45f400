"""A read-only, qonnx-free view of one FINN HW node: generic op type, decoded attributes, constants."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from golden.errors import GoldenError

BACKENDS = ("hls", "rtl")
HW_DOMAIN = "finn.custom_op.fpgadataflow"  # the ONNX domain of FINN's HW layers


def load_model(model: onnx.ModelProto | str | Path) -> onnx.ModelProto:
    """The model itself, or the ONNX file read from disk; unreadable / non-ONNX files are a GoldenError."""
    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if not path.is_file():
        raise GoldenError(f"{path}: no such ONNX file")
    try:
        m = onnx.load(str(path))
    except Exception as e:  # protobuf's DecodeError and friends: anything onnx cannot parse
        raise GoldenError(f"{path} is not a readable ONNX model (truncated or corrupt?): {e}") from e
    if not m.graph.node or not m.graph.output:
        raise GoldenError(f"{path} is not an ONNX model of a dataflow graph (no nodes or no outputs)")
    return m


QUANT_OPS = ("Quant", "Trunc", "BipolarQuant")  # qonnx's quantizer ops


def constants_as_initializers(graph: onnx.GraphProto) -> None:
    """In place: ``Constant`` nodes become initializers (what FoldConstants would do, minus one
    onnxruntime session per node) and quantizer nodes get qonnx's domain (exporters leave it out).
    The export stage and a user's QONNX file (hls.qonnx_in) are normalised by the same rule."""
    for node in list(graph.node):
        if node.op_type in QUANT_OPS:
            node.domain = "qonnx.custom_op.general"
        elif node.op_type == "Constant" and node.attribute[0].name == "value":
            t = onnx.TensorProto()
            t.CopyFrom(node.attribute[0].t)
            t.name = node.output[0]
            graph.initializer.append(t)
            graph.node.remove(node)


def split_op_type(op_type: str) -> tuple[str, str]:
    """ "MVAU_hls" -> ("MVAU", "hls"); a generic op type keeps backend ""."""
    for backend in BACKENDS:
        if op_type.endswith("_" + backend):
            return op_type[: -len(backend) - 1], backend
    return op_type, ""


def decode_attr(attr: onnx.AttributeProto) -> Any:
    """Attribute value as plain python (str, int, float, lists of those, or an ndarray for tensors)."""
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, list | tuple):
        return [v.decode("utf-8") if isinstance(v, bytes) else v for v in value]
    return value


def as_exact(array: np.ndarray) -> np.ndarray:
    """int64 when every element is integral (FINN stores weights/thresholds as float32), else float64."""
    a = np.asarray(array)
    if a.dtype.kind in "iub":
        return a.astype(np.int64)
    a = a.astype(np.float64)
    if a.size and np.all(np.isfinite(a)) and np.all(np.round(a) == a):
        return a.astype(np.int64)
    return a


def _n_io(op_type: str, attrs: dict[str, Any]) -> tuple[int, int]:
    """How many inputs/outputs a generic op has, for nodes built without a graph."""
    n_in, n_out = 1, 1
    if op_type == "MVAU":
        n_in = 2 if attrs.get("noActivation", 0) else 3
    elif op_type == "Thresholding" or op_type.startswith("Elementwise"):
        n_in = 2
    elif op_type == "StreamingConcat":
        n_in = len(attrs.get("ChannelsPerStream", [])) or 1
    elif op_type == "StreamingSplit":
        n_out = len(attrs.get("ChannelsPerStream", [])) or 1
    elif op_type == "DuplicateStreams":
        n_out = int(attrs.get("NumOutputStreams", 2))
    return n_in, n_out


@dataclass(frozen=True)
class NodeView:
    """Everything golden needs to know about one HW node, decoupled from onnx/qonnx objects."""

    name: str
    op_type: str
    backend: str
    attrs: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    inits: dict[int, np.ndarray] = field(default_factory=dict)
    # memo of constants derived from attrs/inits (float weights, accumulator bounds, ...): a node
    # is evaluated once per frame, its derived constants need computing only once
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def full_op_type(self) -> str:
        """The op type as it appears in the ONNX file ("MVAU_hls")."""
        return f"{self.op_type}_{self.backend}" if self.backend else self.op_type

    @classmethod
    def from_onnx(cls, node: onnx.NodeProto, graph: onnx.GraphProto) -> NodeView:
        """View of `node`; inputs that are graph initializers land in `inits` (as int64 when integral)."""
        op_type, backend = split_op_type(node.op_type)
        attrs = {a.name: decode_attr(a) for a in node.attribute}
        by_name = {init.name: init for init in graph.initializer}
        inits = {
            i: as_exact(numpy_helper.to_array(by_name[name]))
            for i, name in enumerate(node.input)
            if name in by_name
        }
        return cls(
            name=node.name,
            op_type=op_type,
            backend=backend,
            attrs=attrs,
            inputs=tuple(node.input),
            outputs=tuple(node.output),
            inits=inits,
        )

    @classmethod
    def make(
        cls,
        op_type: str,
        attrs: dict,
        inits: dict[int, np.ndarray] | None = None,
        name: str = "n",
        backend: str = "",
    ) -> NodeView:
        """Build a node without a graph (tests, cycle/stream queries); tensor names are synthesised."""
        base, suffix = split_op_type(op_type)
        backend = backend or suffix
        n_in, n_out = _n_io(base, attrs)
        inits = {int(k): as_exact(v) for k, v in (inits or {}).items()}
        if inits:
            n_in = max(n_in, max(inits) + 1)
        return cls(
            name=name,
            op_type=base,
            backend=backend,
            attrs=dict(attrs),
            inputs=tuple(f"{name}_in{i}" for i in range(n_in)),
            outputs=tuple(f"{name}_out{i}" for i in range(n_out)),
            inits=inits,
        )


# Results of FINN's code generation: they describe where a backend wrote its files, not the layer.
CODEGEN_ATTRS = (
    "code_gen_dir_ipgen",
    "code_gen_dir_cppsim",
    "executable_path",
    "ipgen_path",
    "ip_path",
    "ip_vlnv",
    "gen_top_module",
)
# ... and with the FIFO depths, what is not part of a graph's identity
_UNFINGERPRINTED = {"inFIFODepths", "outFIFODepths", *CODEGEN_ATTRS}


def graph_fingerprint(graph: onnx.GraphProto) -> str:
    """sha256 of a HW graph's nodes without its StreamingFIFOs: names, op types and attributes
    (not tensor names, not FIFO depths, not code-generation paths). A FIFO-sizing result is valid
    for exactly the graphs with its fingerprint, before or after FIFOs are inserted."""
    import hashlib

    h = hashlib.sha256()
    for n in sorted(graph.node, key=lambda n: n.name):
        if n.op_type.startswith("StreamingFIFO"):
            continue
        attrs = sorted((a.name, repr(decode_attr(a))) for a in n.attribute if a.name not in _UNFINGERPRINTED)
        h.update(repr((n.name, n.op_type, len(n.input), len(n.output), attrs)).encode())
    return h.hexdigest()
