"""Execute a flat graph of FINN HW nodes (generic or specialised) with golden.ops, node by node.

The graph must be a dataflow partition's inside: every node a HW layer.  Anything else (a float
layer left in the partition, an op without golden semantics), a file that is not an ONNX model, a
graph input of the wrong shape or outside its annotated datatype, an MVAU whose accumulator range
exceeds its accDataType, or a node output outside its declared datatype is a GoldenError naming
the culprit: FINN's python execution would silently carry on, hardware would wrap.

`Program` decodes the graph once (nodes, constants, float weights, threshold tables) so that
repeated frames cost only the arithmetic; `execute` is the one-call form.  Between nodes tensors
travel in the narrowest NumPy integer type that holds them; what `execute` returns is int64.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from golden.accum import check_accumulators, mvau_acc_range
from golden.blas import blas_threads
from golden.datatypes import DType, graph_dtype_names, parse_dtype, storage_dtype
from golden.errors import GoldenError
from golden.node import HW_DOMAIN, NodeView, load_model
from golden.ops import OPS, run_node
from golden.streams import out_dtype


def _declared_shape(vi: onnx.ValueInfoProto) -> list[int] | None:
    dims = vi.type.tensor_type.shape.dim
    if not dims or any(not d.HasField("dim_value") for d in dims):
        return None
    return [int(d.dim_value) for d in dims]


def _frames(got: tuple[int, ...], want: list[int]) -> int:
    """How many frames of shape `want` an input of shape `got` holds along axis 0 (0: not a match)."""
    if len(got) != len(want) or list(got[1:]) != want[1:] or want[0] < 1 or got[0] % want[0]:
        return 0
    return got[0] // want[0]


def topo_order(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Nodes in an order where every producer precedes its consumers (Kahn's algorithm, stable)."""
    producer = {out: i for i, node in enumerate(graph.node) for out in node.output if out}
    deps = [{producer[t] for t in node.input if t in producer} for node in graph.node]
    users: list[list[int]] = [[] for _ in graph.node]
    for i, d in enumerate(deps):
        for j in sorted(d):
            users[j].append(i)
    pending = [len(d) for d in deps]
    ready = deque(i for i, n in enumerate(pending) if n == 0)
    order = []
    while ready:
        i = ready.popleft()
        order.append(graph.node[i])
        for u in users[i]:
            pending[u] -= 1
            if pending[u] == 0:
                ready.append(u)
    if len(order) != len(graph.node):
        raise GoldenError("graph has a cycle")
    return order


def check_hw_node(node: onnx.NodeProto) -> None:
    """Only FINN HW layers with golden semantics may appear inside the partition."""
    view_op = NodeView.from_onnx(node, onnx.GraphProto()).op_type
    if not node.domain.startswith(HW_DOMAIN):
        raise GoldenError(
            f"node {node.name or '?'} ({node.op_type}, domain {node.domain or 'ai.onnx'}): "
            "float layer inside the partition -- only FINN HW layers can be executed bit-exactly"
        )
    if view_op not in OPS:
        raise GoldenError(f"node {node.name or '?'}: HW op type {node.op_type!r} has no golden semantics")


def check_values(tensor: str, values: np.ndarray, dt: DType, where: str) -> None:
    """GoldenError unless every value is representable in `dt` (min/max passes; exact for integers)."""
    v = np.asarray(values)
    if v.size == 0:
        return
    if v.dtype.kind not in "iub":
        ok = dt.allowed(v)
        bad = None if bool(np.all(ok)) else v[~ok].ravel()
    else:
        lo, hi = int(v.min()), int(v.max())
        bad = None
        if lo < dt.min or hi > dt.max or (dt.bipolar and bool(np.any(v == 0))):
            bad = v[~dt.allowed(v)].ravel()
    if bad is not None:
        raise GoldenError(
            f"{where}: tensor {tensor!r} holds {bad.size} value(s) outside {dt.name} "
            f"[{dt.min}, {dt.max}], e.g. {bad[:4].tolist()}"
        )


@dataclass(frozen=True)
class Step:
    """One node, decoded: its view, where its streamed inputs come from, what its outputs must hold."""

    view: NodeView
    args: tuple[str | None, ...]  # tensor name per node input, None for initializers
    checks: tuple[tuple[DType, ...], ...]  # per output: datatypes the values must fit
    shapes: tuple[list[int] | None, ...]  # per output: the graph's declared shape


