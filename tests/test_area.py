"""sim.area on a tiny hand-made package: grouping (memory images ignored), multiplication by the
instance count, the small-memory threshold, a failing group that does not stop the others."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from sim import area
from sim.layers import sources

PREFIX = "t_area_"
MODULES = ("fifo", "thresholding", "add")


def _package(root: Path) -> Path:
    """A package like `hwcsp rtl` writes, reduced to what sim.area reads: prefixed sources, a
    top with one register of its own, and a design.json."""
    pkg = root / "rtl"
    (pkg / "src").mkdir(parents=True)
    files = {f for m in MODULES for f in sources(m)}
    names = "|".join(sorted((f.stem for f in files), key=len, reverse=True))
    for f in sorted(files):
        text = re.sub(rf"\b({names})\b", rf"{PREFIX}\1", f.read_text())
        (pkg / "src" / f"{PREFIX}{f.stem}.sv").write_text(text)
    (pkg / "src" / f"{PREFIX}network.sv").write_text(
        f"module {PREFIX}network (input logic ap_clk, input logic a, output logic q);\n"
        "  always_ff @(posedge ap_clk) q <= a;\n"
        f"  {PREFIX}add #(.PE(1)) n9 (.ap_clk(ap_clk));\n"
        "endmodule\n"
    )
    thr = {"CHANNELS": 4, "PE": 1, "NUM_STEPS": 3, "I_BITS": 4, "T_BITS": 4, "O_BITS": 2}
    instances = [
        ("n000", "fifo", {"WIDTH": 4, "DEPTH": 32}),  # 128-bit RAM: flip-flops
        ("n001", "fifo", {"WIDTH": 8, "DEPTH": 1024}),  # 8192-bit RAM: a macro
        ("n002", "fifo", {"WIDTH": 4, "DEPTH": 32}),
        ("n003", "thresholding", {**thr, "THRESH_FILE": "mem/n003_thresholds.hex"}),
        ("n004", "thresholding", {**thr, "THRESH_FILE": "mem/n004_thresholds.hex"}),
        ("n005", "nosuch", {"WIDTH": 4}),
    ]
    design = {
        "prefix": PREFIX,
        "top": f"{PREFIX}network",
        "sources": [f"src/{p.name}" for p in sorted((pkg / "src").iterdir())],
        "instances": [
            {"name": n, "node": n, "op_type": f"{m}_op", "module": m, "params": p} for n, m, p in instances
        ],
        "clk_ns": 5.0,
        "memory_inventory": [],
    }
    (pkg / "design.json").write_text(json.dumps(design))
    return pkg


def test_network_area(tmp_path: Path) -> None:
    lines: list[str] = []
    r = area.network_area(_package(tmp_path), tmp_path / "work", jobs=2, progress=lines.append)
    json.dumps(r)  # serialisable
    by = {(g["module"], tuple(g["instances"])): g for g in r["groups"]}
    assert set(by) == {
        ("fifo", ("n000", "n002")),
        ("fifo", ("n001",)),
        ("nosuch", ("n005",)),
        ("thresholding", ("n003", "n004")),
        ("network", (f"{PREFIX}network",)),
    }
    small, big = by["fifo", ("n000", "n002")], by["fifo", ("n001",)]
    thr, bad = by["thresholding", ("n003", "n004")], by["nosuch", ("n005",)]
    top = by["network", (f"{PREFIX}network",)]
    assert (top["cells"], top["flops"], top["macros"]) == (1, 1, [])  # the library is a black box
    assert "THRESH_FILE" not in thr["params"]
    # below the threshold: counted as flip-flops, no macro
    assert small["macros"] == [] and small["small_memory_bits"] == 4 * 32
    assert small["flops"] > small["small_memory_bits"] and small["cells"] > 0
    assert big["macros"] == [{"kind": "ram", "words": 1024, "width": 8, "bits": 8192}]
    assert thr["small_memories"] == [{"kind": "rom", "words": 4, "width": 12, "bits": 48}]
    assert all(g["logic_depth"] > 0 for g in (small, big, thr))
    # a failing group is recorded and left out; the others still count
    assert bad["error"] and not r["complete"]
    assert [f["module"] for f in r["failed"]] == ["nosuch"]
    ok = (small, big, thr, top)
    t = r["totals"]
    assert t["instances"] == 6 and t["groups"] == 5
    assert t["cells"] == sum(g["cells"] * g["count"] for g in ok)
    assert t["flops"] == sum(g["flops"] * g["count"] for g in ok)
    assert t["small_memory_bits"] == 2 * 128 + 2 * 48
    assert (t["ram_bits"], t["rom_bits"]) == (8192, 0)
    assert r["by_module"]["fifo"]["instances"] == 3
    assert r["by_module"]["fifo"]["cells"] == 2 * small["cells"] + big["cells"]
    assert r["by_op_type"]["nosuch_op"]["failed"] == 1
    assert r["limiting"]["logic_depth"] == max(g["logic_depth"] for g in ok)
    assert len(r["timings"]["groups"]) == 5
    assert sum(line.startswith("[") for line in lines) == 5
    md = area.area_md({k: v for k, v in r.items() if k != "timings"})
    assert "generic-gate" in md and "Incomplete" in md and "as flip-flops" in md
    # the same package in another place, synthesised again: the same report
    other = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "rtl", other / "rtl")
    again = area.network_area(other / "rtl", tmp_path / "work2", jobs=1, progress=lambda _: None)

    def strip(x: dict) -> dict:  # the error messages name the work directory
        groups = [{k: v for k, v in g.items() if k != "error"} for g in x["groups"]]
        return {k: v for k, v in x.items() if k not in ("timings", "package", "failed")} | {"groups": groups}

    assert strip(again) == strip(r)


def test_cli_missing_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert area.main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such package" in err
    (tmp_path / "empty").mkdir()
    assert area.main([str(tmp_path / "empty")]) == 2
    assert "design.json" in capsys.readouterr().err
