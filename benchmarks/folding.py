"""Layer-balanced folding vs FINN's SetFolding on cspdensenet-ref-prn @320 (issue: hls).

Both foldings are scored by the same cycle model (golden/cycles.py) after width converters are
inserted. Efficiency = (MACs per frame / MAC budget) / bottleneck cycles. The floor is the best
bottleneck any folding can reach (a node at full parallelism). Writes a Markdown table to stdout
and to build/bench/folding.md.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

BUDGETS = (512, 2048, 8192)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.folding")
    p.add_argument("--model", default="cspdensenet-ref-prn")
    p.add_argument("--size", type=int, default=320)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--build-root", default="build/bench")
    a = p.parse_args(argv)

    from golden.fsutil import make_tmp_dir
    from hls.baseline import setfolding_sweep
    from hls.finn_env import boot
    from hls.flow import load_export, prepare
    from hls.folding import apply_folding, balance, bottleneck
    from hls.split import split_mvaus
    from hls.steps import insert_dwc, seed_names
    from hwcsp.buildcfg import BuildConfig
    from quant.export import export

    cfg = BuildConfig(a.model, a.size, a.width)
    d = cfg.path(Path(a.build_root))
    if not (d / "model.qonnx.onnx").exists():
        export(cfg, d)
    work = make_tmp_dir(d, "finn-work-bench")  # stale ones of killed runs are removed
    boot(work)
    seed_names()
    _, _, qmodel = load_export(d)
    base_model, _ = prepare(qmodel, work)
    rows = []
    for budget in BUDGETS:
        t = time.perf_counter()
        from qonnx.core.modelwrapper import ModelWrapper

        ours = ModelWrapper(base_model.model.__deepcopy__())
        r = balance(ours.graph, mac_budget=budget, split=True)
        cycles, _ = bottleneck(insert_dwc(split_mvaus(apply_folding(ours, r.attrs), r.attrs)).graph)
        t_ours = time.perf_counter() - t
        plain = ModelWrapper(base_model.model.__deepcopy__())
        rp = balance(plain.graph, mac_budget=budget, split=False)
        cycles_p, _ = bottleneck(insert_dwc(apply_folding(plain, rp.attrs)).graph)
        n_split = sum("split" in a for a in r.attrs.values())
        t = time.perf_counter()
        b = setfolding_sweep(ModelWrapper(base_model.model.__deepcopy__()), budget)
        t_finn = time.perf_counter() - t
        rows.append((budget, r, cycles, n_split, rp, cycles_p, b, t_ours, t_finn))
    shutil.rmtree(work, ignore_errors=True)
    lines = [
        f"Folding of `{cfg.dirname}`: {rows[0][1].total_macs / 1e6:.1f} M MACs/frame, floor "
        f"{rows[0][1].floor} cycles ({rows[0][1].floor_node}).",
        "",
        "| MAC budget | hwcsp units | hwcsp bottleneck | hwcsp efficiency | MVAUs split "
        "| PE \\| MH only: units | bottleneck | efficiency "
        "| FINN units | FINN bottleneck | FINN efficiency | ratio (FINN / hwcsp cycles) "
        "| search time hwcsp / FINN sweep |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for budget, r, cycles, n_split, rp, cycles_p, b, t_ours, t_finn in rows:
        eff = r.total_macs / budget / cycles
        plain = f"| {n_split} | {rp.mac_units} | {cycles_p} | {rp.total_macs / budget / cycles_p:.3f} "
        if b is None:
            finn = "| – | none fits | – | – "
        else:
            b_eff = r.total_macs / budget / b.bottleneck_cycles
            finn = (
                f"| {b.mac_units} | {b.bottleneck_cycles} | {b_eff:.3f} | {b.bottleneck_cycles / cycles:.2f} "
            )
        lines.append(
            f"| {budget} | {r.mac_units} | {cycles} | {eff:.3f} {plain}{finn}"
            f"| {t_ours:.1f} s / {t_finn:.1f} s |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(a.build_root) / "folding.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return 0
