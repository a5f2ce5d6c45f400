"""The RTL layer records (sim/layers.py) are complete: every layer type has its .sv file, its
cocotb test file, its parameter binding and its cycle model in golden.cycles -- the checklist
"Adding an RTL layer type" of sim/README.md, enforced. No simulator runs here."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from golden import cycles
from sim.layers import BLOCKS, BY_OP_TYPE, LAYERS, MEMORIES, MODULES, RtlLayer, rtl_file, sources

ROOT = Path(__file__).resolve().parents[1]


def _checked_modules(test_file: Path) -> set[str]:
    """The modules a test file runs through the harness (first argument of its check_* calls)."""
    found = set()
    for node in ast.walk(ast.parse(test_file.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id.startswith("check_")
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


@pytest.mark.parametrize("module", list(LAYERS))
def test_layer_record_is_complete(module: str) -> None:
    layer = LAYERS[module]
    assert isinstance(layer, RtlLayer) and layer.module == module
    # its SystemVerilog file, declaring the module, and the files of everything it instantiates
    assert layer.file.is_file(), layer.file
    assert re.search(rf"^module\s+{module}\b", layer.file.read_text(), re.M), (
        f"{layer.file} lacks module {module}"
    )
    for dep in layer.deps:
        assert dep in BLOCKS, f"{module}: dependency {dep} is no building block"
        assert rtl_file(dep).is_file(), rtl_file(dep)
    assert sources(module)[0] == layer.file
    # its test file, which runs this module through the harness
    test_file = ROOT / layer.test_file
    assert test_file.is_file(), f"{module}: no {layer.test_file}"
    assert module in _checked_modules(test_file), f"{layer.test_file} never checks module {module!r}"
    # its binding: parameters, latency, memory images, first output beat, refusals -- all callables
    for name in ("params", "latency", "files", "first_out", "unsupported"):
        assert callable(getattr(layer, name)), f"{module}: {name}"
    assert layer.op_types and all(BY_OP_TYPE[op] is layer for op in layer.op_types)
    n_in, n_out = layer.ports
    assert 1 <= n_in <= 4 and 1 <= n_out <= 4
    # its cycle model is a function of golden.cycles, the one golden.cycles.rtl_cycles uses for it
    assert inspect.getmodule(layer.cycles) is cycles, f"{module}: cycle model not from golden.cycles"
    assert getattr(cycles, layer.cycles.__name__) is layer.cycles
    for op in layer.op_types:
        assert cycles.RTL_CYCLES.get(op, cycles.output_beats_cycles) is layer.cycles, (module, op)


def test_modules_and_tests_are_all_accounted_for() -> None:
    """Every .sv file is a record or a building block; every test_rtl_*.py checks a known module."""
    on_disk = {p.stem for p in (ROOT / "sim" / "rtl").glob("*.sv")}
    assert on_disk == set(MODULES), (
        f"not registered: {on_disk - set(MODULES)}; missing: {set(MODULES) - on_disk}"
    )
    assert not set(BLOCKS) & set(LAYERS)
    for module in MEMORIES:
        assert module in BLOCKS and (ROOT / "sim" / "tb" / f"{module}_tests.py").is_file()
    tested = set()
    for test_file in (ROOT / "tests").glob("test_rtl_*.py"):
        if test_file.name == Path(__file__).name:
            continue
        checked = _checked_modules(test_file)
        assert checked and checked <= set(MODULES), f"{test_file.name}: {checked}"
        tested |= checked
    assert tested >= set(LAYERS) | set(MEMORIES)
    # no cocotb shim per module any more: one stream test module serves every layer
    assert not list((ROOT / "sim" / "tb").glob("tb_*.py"))
