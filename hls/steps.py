"""FINN steps of the flow, each a small function over a qonnx ModelWrapper.

Everything here runs without Xilinx tools: conversion to HW layers, partitioning, bit-width
minimisation, specialisation, width converters and FIFOs, and HLS/RTL code generation.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.general import GiveUniqueNodeNames
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from golden.node import CODEGEN_ATTRS, HW_DOMAIN
from hls.constants import FPGA_PART
from hls.lower import LoweringError

# Implementation style per op: HLS where FINN has it (MVAU with thresholds has no RTL variant);
# finn-plus has only RTL sliding windows, padding and FIFOs.
PREFERRED_STYLE = {
    "MVAU": "hls",
    "Thresholding": "hls",
    "Pool": "hls",
    "StreamingConcat": "hls",
    "StreamingSplit": "hls",
    "DuplicateStreams": "hls",
    "ElementwiseAdd": "hls",
    "ElementwiseMax": "hls",
    "ElementwiseMul": "hls",
    "UpsampleNearestNeighbour": "hls",
    "GlobalAccPool": "hls",
    "ConvolutionInputGenerator": "rtl",
    "FMPadding": "rtl",
    "StreamingDataWidthConverter": "hls",
    "StreamingFIFO": "rtl",
}


def seed_names() -> None:
    """qonnx/FINN name new tensors with python's global ``random``: seed it for determinism."""
    random.seed(0)


@contextmanager
def names_kept() -> Iterator[None]:
    """A side computation (FINN's SetFolding sweep for the report) that leaves the name generator
    where it was: the graph's tensor names do not depend on whether it ran."""
    state = random.getstate()
    try:
        yield
    finally:
        random.setstate(state)


def tidy(model: ModelWrapper) -> ModelWrapper:
    model = model.transform(GiveUniqueNodeNames())
    model = model.transform(InferShapes())
    return model.transform(InferDataTypes())


