"""The package structure the design promises, read from the source with ``ast``.

Stages depend forward only (DESIGN.md): golden is the bottom floor (stdlib, numpy, onnx), sim
builds on golden alone, the zoo imports no later stage, and the command line is a roof that no
module imports. Function-level imports count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hwcsp", "quant", "hls", "golden", "sim", "benchmarks")
CLI = "hwcsp.cli"
# What each stage may import from the project (its own package is always allowed).
ALLOWED = {
    "golden": set(),
    "sim": {"golden"},
    "hwcsp": {"golden.errors", "golden.fsutil"},
    "quant": {"hwcsp", "golden"},
    "hls": {"golden", "hwcsp.buildcfg", "hwcsp.errors"},
    "benchmarks": {"hwcsp", "quant", "hls", "golden", "sim"},
}
THIRD_PARTY = {"golden": {"numpy", "onnx"}, "sim": None}  # None: anything but FORBIDDEN_IN_SIM
FORBIDDEN_IN_SIM = {"torch", "brevitas", "qonnx", "finn", "hwcsp", "quant", "hls"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(f): f for pkg in PACKAGES for f in sorted((ROOT / pkg).rglob("*.py"))}


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import statement, at any depth."""
    out: list[tuple[str, list[str]]] = []
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [a.name for a in node.names]
            # ``from pkg import module`` is an import of pkg.module
            subs = [n for n in names if f"{mod}.{n}" in MODULES]
            if subs:
                out.extend((f"{mod}.{n}", []) for n in subs)
            rest = [n for n in names if n not in subs]
            if rest or not subs:
                out.append((mod, rest))
    return out


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _project(mod: str) -> bool:
    return mod.split(".")[0] in PACKAGES


def _under(mod: str, prefixes: set[str]) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in prefixes)


def test_walks_every_stage():
    for pkg in PACKAGES:
        assert any(m.split(".")[0] == pkg for m in MODULES), pkg
    assert CLI in MODULES


def _cycle(pkg: str) -> list[str] | None:
    graph = {
        m: sorted({t for t, _ in IMPORTS[m] if t in MODULES and t.split(".")[0] == pkg and t != m})
        for m in MODULES
        if m.split(".")[0] == pkg
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in graph[m]:
            if t == pkg:  # the package's own __init__: implied by every import of a submodule
                continue
            if state.get(t) == 1:
                return [*stack[stack.index(t) :], t]
            if t not in state and (found := visit(t)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in graph:
        if m not in state and (found := visit(m)):
            return found
    return None


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_import_loop_inside_a_package(pkg):
    loop = _cycle(pkg)
    assert loop is None, "import loop: " + " -> ".join(loop)


def test_the_loop_finder_finds_loops(monkeypatch):
    """The check above can fail: a planted loop is reported."""
    monkeypatch.setitem(IMPORTS, "golden.errors", [("golden.node", [])])
    assert _cycle("golden") is not None


def test_nothing_imports_the_command_line():
    bad = [m for m, imps in IMPORTS.items() if m != CLI and any(_under(t, {CLI}) for t, _ in imps)]
    assert not bad, f"modules importing the CLI: {bad}"


@pytest.mark.parametrize("pkg", sorted(ALLOWED))
def test_stages_depend_forward_only(pkg):
    allowed = ALLOWED[pkg] | {pkg}
    bad = []
    for m, imps in IMPORTS.items():
        if m.split(".")[0] != pkg or m == CLI:
            continue
        bad.extend(f"{m} imports {t}" for t, _ in imps if _project(t) and not _under(t, allowed))
    assert not bad, "\n".join(bad)


def test_golden_imports_only_numpy_onnx_and_the_stdlib():
    allowed = set(sys.stdlib_module_names) | THIRD_PARTY["golden"] | {"golden"}
    bad = [
        f"{m} imports {t}"
        for m, imps in IMPORTS.items()
        if m.split(".")[0] == "golden"
        for t, _ in imps
        if t.split(".")[0] not in allowed
    ]
    assert not bad, "\n".join(bad)


def test_sim_imports_no_torch_brevitas_qonnx_or_finn():
    bad = [
        f"{m} imports {t}"
        for m, imps in IMPORTS.items()
        if m.split(".")[0] == "sim"
        for t, _ in imps
        if t.split(".")[0] in FORBIDDEN_IN_SIM
    ]
    assert not bad, "\n".join(bad)


def test_no_private_name_is_imported_across_packages():
    tests = {_module_name(f): _imports(_module_name(f), f) for f in sorted((ROOT / "tests").rglob("*.py"))}
    bad = [
        f"{m} imports {t}.{n}"
        for m, imps in {**IMPORTS, **tests}.items()
        for t, names in imps
        if _project(t) and t.split(".")[0] != m.split(".")[0]
        for n in names
        if n.startswith("_")
    ]
    assert not bad, "\n".join(bad)


def test_only_sim_tb_imports_the_cocotb_harness():
    bad = [
        f"{m} imports {t}"
        for m, imps in IMPORTS.items()
        if not m.startswith("sim.tb")
        for t, _ in imps
        if _under(t, {"sim.tb"})
    ]
    assert not bad, "\n".join(bad)
