"""Which stage structures reproduce the paper's Table 1 BFLOPs? An exhaustive count, no training.

Six of Table 1's nine CSPPeleeNet rows stay outside their 2% with the fusion strategies built as
the paper's Fig. 3 draws them (``csppeleenet-{first,last,csp}-g*``; RESULTS.md, issue 13). This
enumerates the stage structures a CSP PeleeNet stage can have -- after the split and the partial
dense block on part 2: a partial transition or none (four output widths), the concat with part 1
or none, a final transition or none (three output widths), the 2x2 average pool at the end or
between the concat and the final transition -- and reports, per Table 1 column, the Fig. 3
structure's deviation and every structure within tolerance. Counts are analytic (the paper's
conventions: 2 x MACs of convolutions plus k^2 C H W of pools, at 224); `tests/test_analysis.py`
checks them against ``hwcsp.analysis.model_stats`` of the registered models, integer for integer.
Writes ``build/table1/search.{md,json}``:

    python -m benchmarks.table1_search [--tolerance 0.02] [--out build/table1]
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from golden.fsutil import atomic_write
from hwcsp.models.pelee import GROWTH, PELEE_STAGES
from hwcsp.paper import table1_rows

SIZE = 224
STEM = 32  # PeleeNet's stem block output channels (stride 4)
CLASSES = 1000
GAMMAS = (0.25, 0.5, 0.75)
PT_WIDTHS = ("same", "cout", "cout-part1", "m*growth")  # partial transition output
T_WIDTHS = ("same", "cout", "cout-part1")  # final transition output


@dataclass(frozen=True)
class Structure:
    """One CSP stage: split -> partial dense block -> [pt] -> [concat part 1] -> [pool] -> [t] -> [pool]."""

    pt: str | None  # partial transition's output width (a PT_WIDTHS rule), None: no partial transition
    concat: bool  # part 1 joins the stage's output (False: part 1 is dropped)
    t: str | None  # final transition's output width (a T_WIDTHS rule), None: no final transition
    pool_before_t: bool  # the 2x2 pool runs before the final transition (at its input)

    def label(self) -> str:
        pt = f"pt→{self.pt}" if self.pt else "no pt"
        cat = "concat" if self.concat else "no concat"
        t = "no t" if not self.t else f"t→{self.t}" + (" (pooled)" if self.pool_before_t else "")
        return f"{pt}, {cat}, {t}"


# The paper's Fig. 3, as the zoo builds them (hwcsp.arch._csp_stage_body).
FIG3 = {
    "fusion-first": Structure(None, True, "cout", False),
    "fusion-last": Structure("cout-part1", True, None, False),
    "csp": Structure("same", True, "cout", True),
}
PELEENET = Structure(None, True, "cout", False)  # at gamma 0: dense block -> transition -> pool


def _conv(cin: int, cout: int, k: int, res: int) -> int:
    return 2 * cin * cout * k * k * res * res


def _stem() -> int:
    """3x3/2 -> [1x1 -> 3x3/2 | 2x2/2 maxpool] -> concat -> 1x1 (hwcsp.arch.PeleeStem)."""
    r1, r2 = SIZE // 2, SIZE // 4
    return (
        _conv(3, STEM, 3, r1)
        + _conv(STEM, STEM // 2, 1, r1)
        + _conv(STEM // 2, STEM, 3, r2)
        + 4 * STEM * r2 * r2
        + _conv(2 * STEM, STEM, 1, r2)
    )


def _dense(cin: int, m: int, bottleneck: int, res: int) -> tuple[int, int]:
    """PeleeNet's two-way dense layers: FLOPs and the output width (input + m * growth)."""
    half, inner = GROWTH // 2, bottleneck * GROWTH // 2
    flops = 0
    for j in range(m):
        c = cin + j * GROWTH
        flops += 2 * _conv(c, inner, 1, res) + 2 * _conv(inner, half, 3, res) + _conv(half, half, 3, res)
    return flops, cin + m * GROWTH


