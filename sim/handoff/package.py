"""Write the hand-off package of a build: `write_package(hw_dir)` -> hw_dir/rtl (ROM weights) or
hw_dir/rtl-ram (RAM weights with a load port), atomically and byte-identical across runs.

Inputs: model.hw.onnx and its edge vectors (written when missing, as hwcsp verify does), the hls
report's clock and schedule, and hwcsp verify's report of the same graph when there is one (its
measured interval and frame count become the package's promise). Yosys elaborates the top to
list its memories; the parameter memories it finds must be the planned ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from golden.fsutil import atomic_dir
from sim.handoff import hdl
from sim.handoff.design import LOAD_BITS, Design, Memory, PackageError, load_address, plan_design
from sim.handoff.inventory import MacroInstance, elaborate
from sim.handoff.readme import inventory_rows, readme
from sim.network import Progress
from sim.plan import plan_network
from sim.verify import REPORT_JSON, edge_vectors, first_frames, hls_clk_ns

DIRS = {"rom": "rtl", "ram": "rtl-ram"}


def _load_lines(d: Design, images: list[tuple[Memory, Path]]) -> list[str]:
    """tb/load.hex: every write of the load port, {wl_addr, wl_data} in hex, memory by memory."""
    ab = hdl.load_address_bits(d)
    digits = -(-(ab + LOAD_BITS) // 4)
    lines = []
    for m, image in images:
        words = [int(x, 16) for x in image.read_text().split()]
        if len(words) != m.words:
            raise PackageError(f"{image}: {len(words)} words, the RTL has {m.words}")
        for w, word in enumerate(words):
            for c in range(m.chunks):
                data = (word >> (LOAD_BITS * c)) & ((1 << LOAD_BITS) - 1)
                lines.append(f"{(load_address(d, m, w, c) << LOAD_BITS) | data:0{digits}x}")
    return lines


def _check_memories(d: Design, macros: list[MacroInstance]) -> None:
    """The weight and threshold memories Yosys finds are exactly the planned ones."""
    found = {(m.instance, m.holds): (m.words, m.bits) for m in macros if m.holds in ("weights", "thresholds")}
    planned = {(m.instance, m.holds): (m.words, m.bits) for m in d.memories}
    if found != planned:
        diff = sorted(set(found.items()) ^ set(planned.items()))[:4]
        raise PackageError(f"the elaborated parameter memories differ from the plan: {diff}")


def write_package(
    hw_dir: Path, weights: str = "rom", prefix: str | None = None, progress: Progress = print
) -> Path:
    """The package directory of `hw_dir` (module docstring). PackageError / GoldenError on a graph
    that cannot be stitched, a bad prefix or weights kind, or Yosys refusing the top."""
    hw_dir = Path(hw_dir)
    vec = edge_vectors(hw_dir, None, progress)
    net = plan_network(hw_dir, vec)
    rep_path = hw_dir / "report" / REPORT_JSON
    measured = json.loads(rep_path.read_text()) if rep_path.is_file() else None
    d = plan_design(net, weights, prefix, measured, first_frames(hw_dir), hls_clk_ns(hw_dir))
    by_node = {(p.tag, pname): path for p in net.nodes for pname, path in p.memories.items()}
    images = [(m, by_node[(m.instance, m.param)]) for m in d.memories]
    srcs = hdl.library_sources(d)
    d.sources = [*srcs, f"src/{d.top}.sv"]
    target = hw_dir / DIRS[weights]
    progress(f"rtl: writing {target} ({len(net.nodes)} nodes, {len(d.memories)} parameter memories, "
             f"{weights.upper()} weights, prefix {d.prefix})")  # fmt: skip
    with atomic_dir(target) as tmp:
        for rel, text in srcs.items():
            _write(tmp / rel, text)
        _write(tmp / f"src/{d.top}.sv", hdl.top_sv(net, d))
        _write(tmp / "filelist.f", hdl.filelist(d))
        _write(tmp / "constraints.sdc", hdl.sdc(d))
        if weights == "rom":
            (tmp / "mem").mkdir()
            for m, image in images:
                shutil.copyfile(image, tmp / m.init)
        (tmp / "tb").mkdir()
        for kind, streams in (("in", net.inputs), ("out", net.outputs)):
            for k, s in enumerate(streams):
                shutil.copyfile(s.hex, tmp / hdl.vector_file(kind, k))
        load = _load_lines(d, images) if weights == "ram" and d.memories else []
        if load:
            _write(tmp / "tb" / "load.hex", "\n".join(load) + "\n")
        cap = (d.frames + 10) * max(d.interval, d.bottleneck["cycles"]) * 2 + len(load) + 10_000
        _write(tmp / "tb" / f"{d.prefix}tb.sv", hdl.testbench_sv(d, cap, len(load)))
        _write(tmp / "tb" / "sim_main.cpp", hdl.sim_main_cpp(d))
        _write(tmp / "tb" / "run.sh", hdl.run_sh(d))
        (tmp / "tb" / "run.sh").chmod(0o755)
        io_spec = json.loads((vec / "io_spec.json").read_text())
        shutil.copyfile(vec / "io_spec.json", tmp / "io_spec.json")
        progress("rtl: elaborating the top with Yosys for the memory inventory ...")
        macros = elaborate(tmp, d)
        _check_memories(d, macros)
        rows = inventory_rows(d, macros)
        _write(tmp / "design.json", json.dumps(d.to_dict() | {"memory_inventory": rows}, indent=1) + "\n")
        _write(tmp / "README.md", readme(d, rows, io_spec))
    bits = sum(r["total_bits"] for r in rows)
    progress(f"rtl: {len(rows)} memories, {bits:,} bits; testbench: {target / 'tb' / 'run.sh'}")
    return target


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
