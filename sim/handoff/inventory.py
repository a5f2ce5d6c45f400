"""The memories the package's RTL really instantiates, read back from Yosys' elaboration of the
top: every rom and ram_1r1w instance with its hierarchical path, words x bits and image file.
The README's memory inventory is this list, so it cannot drift from the RTL."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sim.handoff.design import Design, PackageError

MACROS = ("rom", "ram_1r1w")
# What an RTL memory holds, by the instance names on its path (sim/rtl).
ROLES = (
    (".u_weights.", "weights"),
    (".u_thresholds.", "thresholds"),
    (".u_inbuf", "MVAU input buffer (replayed per neuron fold)"),
    (".u_ring", "sliding-window ring buffer"),
    (".u_line", "line buffer (sliding window / upsample)"),
    (".u_ram", "stream FIFO storage"),
)


@dataclass
class MacroInstance:
    path: str  # hierarchical instance path below the top
    kind: str  # rom | ram_1r1w
    words: int
    bits: int
    init: str

    @property
    def instance(self) -> str:
        return self.path.split(".")[0]

    @property
    def holds(self) -> str:
        return next((role for key, role in ROLES if key in self.path + "."), "buffer")


def yosys() -> str:
    exe = shutil.which("yosys")
    if exe is None:
        raise PackageError("yosys is not installed ('make setup' installs it; or apt-get install yosys)")
    return exe


def _value(v: str) -> int | str:
    v = v.strip()
    if v.startswith('"'):
        return v.strip('"')
    m = re.fullmatch(r"(\d+)'([01xz]+)", v)
    return int(m.group(2), 2) if m else int(v)


def elaborate(pkg: Path, d: Design) -> list[MacroInstance]:
    """Yosys `hierarchy -check` of the package's top (run in `pkg`, where its image files are),
    flattened; the rom / ram_1r1w instances in path order. PackageError when Yosys refuses."""
    macros = [f"src/{d.prefix}{m}.sv" for m in MACROS if m in d.modules]
    logic = [s for s in d.sources if s not in macros]
    script = "\n".join(
        [
            *(f"read_verilog -sv -lib {s}" for s in macros),
            *(f"read_verilog -sv {s}" for s in logic),
            f"hierarchy -check -top {d.top}",
            "flatten",
            f"select t:{d.prefix}rom t:{d.prefix}ram_1r1w",
            "tee -q -o yosys_memories.il dump",
        ]
    )
    (pkg / "yosys_memories.ys").write_text(script)
    p = subprocess.run([yosys(), "-q", "-s", "yosys_memories.ys"], cwd=pkg, capture_output=True, text=True)
    (pkg / "yosys_memories.ys").unlink()
    dump = pkg / "yosys_memories.il"
    text = dump.read_text() if dump.is_file() else ""
    dump.unlink(missing_ok=True)
    if p.returncode != 0:
        err = [ln for ln in (p.stdout + p.stderr).splitlines() if "ERROR" in ln] or (
            p.stdout + p.stderr
        ).splitlines()
        raise PackageError(f"Yosys does not elaborate {d.top}: {err[-1] if err else '?'}")
    out = []
    for m in re.finditer(r"^\s*cell \\(\S+) \\(\S+)\n(.*?)^\s*end$", text, flags=re.M | re.S):
        kind = m.group(1)[len(d.prefix) :]
        params = {k: _value(v) for k, v in re.findall(r"parameter (?:signed )?\\(\w+) (.+)", m.group(3))}
        out.append(MacroInstance(m.group(2), kind, int(params.get("DEPTH", 16)), int(params.get("WIDTH", 8)),
                                 str(params.get("INIT_FILE", ""))))  # fmt: skip
    return sorted(out, key=lambda x: x.path)
