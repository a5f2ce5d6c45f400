"""`hwcsp rtl` (sim.handoff): the hand-off package of the test configuration.

The packages (ROM and RAM weights) are written through the CLI on a private copy of the shared
test build, then treated as a team outside the repository would: copied to a directory of their
own, their testbench built and run with nothing but Verilator and a C++ compiler on PATH (no
Python, no repository) -- it must pass, and must fail when an expected beat is wrong or the
network is held to a tighter interval than it reaches. The top must be clean under
`verilator --lint-only -Wall` and `iverilog -g2012 -Wall`; Yosys elaborates it while the package
is written (`hierarchy -check`; its memory inventory is checked here against the plan's FIFO
depths and the memory images); a second run gives the same bytes; bad input exits 2 with one line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from golden.cycles import swg_ring_depth
from golden.node import NodeView
from sim.handoff.design import PackageError
from sim.toolchain import VERILATOR_BIN

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["cspdensenetb-ref-prn", "--size", "64", "--width", "0.25", "--seeded"]
DIRS = {"rom": "rtl", "ram": "rtl-ram"}
LINE = r"(\d+) of (\d+) beats, (\d+) mismatching, (\d+) extra, (\d+) AXI .* intervals (\d+) cycles"


def _rtl(build_root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "hwcsp.cli", "rtl", *ARGS, "--build-root", str(build_root), *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def packages(hw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The shared build copied to a private root; `hwcsp rtl` with ROM weights (twice) and RAM."""
    root = tmp_path_factory.mktemp("handoff") / "build"
    shutil.copytree(hw_dir.parent, root / hw_dir.parent.name, ignore=shutil.ignore_patterns("sim", "rtl*"))
    v = root / hw_dir.parent.name / hw_dir.name
    runs = {"rom": _rtl(root), "ram": _rtl(root, "--weights", "ram")}
    for r in runs.values():
        assert r.returncode == 0, r.stdout + r.stderr
    first = _tree(v / "rtl")
    again = _rtl(root)
    return {"root": root, "variant": v, "runs": runs, "first": first, "again": again}


def _design(packages: dict, kind: str) -> dict:
    return json.loads((packages["variant"] / DIRS[kind] / "design.json").read_text())


def test_package_is_byte_identical_across_runs(packages: dict) -> None:
    assert packages["again"].returncode == 0, packages["again"].stderr
    second = _tree(packages["variant"] / "rtl")
    assert sorted(second) == sorted(packages["first"])
    assert [k for k in second if second[k] != packages["first"][k]] == []


@pytest.mark.parametrize("kind", ["rom", "ram"])
def test_layout_prefix_and_interface(packages: dict, kind: str) -> None:
    pkg = packages["variant"] / DIRS[kind]
    d = _design(packages, kind)
    prefix, top = d["prefix"], d["top"]
    for f in ("README.md", "filelist.f", "constraints.sdc", "io_spec.json", "tb/run.sh", "tb/sim_main.cpp"):
        assert (pkg / f).is_file(), f
    assert os.access(pkg / "tb" / "run.sh", os.X_OK)
    listed = (pkg / "filelist.f").read_text().split()
    assert listed == d["sources"] and listed[-1] == f"src/{top}.sv"
    assert sorted(str(p.relative_to(pkg)) for p in (pkg / "src").glob("*.sv")) == sorted(listed)
    declared = []
    for f in listed:
        names = re.findall(r"^\s*module\s+(\w+)", (pkg / f).read_text(), flags=re.M)
        assert names == [Path(f).stem], f  # one module per file, named after it
        declared += names
    assert all(n.startswith(prefix) for n in declared)
    top_text = (pkg / listed[-1]).read_text()
    instantiated = set(re.findall(r"^\s*(\w+)\s*#\s*\(", top_text, flags=re.M))
    assert instantiated and instantiated <= set(declared)
    # FINN stitched-IP port names; nothing for simulation only in the top.
    ports = re.findall(r"^\s*(?:input|output)\s+logic\s+(?:\[[^\]]+\]\s*)?(\w+)", top_text, flags=re.M)
    streams = ["s_axis_0", "m_axis_0", "m_axis_1"]
    expected = ["ap_clk", "ap_rst_n", *(f"{s}_{x}" for s in streams for x in ("tdata", "tvalid", "tready"))]
    expected += ["wl_valid", "wl_addr", "wl_data"] if kind == "ram" else []
    assert ports == expected
    assert not re.search(r"\$\w+|\binitial\b|#\s*\d", top_text)
    if kind == "ram":  # contents come only through the load port: a passing testbench proves it
        assert not (pkg / "mem").exists()
        assert not re.search(r'(WEIGHT|THRESH)_FILE\("[^"]', top_text)
    else:
        assert len(list((pkg / "mem").glob("*.hex"))) == len(d["memories"]) > 0
    sdc = (pkg / "constraints.sdc").read_text()
    assert f"-period {d['clk_ns']:g} [get_ports ap_clk]" in sdc