def convert_to_hw(model: ModelWrapper) -> ModelWrapper:
    """FINN's HW-layer inference on the lowered integer graph; every node must convert."""
    from finn.transformation.fpgadataflow.convert_to_hw.concat import InferConcatLayer
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.duplicate_streams import InferDuplicateStreamsLayer
    from finn.transformation.fpgadataflow.convert_to_hw.elementwise_binary_operation import (
        InferElementwiseBinaryOperation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.fm_padding import InferFMPadding
    from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool
    from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import (
        InferQuantizedMatrixVectorActivation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.split import InferSplitLayer
    from finn.transformation.fpgadataflow.convert_to_hw.thresholding import InferThresholdingLayer
    from finn.transformation.fpgadataflow.convert_to_hw.upsample import InferUpsample

    model = model.transform(InferShapes())
    for t in (
        InferQuantizedMatrixVectorActivation(),
        InferThresholdingLayer(),
        InferFMPadding(),
        InferPool(),
        InferConvInpGen(),
        InferConcatLayer(),
        InferSplitLayer(),
        InferElementwiseBinaryOperation(),
        InferUpsample(),
        InferDuplicateStreamsLayer(),
    ):
        model = (
            _infer_elementwise(model)
            if isinstance(t, InferElementwiseBinaryOperation)
            else model.transform(t)
        )
    model = tidy(model)
    left = [f"{n.name} ({n.op_type})" for n in model.graph.node if not n.domain.startswith(HW_DOMAIN)]
    if left:
        raise LoweringError(
            "layers left outside the HW partition (a float or unsupported layer inside the network): "
            + ", ".join(left[:8])
        )
    return model


def partition(model: ModelWrapper, work: Path) -> ModelWrapper:
    from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition

    parent = model.transform(CreateDataflowPartition(partition_model_dir=str(work / "partitions")))
    sdps = parent.get_nodes_by_op_type("StreamingDataflowPartition")
    if len(sdps) != 1 or len(parent.graph.node) != 1:
        raise LoweringError(
            f"expected one dataflow partition holding every node, got {len(parent.graph.node)} nodes"
        )
    return ModelWrapper(getCustomOp(sdps[0]).get_nodeattr("model"))


def minimize_bit_widths(model: ModelWrapper) -> ModelWrapper:
    from finn.transformation.fpgadataflow.minimize_weight_bit_width import MinimizeWeightBitWidth

    model = model.transform(MinimizeWeightBitWidth())
    return tidy(minimize_accumulator_width(model))


def minimize_accumulator_width(model: ModelWrapper) -> ModelWrapper:
    """FINN's MinimizeAccumulatorWidth, node by node in graph order, but re-inferring datatypes
    only after a node whose output datatype changed (an MVAU without thresholds): FINN re-infers
    after every node, quadratic in the graph (55 s of a 2-minute flow on PeleeNet), and a node
    whose output type stays the same changes nothing downstream, so the result is the same."""
    for i in range(len(model.graph.node)):
        node = model.graph.node[i]
        if node.domain != HW_DOMAIN:
            continue
        inst = getCustomOp(node)
        if hasattr(inst, "minimize_accumulator_width"):
            before = [model.get_tensor_datatype(o) for o in node.output]
            inst.minimize_accumulator_width(model, datatype_only=False)
            inst.infer_node_datatype(model)
            if [model.get_tensor_datatype(o) for o in node.output] != before:
                _reinfer_downstream(model, i, set(node.output))
    return model


def _reinfer_downstream(model: ModelWrapper, start: int, changed: set[str]) -> None:
    """InferDataTypes restricted to what a datatype change reaches, in place: the nodes after
    ``start`` (graph order is topological) that read a changed tensor, whose outputs join the
    changed set when their own type changes. Every other node's inference is already settled, so
    this equals a whole-graph pass without its deep copy and its call on every node: byte-identical
    outputs (test configuration, CSPResNeXt-50 @64 x0.125), this step 6.3 s -> 1.0 s on the latter."""
    from qonnx.transformation.infer_datatypes import _infer_node_datatype

    for node in list(model.graph.node)[start + 1 :]:
        if changed.intersection(node.input):
            before = [model.get_tensor_datatype(o) for o in node.output]
            _infer_node_datatype(model, node, False)
            if [model.get_tensor_datatype(o) for o in node.output] != before:
                changed.update(node.output)


class _NoInference(Transformation):
    def apply(self, model):
        return model, False


class _InPlace(ModelWrapper):
    """A wrapper on which a ``_NoInference`` transformation is free: ``ModelWrapper.transform``
    deep-copies the model and sorts the graph (quadratic) even for a transformation that does
    nothing."""

    def transform(self, transformation, *args, **kwargs):
        if isinstance(transformation, _NoInference):
            return self
        return super().transform(transformation, *args, **kwargs)


def _infer_elementwise(model: ModelWrapper) -> ModelWrapper:
    """FINN's InferElementwiseBinaryOperation, with the whole-graph shape and datatype inference
    (each through a deep copy and a quadratic graph sort) it runs after every converted node run
    once at the end (CSPResNeXt-50 at full width: not done after 30 CPU-minutes before, 22 min now
    for the whole preparation). The same graph results when no
    converted node reads another's output (the lowering puts a quantizer after every add) and
    every node was built with the input datatypes the final inference finds; otherwise FINN's own
    per-node route runs instead."""
    from finn.transformation.fpgadataflow.convert_to_hw import elementwise_binary_operation as ebo

    before = model.model.SerializeToString()
    saved = ebo.InferShapes, ebo.InferDataTypes
    ebo.InferShapes = ebo.InferDataTypes = _NoInference
    try:
        work, changed = _InPlace(model.model), True
        while changed:
            work, changed = ebo.InferElementwiseBinaryOperation().apply(work)
    finally:
        ebo.InferShapes, ebo.InferDataTypes = saved
    fast = ModelWrapper(work.model).transform(InferShapes()).transform(InferDataTypes())
    ops = [n for n in fast.graph.node if n.op_type.startswith("Elementwise")]
    outs = {n.output[0] for n in ops}
    built_as_inferred = all(
        getCustomOp(n).get_nodeattr(attr) == str(fast.get_tensor_datatype(t))
        for n in ops
        for attr, t in (("lhs_dtype", n.input[0]), ("rhs_dtype", n.input[1]))
    )
    if built_as_inferred and not any(i in outs for n in ops for i in n.input):
        return fast
    return ModelWrapper(onnx.load_from_string(before)).transform(ebo.InferElementwiseBinaryOperation())


def specialize(model: ModelWrapper) -> ModelWrapper:
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    for n in model.graph.node:
        if n.domain == HW_DOMAIN:
            style = PREFERRED_STYLE.get(n.op_type)
            if style is None:
                raise LoweringError(f"{n.name}: no implementation style chosen for {n.op_type}")
            getCustomOp(n).set_nodeattr("preferred_impl_style", style)
    model = model.transform(SpecializeLayers(FPGA_PART))
    return tidy(model)


def insert_dwc(model: ModelWrapper) -> ModelWrapper:
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC

    model = model.transform(InsertDWC())
    return specialize(model)


def insert_fifos(model: ModelWrapper, depths: dict[tuple[str, int], int]) -> ModelWrapper:
    """FIFOs of the given depth (beats) on (join node, input index); none elsewhere."""
    from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO

    names = {n.name: n for n in model.graph.node}
    for (node, idx), depth in depths.items():
        inst = getCustomOp(names[node])
        d = list(inst.get_nodeattr("inFIFODepths")) or [2]
        d = d + [2] * (len(names[node].input) - len(d))
        d[idx] = max(int(depth), d[idx])
        inst.set_nodeattr("inFIFODepths", d)
    by_output = {n.output[0]: n.name for n in model.graph.node}
    model = specialize(model.transform(InsertFIFO(create_shallow_fifos=False)))
    # specialize renames every node in graph order, and InsertFIFO reorders the graph: keep the
    # other nodes' names, so that a (consumer, input) named before the FIFOs names the same input
    # after them (the depths of sim.fifo_sizing, the report's FIFO table)
    for n in model.graph.node:
        if not n.op_type.startswith("StreamingFIFO"):
            n.name = by_output[n.output[0]]
    return model


class Despecialize(Transformation):
    """The generic twin of a specialised graph: op-type suffixes and backend attributes dropped
    (attributes the generic op does not know, and the code-generation results ``CODEGEN_ATTRS``).

    finn-plus folds and inserts width converters on *specialised* graphs (its generic
    ConvolutionInputGenerator lacks ``use_parallel_window_output``, so InsertDWC fails on a
    generic graph). The generic graph FINN can execute in python is therefore derived here.
    """

    def apply(self, model):
        from finn.custom_op.fpgadataflow import custom_op as generic_ops

        for i, n in enumerate(list(model.graph.node)):
            if not n.domain.startswith(HW_DOMAIN + "."):
                continue
            base = n.op_type.rsplit("_", 1)[0]
            cls = generic_ops.get(base)
            if cls is None:
                raise LoweringError(f"{n.name}: no generic FINN op for {n.op_type}")
            tmp = helper.make_node(base, list(n.input), list(n.output), domain=HW_DOMAIN)
            keep = set(cls(tmp).get_nodeattr_types()) - set(CODEGEN_ATTRS)
            new = helper.make_node(base, list(n.input), list(n.output), name=n.name, domain=HW_DOMAIN)
            new.attribute.extend(a for a in n.attribute if a.name in keep)
            model.graph.node.remove(n)
            model.graph.node.insert(i, new)
        return model, False


def node_shapes(model: ModelWrapper) -> dict[str, tuple[int, ...]]:
    out = {}
    for n in model.graph.node:
        for t in list(n.input) + list(n.output):
            s = model.get_tensor_shape(t)
            if s is not None and model.get_initializer(t) is None:
                out[t] = tuple(int(x) for x in s)
    return out


def beats_per_pixel(model: ModelWrapper):
    def f(node, ind: int) -> int:
        inst = getCustomOp(node)
        folded = inst.get_folded_input_shape(ind)
        return int(np.prod(folded[:-1])) // int(np.prod(inst.get_normal_input_shape(ind)[:-1]))

    return f
