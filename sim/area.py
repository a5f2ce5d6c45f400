"""Network-level area estimate of a hand-off package: `python -m sim.area <package> [--jobs N]`.

Yosys generic synthesis (`synth -flatten`, Yosys' internal gate library -- not a technology
library, so cells are gate counts, not um^2) of every distinct (module, parameter set) among the
package's instances, multiplied by how many instances share it, plus the top's own logic (the
weight loader of a RAM-weight package) with the library modules as black boxes. The package's own
prefixed sources are synthesised, so the estimate is of exactly the RTL that is handed off.

Memories (`rom`, `ram_1r1w`) are read with `read_verilog -lib`: black boxes, as an ASIC flow maps
them to SRAM/ROM macros, counted in bits by kind rather than turned into logic. Their contents
(the *_FILE parameters) therefore cannot change the logic, so instances that differ only in
their memory images share one synthesis run. A memory below `SMALL_MEMORY_BITS` is not worth a
macro and is counted as flip-flops instead.

The deepest combinational path (`ltp -noff`, in gate levels, with the memory macros cut out as
the register boundaries they are) is a technology-independent proxy for which module limits
the clock.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golden.errors import GoldenError

# Below this many bits a memory is counted as flip-flops, not a macro: an SRAM/ROM macro's fixed
# periphery (decoders, sense amplifiers, test logic) outweighs its bit cells for memories of a
# few kilobits, so flows build those as flip-flop or latch arrays. (Only the storage bits are
# added; the read multiplexer a flip-flop array needs is not counted.)
SMALL_MEMORY_BITS = 4096

MACROS = {"rom": "rom", "ram_1r1w": "ram"}  # library module -> kind in the report
FLOP = re.compile(r"DFF|LATCH|\$_SR_", re.IGNORECASE)


class AreaError(GoldenError):
    """A package that cannot be estimated at all (missing, malformed, no Yosys)."""


@dataclass
class Group:
    """One synthesis run: a module at one parameter set, standing for `count` instances."""

    index: int
    module: str
    params: dict[str, Any]  # the HDL parameters less the memory image paths
    instances: list[str]
    op_types: list[str]  # the op type of each instance, same order
    top_source: str = ""  # set for the network top: its file, read with the library as black boxes
    cells: int = 0  # generic gate cells incl. flip-flops, excl. the memory macros
    flops: int = 0  # flip-flop cells plus the bits of small memories
    small_memory_bits: int = 0
    logic_depth: int = 0  # gates on the longest combinational path
    depth_path: list[str] = field(default_factory=list)  # [start, end] signal of that path
    macros: list[dict[str, Any]] = field(default_factory=list)  # {kind, words, width, bits}
    small_memories: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    @property
    def count(self) -> int:
        return len(self.instances)


def _literal(v: Any) -> str:
    """A parameter value as chparam reads it (a Verilog constant or a quoted string)."""
    if isinstance(v, bool):
        return "1'b1" if v else "1'b0"
    if isinstance(v, int):
        return str(v)
    return '"' + str(v) + '"'


def _is_image(name: str, value: Any) -> bool:
    return isinstance(value, str) and name.endswith("_FILE")


def load_design(pkg: Path) -> dict[str, Any]:
    """design.json of a package, with the fields the estimate needs checked."""
    if not pkg.is_dir():
        raise AreaError(f"{pkg}: no such package directory")
    path = pkg / "design.json"
    if not path.is_file():
        raise AreaError(f"{path}: missing (is {pkg} a package written by `hwcsp rtl`?)")
    try:
        design = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise AreaError(f"{path}: not JSON ({e})") from None
    missing = [k for k in ("prefix", "top", "sources", "instances") if k not in design]
    if missing:
        raise AreaError(f"{path}: lacks {', '.join(missing)}")
    return design


def group_instances(design: dict[str, Any]) -> list[Group]:
    """Instances grouped by (module, parameters less *_FILE), ordered by module, then by first
    instance, so the indices (and work directories) are stable for a package."""
    groups: dict[tuple[str, str], Group] = {}
    for inst in design["instances"]:
        params = {k: v for k, v in inst["params"].items() if not _is_image(k, v)}
        key = (inst["module"], json.dumps(params, sort_keys=True))
        g = groups.get(key)
        if g is None:
            g = groups[key] = Group(0, inst["module"], params, [], [])
        g.instances.append(inst["name"])
        g.op_types.append(inst.get("op_type", inst["module"]))
    ordered = sorted(groups.values(), key=lambda g: (g.module, g.instances[0]))
    for i, g in enumerate(ordered):
        g.index = i
    return ordered


def _cost(g: Group) -> int:
    """Rough synthesis effort, to start the slow runs first (the MVAUs' multiplier arrays)."""
    p = g.params
    if g.top_source:
        return 500_000
    if g.module == "mvau":
        return 1_000_000 + p.get("SIMD", 1) * p.get("PE", 1) * p.get("W_BITS", 1) * p.get("I_BITS", 1)
    return 0


def yosys_version() -> str:
    try:
        p = subprocess.run(["yosys", "-V"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise AreaError(f"yosys not runnable: {e}") from None
    return p.stdout.strip()


def _script(g: Group, prefix: str, sources: list[str], work: Path) -> str:
    """The Yosys script of one group, run in the package directory: the sources are read by their
    package-relative names, which Yosys builds into internal names, and ABC's result depends on
    those -- with absolute paths the cell counts would change with where the package lies."""
    top = prefix + g.module
    macros = " ".join(f"t:{prefix}{m}" for m in MACROS)
    lines = []
    for s in sources:
        lib = bool(g.top_source) or Path(s).stem in {prefix + m for m in MACROS}
        lines.append(f"read_verilog -sv {'-lib ' if lib else ''}{s}")
    if g.top_source:
        lines.append(f"read_verilog -sv {g.top_source}")
    if g.params:
        sets = " ".join(f"-set {k} {_literal(v)}" for k, v in g.params.items())
        lines.append(f"chparam {sets} {top}")
    lines += [
        f"hierarchy -check -top {top}",
        f"synth -flatten -top {top}",
        f"tee -q -o {work / 'stat.txt'} stat",
        f"tee -q -o {work / 'macros.il'} dump {macros}",
        # The macros' read ports are registered: cut them out so no path runs through one (in the
        # top, cut out every library instance: their paths are their groups').
        f"delete t:{prefix}*" if g.top_source else f"delete {macros}",
        f"tee -q -o {work / 'ltp.txt'} ltp -noff",
    ]
    return "\n".join(lines) + "\n"


def parse_stat(text: str, top: str) -> dict[str, int]:
    """Cell type -> count of the top module's `stat` section."""
    section = text.split(f"=== {top} ===", 1)[-1].split("===", 1)[0]
    return {t: int(n) for t, n in re.findall(r"^\s+(\S+)\s+(\d+)\s*$", section, flags=re.M)}


def parse_macros(text: str, prefix: str) -> list[tuple[str, int, int]]:
    """(kind, words, width) of each memory cell in an RTLIL dump (`parameter [signed] \\DEPTH 272`)."""
    out = []
    for typ, body in re.findall(r"^\s*cell \\?(\S+) \S+\n(.*?)^\s*end\b", text, flags=re.M | re.S):
        kind = MACROS.get(typ.removeprefix(prefix)) if typ.startswith(prefix) else None
        if kind is None:
            continue
        p = dict(re.findall(r"^\s*parameter (?:signed )?\\(\w+) (\S+)", body, flags=re.M))
        out.append((kind, _rtlil_int(p.get("DEPTH", "16")), _rtlil_int(p.get("WIDTH", "8"))))
    return out


def _rtlil_int(v: str) -> int:
    """An RTLIL constant: decimal, or sized binary like 32'00000000000000000000000100010000."""
    return int(v.split("'", 1)[1], 2) if "'" in v else int(v)


def _parse_ltp(text: str) -> tuple[int, list[str]]:
    """Length and [start, end] signal of `ltp`'s path (names without the RTLIL backslash)."""
    m = re.search(r"\(length=(\d+)\)", text)
    nodes = re.findall(r"^\s+\d+: (.*?)(?: \(via .*\))?$", text, flags=re.M)
    length = int(m.group(1)) if m else 0
    return length, [n.removeprefix("\\") for n in nodes[:1] + nodes[-1:]] if length else []


def synth_group(g: Group, pkg: Path, prefix: str, sources: list[str], work: Path, small_bits: int) -> Group:
    """Synthesise one group of package `pkg` in `work` and fill in its numbers (or its error)."""
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    for f in ("stat.txt", "macros.il", "ltp.txt"):
        (work / f).unlink(missing_ok=True)
    script = work / "synth.ys"
    script.write_text(_script(g, prefix, sources, work))
    p = subprocess.run(
        ["yosys", "-q", "-l", str(work / "yosys.log"), "-s", str(script)],
        cwd=pkg,
        capture_output=True,
        text=True,
    )
    if p.returncode != 0:
        msgs = [ln.strip() for ln in (p.stderr + p.stdout).splitlines() if "ERROR" in ln]
        g.error = (msgs or [f"yosys exited {p.returncode}"])[0] + f" (see {work / 'yosys.log'})"
        return g
    top = prefix + g.module
    by_type = parse_stat((work / "stat.txt").read_text(), top)
    logic = {t: n for t, n in by_type.items() if not t.startswith(prefix)}  # black boxes are not logic
    g.cells = sum(logic.values())
    g.flops = sum(n for t, n in logic.items() if FLOP.search(t))
    for kind, words, width in sorted(parse_macros((work / "macros.il").read_text(), prefix)):
        mem = {"kind": kind, "words": words, "width": width, "bits": words * width}
        if mem["bits"] < small_bits:
            g.small_memories.append(mem)
            g.small_memory_bits += mem["bits"]
        else:
            g.macros.append(mem)
    g.flops += g.small_memory_bits
    g.logic_depth, g.depth_path = _parse_ltp((work / "ltp.txt").read_text())
    return g


def _totals(groups: list[Group], key: Callable[[Group, int], str]) -> dict[str, dict[str, Any]]:
    """Per-instance sums of the groups' numbers, keyed by key(group, instance position)."""
    out: dict[str, dict[str, Any]] = {}
    for g in groups:
        for i in range(g.count):
            t = out.setdefault(
                key(g, i),
                {"instances": 0, "cells": 0, "flops": 0, "small_memory_bits": 0, "rom_bits": 0,
                 "ram_bits": 0, "logic_depth": 0, "failed": 0},
            )  # fmt: skip
            t["instances"] += 1
            if g.error:
                t["failed"] += 1
                continue
            t["cells"] += g.cells
            t["flops"] += g.flops
            t["small_memory_bits"] += g.small_memory_bits
            for m in g.macros:
                t[f"{m['kind']}_bits"] += m["bits"]
            t["logic_depth"] = max(t["logic_depth"], g.logic_depth)
    return dict(sorted(out.items()))


def network_area(
    pkg: Path,
    work: Path,
    jobs: int = 2,
    progress: Callable[[str], Any] = print,
    small_bits: int = SMALL_MEMORY_BITS,
) -> dict:
    """Area estimate of the package `pkg`, one Yosys run per group in `work`/<index>_<module>.

    Groups that fail are recorded with their error and left out of the totals; `complete` says
    whether every group synthesised. Wall-clock times are only under "timings"."""
    pkg, work = Path(pkg), Path(work)
    design = load_design(pkg)
    prefix, top = design["prefix"], design["top"]
    sources = [s for s in design["sources"] if Path(s).stem != top]
    absent = [s for s in sources if not (pkg / s).is_file()]
    if absent:
        raise AreaError(f"{pkg}: sources missing: {', '.join(absent)}")
    version = yosys_version()
    groups = group_instances(design)
    top_files = [s for s in design["sources"] if Path(s).stem == top]
    if top_files and top.startswith(prefix):
        # The top's own logic (stream wiring, the weight loader of a RAM-weight package), once.
        name = top.removeprefix(prefix)
        groups.append(Group(len(groups), name, {}, [top], ["(top)"], top_source=top_files[0]))
    work.mkdir(parents=True, exist_ok=True)
    n = len(groups)
    progress(f"area: {len(design['instances'])} instances in {n} groups, {jobs} Yosys job(s), work {work}")
    seconds: dict[int, float] = {}

    def run(g: Group) -> Group:
        t0 = time.monotonic()
        try:
            synth_group(g, pkg, prefix, sources, work / f"{g.index:03d}_{g.module}", small_bits)
        except Exception as e:  # a parse or file error is this group's failure, not the run's
            g.error = f"{type(e).__name__}: {e}"
        seconds[g.index] = time.monotonic() - t0
        return g

    t_all = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run, g) for g in sorted(groups, key=lambda g: (-_cost(g), g.index))]
        for done, fut in enumerate(as_completed(futures), 1):
            g = fut.result()
            what = f"error: {g.error}" if g.error else f"{g.cells} cells, depth {g.logic_depth}"
            progress(f"[{done}/{n}] group {g.index} {g.module} x{g.count}: {what} ({seconds[g.index]:.1f} s)")
    wall = time.monotonic() - t_all

    ok = [g for g in groups if not g.error]
    failed = [g for g in groups if g.error]
    by_module = _totals(groups, lambda g, i: g.module)
    by_op_type = _totals(groups, lambda g, i: g.op_types[i])
    net = _totals(groups, lambda g, i: "network").get("network", {})
    limiting = max(ok, key=lambda g: (g.logic_depth, -g.index), default=None)
    inventory: dict[str, int] = {"rom": 0, "ram": 0}
    for m in design.get("memory_inventory", []):
        inventory["rom" if m["kind"].startswith("rom") else "ram"] += m["total_bits"]
    return {
        "package": str(pkg),
        "top": top,
        "prefix": prefix,
        "model": design.get("model", ""),
        "clk_ns": design.get("clk_ns"),
        "yosys": version,
        "small_bits": small_bits,
        "complete": not failed,
        "failed": [{"group": g.index, "module": g.module, "error": g.error} for g in failed],
        "totals": {
            "instances": len(design["instances"]),
            "groups": n,
            "cells": net.get("cells", 0),
            "flops": net.get("flops", 0),
            "small_memory_bits": net.get("small_memory_bits", 0),
            "rom_bits": net.get("rom_bits", 0),
            "ram_bits": net.get("ram_bits", 0),
            "rom_macros": sum(g.count for g in ok for m in g.macros if m["kind"] == "rom"),
            "ram_macros": sum(g.count for g in ok for m in g.macros if m["kind"] == "ram"),
            "small_memories": sum(g.count * len(g.small_memories) for g in ok),
        },
        "inventory_bits": inventory,
        "limiting": None
        if limiting is None
        else {
            "group": limiting.index,
            "module": limiting.module,
            "logic_depth": limiting.logic_depth,
            "depth_path": limiting.depth_path,
            "instances": limiting.instances,
            "params": limiting.params,
        },
        "by_module": by_module,
        "by_op_type": by_op_type,
        "groups": [
            {
                "index": g.index,
                "module": g.module,
                "params": g.params,
                "instances": g.instances,
                "count": g.count,
                "cells": g.cells,
                "flops": g.flops,
                "logic_depth": g.logic_depth,
                "depth_path": g.depth_path,
                "macros": g.macros,
                "small_memories": g.small_memories,
                "small_memory_bits": g.small_memory_bits,
                "error": g.error,
            }
            for g in groups
        ],
        "timings": {
            "wall_s": round(wall, 2),
            "jobs": jobs,
            "groups": [
                {"group": g.index, "module": g.module, "seconds": round(seconds[g.index], 2)} for g in groups
            ],
        },
    }


def _n(v: int) -> str:
    return f"{v:,}".replace(",", " ")


def _params(p: dict[str, Any]) -> str:
    return ", ".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in p.items())


