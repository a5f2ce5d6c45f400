"""A session fixture that boots FINN outside its CLI, plus single-node model builders.

FINN is only the reference here: tests build the same ONNX node for FINN and for golden, run both
and compare.  FINN needs global settings before its custom ops are imported; they are pointed into
a pytest temporary directory so nothing is written to the work tree.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

HW = "finn.custom_op.fpgadataflow"


@dataclass(frozen=True)
class Finn:
    """The FINN/QONNX entry points the tests use, imported once settings exist."""

    ModelWrapper: Any
    DataType: Any
    execute_onnx: Any
    getCustomOp: Any
    qonnx_make_model: Any
    data_packing: Any


def _boot_finn(tmp: str) -> Finn:
    os.environ["FINN_BUILD_DIR"] = os.path.join(tmp, "finn_build")
    os.environ["FINN_SETTINGS"] = os.path.join(tmp, "finn_settings.yaml")
    os.makedirs(os.environ["FINN_BUILD_DIR"], exist_ok=True)
    try:
        importlib.import_module("finn.xsi")
    except Exception:  # no Vivado/XSI here: FINN only needs the module to exist for python execution
        sys.modules["finn.xsi"] = types.ModuleType("finn.xsi")
    settings = importlib.import_module("finn.util.settings")
    settings.initialize_dummy_settings()
    import finn.custom_op.fpgadataflow
    import finn.custom_op.fpgadataflow.hls
    import finn.custom_op.fpgadataflow.rtl  # noqa: F401
    import finn.util.data_packing as data_packing
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import qonnx_make_model

    return Finn(ModelWrapper, DataType, execute_onnx, getCustomOp, qonnx_make_model, data_packing)


@pytest.fixture(scope="session")
def finn(tmp_path_factory: pytest.TempPathFactory) -> Finn:
    """FINN booted with dummy settings in a session temporary directory."""
    return _boot_finn(str(tmp_path_factory.mktemp("finn")))


@dataclass(frozen=True)
class Port:
    """One node input/output: a graph tensor (shape) or, for inputs, an initializer (value)."""

    name: str
    dtype: str
    shape: tuple[int, ...] | None = None
    value: np.ndarray | None = None


def single_node_model(
    finn: Finn,
    op_type: str,
    attrs: dict[str, Any],
    inputs: list[Port],
    outputs: list[Port],
    domain: str = HW,
) -> Any:
    """A ModelWrapper holding one FINN node; initializer ports become initializers with datatypes."""
    node = helper.make_node(
        op_type,
        [p.name for p in inputs],
        [p.name for p in outputs],
        domain=domain,
        backend="fpgadataflow",
        name="n0",
        **attrs,
    )
    g_in = [
        helper.make_tensor_value_info(p.name, TensorProto.FLOAT, list(p.shape))
        for p in inputs
        if p.value is None
    ]
    g_out = [helper.make_tensor_value_info(p.name, TensorProto.FLOAT, list(p.shape)) for p in outputs]
    graph = helper.make_graph([node], "single", g_in, g_out)
    model = finn.ModelWrapper(finn.qonnx_make_model(graph, producer_name="golden-tests"))
    for p in inputs:
        if p.value is not None:
            model.set_initializer(p.name, np.asarray(p.value, dtype=np.float32))
        model.set_tensor_datatype(p.name, finn.DataType[p.dtype])
    for p in outputs:
        model.set_tensor_datatype(p.name, finn.DataType[p.dtype])
    return model


def run_finn(finn: Finn, model: Any, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """FINN's python execution of the model on float32 copies of integer inputs."""
    return finn.execute_onnx(model, {k: np.asarray(v, dtype=np.float32) for k, v in feed.items()})


def hw_node(
    op_type: str, attrs: dict[str, Any], n_in: int = 1, n_out: int = 1, domain: str = HW
) -> onnx.NodeProto:
    """A bare node (no graph) for querying FINN custom-op methods (cycles, folding, widths)."""
    return helper.make_node(
        op_type,
        [f"i{i}" for i in range(n_in)],
        [f"o{i}" for i in range(n_out)],
        domain=domain,
        backend="fpgadataflow",
        name="n0",
        **attrs,
    )


def random_values(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform random integers over the whole range of a FINN datatype name."""
    from golden.datatypes import parse_dtype

    dt = parse_dtype(dtype)
    if dt.bipolar:
        return rng.choice(np.array([-1, 1], dtype=np.int64), size=shape)
    return rng.integers(dt.min, dt.max + 1, size=shape, dtype=np.int64)


def random_thresholds(rng: np.random.Generator, lo: int, hi: int, rows: int, steps: int) -> np.ndarray:
    """Ascending threshold rows drawn from [lo, hi] (duplicates allowed, as FINN allows)."""
    return np.sort(rng.integers(lo, hi + 1, size=(rows, steps), dtype=np.int64), axis=1)


def mismatches(golden: np.ndarray, reference: np.ndarray) -> int:
    """Number of differing elements; the reference must hold integers and the same element count."""
    ref = np.asarray(reference)
    assert np.all(np.round(ref) == ref), "reference output is not integral"
    gold = np.asarray(golden)
    assert gold.size == ref.size, f"golden has {gold.size} elements, reference {ref.size}"
    return int(np.count_nonzero(gold.reshape(ref.shape) != ref.astype(np.int64)))


def seed_of(case: object) -> int:
    """A stable RNG seed for a test case (python's hash() of strings changes per process)."""
    import zlib

    return zlib.crc32(repr(case).encode())
