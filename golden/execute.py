"""Execute a flat graph of FINN HW nodes (generic or specialised) with golden.ops, node by node.

The graph must be a dataflow partition's inside: every node a HW layer.  Anything else (a float
layer left in the partition, an op without golden semantics), a graph input of the wrong shape or
outside its annotated datatype, or a node output outside its declared datatype is a GoldenError
naming the node: FINN's python execution would silently carry on, hardware would wrap.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import onnx

from golden.datatypes import graph_dtype_names, parse_dtype
from golden.errors import GoldenError
from golden.node import NodeView
from golden.ops import OPS, run_node
from golden.streams import out_dtype

HW_DOMAIN = "finn.custom_op.fpgadataflow"


def _load(model: onnx.ModelProto | str | Path) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    return onnx.load(str(model))


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
    """Nodes in an order where every producer precedes its consumers (Kahn's algorithm)."""
    producer = {out: i for i, node in enumerate(graph.node) for out in node.output if out}
    deps = [{producer[t] for t in node.input if t in producer} for node in graph.node]
    users: list[list[int]] = [[] for _ in graph.node]
    for i, d in enumerate(deps):
        for j in d:
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


def _check_range(tensor: str, values: np.ndarray, dtype_name: str, where: str) -> None:
    dt = parse_dtype(dtype_name)
    ok = dt.allowed(values)
    if not bool(np.all(ok)):
        bad = values[~ok].ravel()
        raise GoldenError(
            f"{where}: tensor {tensor!r} holds {bad.size} value(s) outside {dt.name} "
            f"[{dt.min}, {dt.max}], e.g. {bad[:4].tolist()}"
        )


def _run_one(
    model: onnx.ModelProto, feed: dict[str, np.ndarray], check_ranges: bool
) -> dict[str, np.ndarray]:
    graph = model.graph
    dtypes = graph_dtype_names(graph)
    declared = {vi.name: _declared_shape(vi) for vi in [*graph.value_info, *graph.output]}
    context: dict[str, np.ndarray] = dict(feed)
    for node in topo_order(graph):
        view = NodeView.from_onnx(node, graph)
        args = [None if i in view.inits else context.get(name) for i, name in enumerate(view.inputs)]
        for i, (name, a) in enumerate(zip(view.inputs, args, strict=True)):
            if a is None and i not in view.inits:
                raise GoldenError(f"node {view.name}: input {name!r} is neither computed nor fed")
        outs = run_node(view, args)
        for i, (name, value) in enumerate(zip(view.outputs, outs, strict=True)):
            if check_ranges:
                where = f"node {view.name} ({node.op_type}) output"
                _check_range(name, value, out_dtype(view, i).name, where)
                if name in dtypes and dtypes[name] != out_dtype(view, i).name:
                    _check_range(name, value, dtypes[name], where)
            shape = declared.get(name)
            if shape is not None and int(np.prod(shape)) == value.size:
                value = value.reshape(shape)  # FINN keeps the graph's shape for the tensor
            context[name] = value
    return context


def execute(
    model: onnx.ModelProto | str | Path,
    inputs: dict[str, np.ndarray],
    return_all: bool = False,
    *,
    check_ranges: bool = True,
) -> dict[str, np.ndarray]:
    """Run the HW graph on integer `inputs`; returns the graph outputs (every tensor if return_all).

    An input whose leading (batch) dimension is N times the declared one is run as N frames and the
    results are concatenated along axis 0, so one call produces N golden vectors.
    """
    model = _load(model)
    graph = model.graph
    for node in graph.node:
        check_hw_node(node)
    dtypes = graph_dtype_names(graph)
    inits = {i.name for i in graph.initializer}
    frames = None
    feeds: dict[str, np.ndarray] = {}
    for vi in graph.input:
        if vi.name in inits:
            continue
        if vi.name not in inputs:
            raise GoldenError(f"graph input {vi.name!r} was not given")
        x = np.asarray(inputs[vi.name])
        if x.dtype.kind == "f":
            if not np.all(np.isfinite(x)) or not np.all(np.round(x) == x):
                raise GoldenError(f"graph input {vi.name!r} holds non-integer values")
        x = x.astype(np.int64)
        shape = _declared_shape(vi)
        if shape is not None:
            n = _frames(x.shape, shape)
            if n == 0:
                raise GoldenError(f"graph input {vi.name!r} has shape {list(x.shape)}, expected {shape}")
            if frames not in (None, n):
                raise GoldenError("graph inputs disagree on the number of frames")
            frames = n
        if vi.name in dtypes:
            _check_range(vi.name, x, dtypes[vi.name], "graph input")
        feeds[vi.name] = x
    unknown = set(inputs) - set(feeds)
    if unknown:
        raise GoldenError(f"unknown graph inputs {sorted(unknown)}")
    frames = frames or 1
    per_frame = []
    for f in range(frames):
        feed = {k: np.split(v, frames, axis=0)[f] for k, v in feeds.items()}
        per_frame.append(_run_one(model, feed, check_ranges))
    names = list(per_frame[0]) if return_all else [o.name for o in graph.output]
    return {k: np.concatenate([ctx[k] for ctx in per_frame], axis=0) for k in names}