def _instances(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit})" if len(names) > limit else "")


def area_md(result: dict) -> str:
    """The estimate as a markdown report (no wall-clock times: they live in the timings file)."""
    t = result["totals"]
    small = _n(result["small_bits"])
    out = [
        f"# Area estimate -- {result['model'] or result['top']}",
        "",
        f"Yosys generic-gate estimate ({result['yosys']}): `synth -flatten` into Yosys' internal gate "
        "library, **not a technology library** -- cells are generic gates (AND, XOR, MUX, DFF ...), "
        "to compare designs and modules, not square micrometres. Each distinct (module, parameters) "
        "is synthesised once and counted once per instance. Memories are black-box macros (`rom`, "
        f"`ram_1r1w`) counted in bits; those under {small} bits are counted as flip-flops "
        "(storage bits only, not their read multiplexers). Logic depth: gates on the longest "
        "combinational path (`ltp -noff`, memories cut out as registers), a proxy for the clock. "
        f"Module `{result['top'].removeprefix(result['prefix'])}` (op type `(top)`) is the top's own "
        "logic -- stream wiring, the weight loader of a RAM-weight package -- with the library "
        "modules as black boxes.",
        "",
    ]
    if not result["complete"]:
        fails = ", ".join(f"group {f['group']} ({f['module']})" for f in result["failed"])
        out += [
            f"**Incomplete: {len(result['failed'])} group(s) failed ({fails}); the totals leave them out.**",
            "",
        ]
    out += [
        "## Totals",
        "",
        "| | Yosys generic-gate estimate |",
        "| --- | ---: |",
        f"| instances / synthesised groups | {_n(t['instances'])} / {_n(t['groups'])} |",
        f"| cells (generic gates incl. the logic's flip-flops; memories excluded) | {_n(t['cells'])} |",
        f"| flip-flops: the logic's {_n(t['flops'] - t['small_memory_bits'])} + {_n(t['small_memory_bits'])} "
        f"bits of {t['small_memories']} small memories | {_n(t['flops'])} |",
        f"| ROM macro bits ({t['rom_macros']} macros) | {_n(t['rom_bits'])} |",
        f"| RAM macro bits ({t['ram_macros']} macros) | {_n(t['ram_bits'])} |",
        "",
    ]
    inv = result["inventory_bits"]
    got = t["rom_bits"] + t["ram_bits"] + t["small_memory_bits"]
    want = inv["rom"] + inv["ram"]
    if want:
        verdict = "matches" if got == want else f"**differs from** ({_n(got)} here)"
        out += [f"Memory bits, macros and small memories together: the package's memory inventory "
                f"({_n(want)} bits) {verdict}.", ""]  # fmt: skip
    lim = result["limiting"]
    if lim:
        clk = f" (the package assumes a {result['clk_ns']} ns clock)" if result.get("clk_ns") else ""
        path = f", from `{lim['depth_path'][0]}` to `{lim['depth_path'][1]}`" if lim["depth_path"] else ""
        out += [
            f"Limiting module: **{lim['module']}** (group {lim['group']}, {_instances(lim['instances'])}) "
            f"has the deepest combinational path, {lim['logic_depth']} generic gate levels{path}; "
            f"it sets the clock{clk}.",
            "",
        ]
    for title, key in (("module", "by_module"), ("op type", "by_op_type")):
        out += [
            f"## Per {title} (Yosys generic-gate estimate)",
            "",
            f"| {title} | instances | cells | flip-flops | small-memory bits | ROM bits | RAM bits "
            "| max depth |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, r in result[key].items():
            failed = f" ({r['failed']} failed)" if r["failed"] else ""
            out.append(
                f"| {name} | {r['instances']}{failed} | {_n(r['cells'])} | {_n(r['flops'])} | "
                f"{_n(r['small_memory_bits'])} | {_n(r['rom_bits'])} | {_n(r['ram_bits'])} | "
                f"{r['logic_depth']} |"
            )
        out.append("")
    out += [
        "## Per group (Yosys generic-gate estimate, per instance)",
        "",
        "Cells and flip-flops of one instance; multiply by the count for the totals above.",
        "",
        "| # | module | parameters | count | instances | cells | flip-flops | memories | depth |",
        "| ---: | --- | --- | ---: | --- | ---: | ---: | --- | ---: |",
    ]
    for g in result["groups"]:
        head = (
            f"| {g['index']} | {g['module']} | {_params(g['params'])} | {g['count']} "
            f"| {_instances(g['instances'])}"
        )
        if g["error"]:
            out.append(f"{head} | error: {g['error']} | | | |")
            continue
        mems = [f"{m['kind']} {m['words']}x{m['width']}" for m in g["macros"]]
        mems += [f"{m['kind']} {m['words']}x{m['width']} as flip-flops" for m in g["small_memories"]]
        out.append(
            f"{head} | {_n(g['cells'])} | {_n(g['flops'])} | {'; '.join(mems) or '-'} | {g['logic_depth']} |"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("package", type=Path, help="hand-off package directory (has design.json)")
    ap.add_argument("--jobs", type=int, default=2, help="Yosys processes at once (default 2)")
    ap.add_argument("--out", type=Path, help="report directory (default <package>/../report)")
    ap.add_argument("--work", type=Path, help="Yosys work directory (default <package>/../area_work)")
    ap.add_argument("--small-bits", type=int, default=SMALL_MEMORY_BITS, help="flip-flop memory threshold")
    args = ap.parse_args(argv)
    pkg = args.package.resolve()
    out = args.out or pkg.parent / "report"
    work = args.work or pkg.parent / "area_work"
    try:
        result = network_area(pkg, work, jobs=args.jobs, small_bits=args.small_bits)
    except AreaError as e:
        print(f"sim.area: {e}", file=sys.stderr)
        return 2
    timings = result.pop("timings")
    out.mkdir(parents=True, exist_ok=True)
    (out / "area.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "area_timings.json").write_text(json.dumps(timings, indent=1) + "\n")
    (out / "area.md").write_text(area_md(result))
    t = result["totals"]
    print(
        f"wrote {out / 'area.md'}: {t['cells']} cells, {t['flops']} flip-flops, "
        f"{t['rom_bits']} ROM + {t['ram_bits']} RAM macro bits ({timings['wall_s']:.0f} s)"
    )
    for f in result["failed"]:
        print(f"sim.area: group {f['group']} ({f['module']}) failed: {f['error']}", file=sys.stderr)
    return 0 if result["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