@pytest.mark.parametrize("kind", ["rom", "ram"])
def test_top_is_lint_clean_in_verilator_and_icarus(packages: dict, kind: str) -> None:
    pkg = packages["variant"] / DIRS[kind]
    d = _design(packages, kind)
    lint = [str(VERILATOR_BIN / "verilator"), "--lint-only", "-Wall", "--top-module", d["top"]]
    v = subprocess.run([*lint, "-f", "filelist.f"], cwd=pkg, capture_output=True, text=True)
    assert v.returncode == 0 and "%Warning" not in v.stderr + v.stdout, v.stderr[-3000:]
    i = subprocess.run(
        ["iverilog", "-g2012", "-Wall", "-s", d["top"], "-o", os.devnull, *d["sources"]],
        cwd=pkg, capture_output=True, text=True,
    )  # fmt: skip
    assert i.returncode == 0 and not (i.stdout + i.stderr).strip(), (i.stdout + i.stderr)[-3000:]


def test_memory_inventory_is_the_elaborated_rtl(packages: dict) -> None:
    """Yosys' memories against facts the package did not take from Yosys: one per memory image
    (words = lines of the image, bits = its hex width), one RAM per FIFO deeper than 16 at its
    depth and width, and the README's total."""
    pkg = packages["variant"] / "rtl"
    d = _design(packages, "rom")
    inv = d["memory_inventory"]
    by_path = {m["path"]: m for m in inv}
    for m in d["memories"]:
        lines = (pkg / m["init"]).read_text().split()
        (row,) = [r for r in inv if r["init"] == m["init"]]
        assert (row["words"], row["kind"], row["holds"]) == (len(lines), "rom", m["holds"])
        assert m["bits"] - 4 < 4 * len(lines[0]) and row["bits"] == m["bits"]
    fifos = [i for i in d["instances"] if i["module"] == "fifo" and i["params"]["DEPTH"] > 16]
    assert fifos
    for f in fifos:
        row = by_path[f"{f['name']}.g_ram.u_ram"]
        assert (row["words"], row["bits"], row["holds"]) == (f["params"]["DEPTH"], f["params"]["WIDTH"],
                                                              "stream FIFO storage")  # fmt: skip
    # each windowed sliding-window generator's ring at golden.cycles.swg_ring_depth of its node
    graph = onnx.load(packages["variant"] / "model.hw.onnx").graph
    views = {n.name: NodeView.from_onnx(n, graph) for n in graph.node}
    rings = [r for r in inv if r["holds"] == "sliding-window ring buffer"]
    assert rings
    for r in rings:
        (inst,) = [i for i in d["instances"] if r["path"].startswith(i["name"] + ".")]
        assert (inst["module"], r["words"]) == ("swg", swg_ring_depth(views[inst["node"]])), r
    total = sum(r["total_bits"] for r in inv)
    readme = (pkg / "README.md").read_text()
    assert f"| **all** | **{len(inv)}** | **{total:,}** |".replace(",", " ") in readme


def _standalone(pkg: Path, dest: Path) -> subprocess.CompletedProcess:
    """The package copied outside the repository, its script run with Verilator, a C++ toolchain
    and the shell's tools on PATH, and nothing else."""
    shutil.copytree(pkg, dest)
    env = {"PATH": f"{VERILATOR_BIN}:/usr/bin:/bin", "HOME": str(dest), "LANG": "C"}
    return subprocess.run([str(dest / "tb" / "run.sh")], cwd=dest, env=env, capture_output=True, text=True,
                          timeout=900)  # fmt: skip