def flops(s: Structure | None, gamma: float) -> int:
    """The network's FLOPs at 224 with every stage built as ``s`` (None: PeleeNet, no split)."""
    if s is None:  # PeleeNet is the structure with an empty part 1
        s, gamma = PELEENET, 0.0
    total, cin, res = _stem(), STEM, SIZE // 4
    last = len(PELEE_STAGES) - 1
    for i, (cout, m, bottleneck) in enumerate(PELEE_STAGES):
        part1 = round(gamma * cin)
        f, x = _dense(cin - part1, m, bottleneck, res)
        total += f
        if s.pt:
            w = {"same": x, "cout": cout, "cout-part1": cout - part1, "m*growth": m * GROWTH}[s.pt]
            total += _conv(x, w, 1, res)
            x = w
        if s.concat:
            x += part1
        early = i < last and s.pool_before_t  # the pool runs at the final transition's input
        if early:
            total += 4 * x * (res // 2) ** 2
        if s.t:
            w = {"same": x, "cout": cout, "cout-part1": cout - part1}[s.t]
            total += _conv(x, w, 1, res // 2 if early else res)
            x = w
        if i < last and not early:
            total += 4 * x * (res // 2) ** 2
        cin, res = x, res // 2 if i < last else res
    return total + 2 * cin * CLASSES


def structures() -> list[Structure]:
    out = []
    for pt, concat, t in itertools.product((None, *PT_WIDTHS), (True, False), (None, *T_WIDTHS)):
        for pool_before_t in (False, True) if t else (False,):
            out.append(Structure(pt, concat, t, pool_before_t))
    return out


def _row(s: Structure, vals: list[float], paper: list[float]) -> dict:
    dev = [v / p - 1 for v, p in zip(vals, paper, strict=True)]
    return {
        "structure": s.label(),
        **asdict(s),
        "bflops": [round(v, 4) for v in vals],
        "deviation": [round(d, 4) for d in dev],
        "worst": round(max(map(abs, dev)), 4),
    }


def search(tolerance: float) -> dict:
    paper: dict[str, dict[float, float]] = {}
    for r in table1_rows():
        paper.setdefault(r["variant"], {})[r["gamma"]] = r["bflops"]
    cands = [(s, [flops(s, g) / 1e9 for g in GAMMAS]) for s in structures()]
    columns = {}
    for variant, fig3 in FIG3.items():
        want = [paper[variant][g] for g in GAMMAS]
        ranked = sorted((_row(s, v, want) for s, v in cands), key=lambda r: r["worst"])
        columns[variant] = {
            "paper": want,
            "fig3": _row(fig3, [flops(fig3, g) / 1e9 for g in GAMMAS], want),
            "within": [r for r in ranked if r["worst"] <= tolerance],
            "best": ranked[:3],
        }
    return {
        "size": SIZE,
        "gammas": list(GAMMAS),
        "tolerance": tolerance,
        "structures": len(cands),
        "peleenet_bflops": round(flops(None, 0.0) / 1e9, 4),
        "columns": columns,
    }


def markdown(doc: dict) -> str:
    tol = doc["tolerance"]
    lines = [
        f"# Table 1 structure search ({doc['structures']} stage structures, BFLOPs @{doc['size']}, "
        f"tolerance {tol:.0%})",
        "",
    ]
    lines += [
        "| column | paper | Fig. 3 structure | its BFLOPs (deviation) | structures within tolerance |",
        "|---|---|---|---|---|",
    ]
    for variant, c in doc["columns"].items():
        f = c["fig3"]
        ours = " / ".join(f"{v:.3f} ({d:+.1%})" for v, d in zip(f["bflops"], f["deviation"], strict=True))
        within = "; ".join(f"{r['structure']}: worst {r['worst']:.1%}" for r in c["within"]) or "none"
        paper = " / ".join(f"{v:.3f}" for v in c["paper"])
        lines.append(f"| {variant} | {paper} | {f['structure']} | {ours} | {within} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.table1_search", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--tolerance", type=float, default=0.02)
    ap.add_argument("--out", type=Path, default=Path("build/table1"))
    a = ap.parse_args(argv)
    if not 0 < a.tolerance < 1:
        ap.error(f"--tolerance {a.tolerance}: give a fraction between 0 and 1")
    doc = search(a.tolerance)
    a.out.mkdir(parents=True, exist_ok=True)
    atomic_write(a.out / "search.json", json.dumps(doc, indent=1) + "\n")
    md = markdown(doc)
    atomic_write(a.out / "search.md", md)
    print(md, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
