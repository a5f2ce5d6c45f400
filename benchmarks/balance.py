"""Does CSP balance per-layer computation in hardware? (issue 13; beyond the paper)

The paper claims CSP spreads computation more evenly over the layers. In a dataflow pipeline that
claim has a price tag: the layer-balanced folding (hls.folding) gives each MVAU the MAC units it
needs to meet one bottleneck, and the efficiency MACs / (MAC units x bottleneck cycles) says how
much of the budget does useful work. For each group (PeleeNet vs CSPPeleeNet at 224, ResNeXt-50
vs CSPResNeXt-50 at 256; Fig. 7's PeleeNet-YOLO, PeleeNet-PRN and CSPPeleeNet-EFM at 416; width 1,
seeded weights) and each budget (512, 2048, 8192 MAC units):
the bottleneck, the efficiency, and the heaviest layer's share of the model's MACs. A grouped
convolution counts its real MACs (one MVAU per group, hls.lower). Writes build/bench/balance.md,
balance.json and per-layer cycle charts (balance_<pair>.png).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

BUDGETS = (512, 2048, 8192)
PAIRS = {
    "pelee": (("peleenet", 224), ("csppeleenet", 224)),
    "resnext": (("resnext50", 256), ("cspresnext50", 256)),
    # issue 14, the hardware view of Fig. 7: the three detectors at 416
    "fig7": (("peleenet-yolo", 416), ("peleenet-prn", 416), ("csppeleenet-efm", 416)),
}
CLK_NS = 5.0  # the flow's default clock (hls.flow.HlsRequest.clk_ns): frames/s is an estimate


def layer_of(node_name: str, names: dict[str, str]) -> str:
    return names.get(node_name, node_name)


def study(model: str, size: int, root: Path, log=print) -> dict:
    from golden.cycles import rtl_cycles
    from golden.fsutil import make_tmp_dir
    from hls.finn_env import boot
    from hls.flow import load_export, prepare
    from hls.folding import FoldingError, balance, folding_units, light_view
    from hls.steps import seed_names
    from hwcsp.buildcfg import BuildConfig
    from quant.export import export

    cfg = BuildConfig(model, size)
    d = cfg.path(root)
    t = time.perf_counter()
    if not (d / "model.qonnx.onnx").exists():
        export(cfg, d, log=log)
    work = make_tmp_dir(d, "finn-work-balance")
    boot(work)
    seed_names()
    _, _, qmodel = load_export(d)
    hw, _ = prepare(qmodel, work)
    units = folding_units(hw.graph)
    mvaus = [u for u in units if u.macs]
    total = sum(u.macs for u in mvaus)
    heavy = max(mvaus, key=lambda u: u.macs)
    out = {
        "model": model,
        "size": size,
        "nodes": len(hw.graph.node),
        "mvaus": len(mvaus),
        "macs": total,
        "heaviest_layer": heavy.names[0],
        "heaviest_share": heavy.macs / total,
        "prepare_s": round(time.perf_counter() - t, 1),
        "budgets": {},
    }
    for budget in BUDGETS:
        try:
            r = balance(hw.graph, mac_budget=budget, split=True)
        except FoldingError as e:  # fewer MAC units than MVAUs (32 groups: one MVAU each)
            out["budgets"][budget] = {"infeasible": str(e)}
            log(f"balance: {model} @{size}, {budget} MAC units: infeasible ({e})")
            continue
        per_layer = []
        for u in mvaus:
            a = r.attrs[u.names[0]]
            cyc = next((c.cycles for c in u.choices if c.attrs.get(u.names[0]) == a), None)
            if cyc is None and "PE" in a:  # SIMD harmonized with a neighbour: recompute
                cyc = rtl_cycles(light_view(u.nodes[0], PE=a["PE"], SIMD=a["SIMD"]))
            elif cyc is None:  # a split MVAU whose SIMD was harmonized: it meets the bottleneck
                cyc = r.target
            per_layer.append((u.names[0], u.macs, cyc))
        out["budgets"][budget] = {
            "bottleneck_cycles": r.target,
            "mac_units": r.mac_units,
            "efficiency": r.total_macs / (r.mac_units * r.target),
            "floor": r.floor,
            "per_layer_cycles": per_layer,
        }
        log(
            f"balance: {model} @{size}, {budget} MAC units: bottleneck {r.target} cycles, efficiency "
            f"{out['budgets'][budget]['efficiency']:.3f}"
        )
    return out


def plot_pair(pair: str, rows: list[dict], path: Path, budget: int = 2048) -> None:
    """Per-MVAU cycles at one budget, both models of the pair on one axis (layers in graph order,
    x scaled to 0..1 so that the two depths compare); the bottleneck as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 1, figsize=(11, 2.6 * len(rows)), sharex=False)
    for ax, r in zip(axes, rows, strict=True):
        b = r["budgets"][budget]
        if "infeasible" in b:
            ax.set_title(f"{r['model']} @{r['size']}, {budget} MAC units: infeasible", fontsize=9)
            continue
        cyc = [c for _, _, c in b["per_layer_cycles"]]
        ax.bar(range(len(cyc)), cyc, width=1.0, color="#1f77b4")
        ax.axhline(b["bottleneck_cycles"], color="#d62728", lw=1)
        ax.set_ylabel("cycles / frame")
        ax.set_title(
            f"{r['model']} @{r['size']}, {budget} MAC units: bottleneck {b['bottleneck_cycles']:,} cycles, "
            f"efficiency {b['efficiency']:.2f}, {r['mvaus']} MVAUs",
            fontsize=9,
        )
        ax.set_xlim(-0.5, len(cyc) - 0.5)
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xlabel("MVAU, in graph order (red: the bottleneck every layer is folded to meet)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def int_budgets(row: dict) -> dict:
    """JSON keys are strings: budgets back to ints as study() writes them."""
    return {**row, "budgets": {int(k): v for k, v in row["budgets"].items()}}


def _cell(b: dict) -> str:
    if "infeasible" in b:
        return "infeasible"
    fps = 1e9 / (CLK_NS * b["bottleneck_cycles"])
    return f"{b['bottleneck_cycles']:,} / {b['efficiency']:.3f} / {fps:,.0f}"


def table(results: dict[str, list[dict]]) -> str:
    lines = [
        "| pair | model | MVAUs | GMACs | heaviest layer share | "
        + " | ".join(f"{b} units: bottleneck / eff. / fps" for b in BUDGETS)
        + " |",
        "|---|---|---:|---:|---:|" + "---:|" * len(BUDGETS),
    ]
    for pair, rows in results.items():
        for r in rows:
            cells = [_cell(r["budgets"][b]) for b in BUDGETS]
            lines.append(
                f"| {pair} | {r['model']} @{r['size']} | {r['mvaus']} | {r['macs'] / 1e9:.3f} | "
                f"{100 * r['heaviest_share']:.1f}% | " + " | ".join(cells) + " |"
            )
    lines.append(
        f"\nfps: frames/s at {1e3 / CLK_NS:.0f} MHz, an estimate from the RTL cycle model of the "
        "bottleneck (not a measurement)."
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from golden.fsutil import atomic_write

    p = argparse.ArgumentParser(prog="benchmarks.balance")
    p.add_argument("--pairs", nargs="*", default=list(PAIRS), choices=list(PAIRS))
    p.add_argument("--build-root", default="build/bench")
    a = p.parse_args(argv)
    root = Path(a.build_root)
    root.mkdir(parents=True, exist_ok=True)
    # cycle counts are deterministic (no timing): pairs not rerun keep their earlier results
    prev = root / "balance.json"
    results = json.loads(prev.read_text()) if prev.exists() else {}
    results = {k: [int_budgets(r) for r in v] for k, v in results.items() if k in PAIRS and k not in a.pairs}
    results.update({pair: [study(m, s, root) for m, s in PAIRS[pair]] for pair in a.pairs})
    results = {k: results[k] for k in PAIRS if k in results}
    for pair in a.pairs:
        plot_pair(pair, results[pair], root / f"balance_{pair}.png")
    md = table(results)
    atomic_write(root / "balance.md", md + "\n")
    atomic_write(root / "balance.json", json.dumps(results, indent=1) + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