@pytest.mark.parametrize("kind", ["rom", "ram"])
def test_standalone_testbench_passes_and_can_fail(packages: dict, kind: str, tmp_path: Path) -> None:
    d = _design(packages, kind)
    dest = tmp_path / "pkg"
    r = _standalone(packages["variant"] / DIRS[kind], dest)
    assert r.returncode == 0, r.stdout + r.stderr + (dest / "tb" / "build.log").read_text()[-3000:]
    lines = r.stdout.splitlines()
    assert lines[-1].endswith("tb: PASS")
    outs = [ln for ln in lines if re.search(r"m_axis_\d+: ", ln)]
    assert len(outs) == 2
    reached = 0
    for ln in outs:
        m = re.search(LINE, ln)
        assert m, ln
        got, want, bad, extra, axi, worst = map(int, m.groups())
        assert (got, bad, extra, axi) == (want, 0, 0, 0) and want > 0
        assert worst <= 1.05 * d["interval"]
        reached = max(reached, worst)
    exe = dest / "tb" / "obj_dir" / f"V{d['prefix']}tb"
    # Random stalls on every port: still every beat, no AXI violation; the interval is not judged.
    stalled = subprocess.run([str(exe), "+stall=50"], cwd=dest, capture_output=True, text=True)
    assert stalled.returncode == 0 and stalled.stdout.splitlines()[-1].endswith("tb: PASS"), stalled.stdout
    assert stalled.stdout.count(", 0 mismatching, 0 extra, 0 AXI violations;") == 2
    assert "random stalls at 50%: intervals not judged" in stalled.stdout
    # Held to 90 % of the interval it reaches, the same run fails.
    tight = subprocess.run(
        [str(exe), f"+interval={int(reached * 0.9)}"], cwd=dest, capture_output=True, text=True
    )
    assert tight.returncode == 1 and tight.stdout.splitlines()[-1].endswith("tb: FAIL")
    # One wrong expected beat (in every repetition of frame 0) is found.
    out0 = dest / "tb" / "out0.hex"
    beats = out0.read_text().splitlines()
    beats[3] = f"{int(beats[3], 16) ^ 1:0{len(beats[3])}x}"
    out0.write_text("\n".join(beats) + "\n")
    wrong = subprocess.run([str(exe)], cwd=dest, capture_output=True, text=True)
    assert wrong.returncode == 1
    frames0 = -(-d["frames"] // d["vector_frames"])
    assert f", {frames0} mismatching," in wrong.stdout and "first mismatching beat 3" in wrong.stdout


def test_bad_prefix_exits_2_with_one_line(packages: dict) -> None:
    r = _rtl(packages["root"], "--prefix", "9bad")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "module prefix '9bad'" in r.stderr


def test_yosys_refusal_is_a_package_error(packages: dict, tmp_path: Path) -> None:
    from sim.handoff.inventory import elaborate

    pkg = tmp_path / "pkg"
    shutil.copytree(packages["variant"] / "rtl", pkg)
    d = _design(packages, "rom")
    top = pkg / f"src/{d['top']}.sv"
    top.write_text(top.read_text().replace(f"{d['prefix']}mvau #(", f"{d['prefix']}no_such_module #(", 1))

    class _D:  # the fields elaborate() reads
        prefix, top, modules, sources = d["prefix"], d["top"], d["modules"], d["sources"]

    with pytest.raises(PackageError, match="Yosys does not elaborate"):
        elaborate(pkg, _D())  # type: ignore[arg-type]


@pytest.mark.slow
def test_main_job_package_passes_and_is_sized(tmp_path: Path) -> None:
    """The main job (cspdensenet-ref-prn at 320, default variant) from scratch: hls, the package,
    its testbench at the stated interval (the bottleneck's cycle model: no verify has run), then
    `hwcsp area` of it -- every group synthesised, the macro and small-memory bits adding up to
    the package's memory inventory, a limiting module named."""
    root = tmp_path / "build"
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def cli(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "hwcsp.cli", *args, "cspdensenet-ref-prn", "--build-root", str(root)]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=5400)

    r = cli("rtl", "--run-tb")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "tb: PASS" in r.stdout and ", 0 mismatching, 0 extra" in r.stdout
    a = cli("area")
    assert a.returncode == 0, a.stdout[-3000:] + a.stderr[-3000:]
    (variant,) = root.glob("cspdensenet-ref-prn-s320-*/hls-*")
    result = json.loads((variant / "report" / "area.json").read_text())
    t = result["totals"]
    assert result["complete"] and t["cells"] > 0 and t["flops"] > 0
    inventory = json.loads((variant / "rtl" / "design.json").read_text())["memory_inventory"]
    assert t["rom_bits"] + t["ram_bits"] + t["small_memory_bits"] == sum(m["total_bits"] for m in inventory)
    assert result["limiting"]["logic_depth"] > 0