class Program:
    """A HW graph prepared for repeated execution: decoded once, run per frame."""

    def __init__(self, model: onnx.ModelProto | str | Path, *, check_ranges: bool = True) -> None:
        self.model = load_model(model)
        self.check_ranges = check_ranges
        graph = self.model.graph
        for node in graph.node:
            check_hw_node(node)
        self.dtypes = graph_dtype_names(graph)
        declared = {vi.name: _declared_shape(vi) for vi in [*graph.value_info, *graph.output]}
        inits = {i.name for i in graph.initializer}
        self.inputs = [vi for vi in graph.input if vi.name not in inits]
        self.outputs = [o.name for o in graph.output]
        steps = []
        for node in topo_order(graph):
            view = NodeView.from_onnx(node, graph)
            checks = []
            for i, name in enumerate(view.outputs):
                dts = [out_dtype(view, i)]
                if name in self.dtypes and self.dtypes[name] != dts[0].name:
                    dts.append(parse_dtype(self.dtypes[name]))
                checks.append(tuple(dts))
            args = tuple(None if i in view.inits else name for i, name in enumerate(view.inputs))
            shapes = tuple(declared.get(name) for name in view.outputs)
            steps.append(Step(view, args, tuple(checks), shapes))
        self.steps = steps
        self.accumulators = [mvau_acc_range(s.view) for s in steps if s.view.op_type == "MVAU"]
        if check_ranges:
            check_accumulators(self.accumulators)

    @property
    def nodes(self) -> list[NodeView]:
        """The nodes in execution (topological) order."""
        return [s.view for s in self.steps]

    def _feeds(self, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
        """Validated integer graph inputs and the number of frames they hold."""
        frames = None
        feeds: dict[str, np.ndarray] = {}
        for vi in self.inputs:
            if vi.name not in inputs:
                raise GoldenError(f"graph input {vi.name!r} was not given")
            x = np.asarray(inputs[vi.name])
            if x.dtype.kind == "f":
                if not np.all(np.isfinite(x)) or not np.all(np.round(x) == x):
                    raise GoldenError(f"graph input {vi.name!r} holds non-integer values")
                x = x.astype(np.int64)
            elif x.dtype.kind not in "iu" or x.dtype == np.uint64:
                x = x.astype(np.int64)
            shape = _declared_shape(vi)
            if shape is not None:
                n = _frames(x.shape, shape)
                if n == 0:
                    raise GoldenError(f"graph input {vi.name!r} has shape {list(x.shape)}, expected {shape}")
                if frames not in (None, n):
                    raise GoldenError("graph inputs disagree on the number of frames")
                frames = n
            if vi.name in self.dtypes:
                dt = parse_dtype(self.dtypes[vi.name])
                check_values(vi.name, x, dt, "graph input")
                x = x.astype(storage_dtype(dt.min, dt.max), copy=False)
            feeds[vi.name] = x
        unknown = set(inputs) - set(feeds)
        if unknown:
            raise GoldenError(f"unknown graph inputs {sorted(unknown)}")
        return feeds, frames or 1

    def run_frame(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every tensor of one frame (compact integer dtypes, graph shapes); `feed` is validated input."""
        with blas_threads():
            return self._run_steps(feed)

    def _run_steps(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        context: dict[str, np.ndarray] = dict(feed)
        for step in self.steps:
            view = step.view
            args = []
            for name in step.args:
                if name is None:
                    args.append(None)
                elif name in context:
                    args.append(context[name])
                else:
                    raise GoldenError(f"node {view.name}: input {name!r} is neither computed nor fed")
            outs = run_node(view, args, narrow=True)
            for name, value, dts, shape in zip(view.outputs, outs, step.checks, step.shapes, strict=True):
                if self.check_ranges:
                    where = f"node {view.name} ({view.full_op_type}) output"
                    for dt in dts:
                        check_values(name, value, dt, where)
                if shape is not None and int(np.prod(shape)) == value.size:
                    value = value.reshape(shape)  # FINN keeps the graph's shape for the tensor
                context[name] = value
        return context

    def frames(self, inputs: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        """Every tensor of each frame in turn (compact dtypes): N frames without holding N contexts."""
        feeds, n = self._feeds(inputs)
        for f in range(n):
            yield self.run_frame({k: np.split(v, n, axis=0)[f] for k, v in feeds.items()})

    def run(self, inputs: dict[str, np.ndarray], return_all: bool = False) -> dict[str, np.ndarray]:
        """Graph outputs (every tensor if return_all) as int64, frames concatenated on axis 0."""
        per_frame = []
        for ctx in self.frames(inputs):
            keep = ctx if return_all else {k: ctx[k] for k in self.outputs}
            per_frame.append(keep)
        names = list(per_frame[0])
        return {k: np.concatenate([c[k] for c in per_frame], axis=0).astype(np.int64) for k in names}


def execute(
    model: onnx.ModelProto | str | Path | Program,
    inputs: dict[str, np.ndarray],
    return_all: bool = False,
    *,
    check_ranges: bool = True,
) -> dict[str, np.ndarray]:
    """Run the HW graph on integer `inputs`; returns the graph outputs (every tensor if return_all).

    An input whose leading (batch) dimension is N times the declared one is run as N frames and the
    results are concatenated along axis 0, so one call produces N golden vectors.  Pass a `Program`
    to reuse its decoded graph across calls.
    """
    if isinstance(model, Program):
        prog = model
    elif isinstance(model, onnx.ModelProto):
        prog = Program(model, check_ranges=check_ranges)
    else:
        prog = _cached_program(Path(model), check_ranges)
    return prog.run(inputs, return_all)


_PROGRAMS: dict[tuple, Program] = {}


def _cached_program(path: Path, check_ranges: bool) -> Program:
    """Callers that execute the same file batch after batch decode it once (keyed on path, size, mtime)."""
    try:
        st = path.stat()
    except OSError:
        return Program(path, check_ranges=check_ranges)  # raises the GoldenError for a missing file
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, check_ranges)
    if key not in _PROGRAMS:
        if len(_PROGRAMS) >= 4:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
        _PROGRAMS[key] = Program(path, check_ranges=check_ranges)
    return _PROGRAMS[key]
