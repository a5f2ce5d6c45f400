"""The ``hwcsp`` command line; ``make <stage>`` calls the same subcommands.

The roof of the project: it imports every stage (lazily, so that every subcommand only pays for
what it uses) and nothing imports it. Errors caused by the user's input (every
``golden.errors.HwcspError``) print one line and exit with status 2; a failed check (a node
that is not bit-exact) exits with 1.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from golden.errors import HwcspError
from hwcsp.buildcfg import BuildConfig
from hwcsp.errors import NotImplementedStage, UserError
from quant.args import (
    add_config_args,
    add_train_args,
    add_variant_args,
    ensure_export,
    resolve_config,
    variant_of,
)

EXIT_USER = 2
EXIT_NOT_IMPLEMENTED = 3


# ----------------------------------------------------------------------------- analysis
def cmd_models(args) -> int:
    from hwcsp.analysis import model_stats
    from hwcsp.paper import paper_row
    from hwcsp.registry import get_entry, list_models

    rows = []
    for name in list_models():
        e = get_entry(name)
        s = model_stats(name, e.paper_size).summary()
        p = paper_row(name, e.paper_size)
        paper = None
        if p is not None:
            dev = p.deviations(s["params_M"], s["params_all_M"], s["bflops"])
            paper = {
                "table": p.table,
                "params_M": p.params_M,
                "bflops": p.bflops,
                "size": p.size,
                "convention": p.convention,
                "deviation": dev,
                "tolerance": e.tolerance,
                "within": all(abs(v) <= e.tolerance for v in dev.values()),
            }
        rows.append({**s, "task": e.task, "paper": paper})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(
        f"{'model':<24}{'task':<10}{'size':>5}{'params M':>10}{'all M':>8}{'BFLOPs':>8}{'CIO M':>8}"
        f"   {'paper (params, BFLOPs)':<34}{'deviation':>16}  tol"
    )
    for r in rows:
        p = r["paper"]
        ref, dev, tol = "-", "", ""
        if p:
            params = f"{p['params_M']:.2f}M {p['convention']}" if p["params_M"] is not None else "-"
            ref = f"{params} / {p['bflops']:.3f} ({p['table']})"
            d = p["deviation"]
            dev = f"{100 * d['params']:+.1f}% " if "params" in d else "- "
            dev += f"{100 * d['bflops']:+.1f}%"
            tol = f"{100 * p['tolerance']:.0f}% {'ok' if p['within'] else 'OUTSIDE'}"
        print(
            f"{r['model']:<24}{r['task']:<10}{r['size']:>5}{r['params_M']:>10.3f}{r['params_all_M']:>8.3f}"
            f"{r['bflops']:>8.3f}{r['cio_M']:>8.2f}   {ref:<34}{dev:>16}  {tol}"
        )
    return 0


def cmd_info(args) -> int:
    from hwcsp.analysis import format_table, model_stats, plot_bflops
    from hwcsp.registry import check_size, get_entry

    size = get_entry(args.model).paper_size if args.size is None else args.size
    check_size(args.model, size)
    stats = model_stats(args.model, size, args.width)
    out = Path(args.build_root) / args.model / "report"
    out.mkdir(parents=True, exist_ok=True)
    png = out / "bflops_per_layer.png"
    plot_bflops(stats, png)
    if args.json:
        print(json.dumps(stats.to_json(), indent=1))
    else:
        print(format_table(stats))
        print(f"per-layer chart: {png}")
    return 0


def cmd_cio(args) -> int:
    """Fig. 8: memory traffic (CIO) of two models under each convention, and their per-layer chart."""
    from hwcsp.analysis import CIO_CONVENTIONS, cio_by_convention, model_stats, plot_cio_pair
    from hwcsp.paper import tables
    from hwcsp.registry import check_size, get_entry

    stats = []
    for name in (args.a, args.b):
        size = get_entry(name).paper_size if args.size is None else args.size
        check_size(name, size)
        stats.append(model_stats(name, size))
    claims = tables()["memory_claims"]
    paper = {m: claims.get(f"{m}_cio_M") for m in (args.a, args.b)}
    out = Path(args.build_root) / "report"
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"cio_{args.a}_vs_{args.b}.png"
    plot_cio_pair(stats[0], stats[1], png)
    rows = {s.model: cio_by_convention(s) for s in stats}
    if args.json:
        print(json.dumps({"paper_M": paper, "cio": rows, "chart": str(png)}, indent=1))
        return 0
    print(f"{'convention':<10}" + "".join(f"{m:>26}" for m in rows) + "   ratio")
    for k, (desc, _) in CIO_CONVENTIONS.items():
        cells = ""
        for m, r in rows.items():
            dev = f" ({100 * (r[k] / 1e6 - paper[m]) / paper[m]:+.1f}%)" if paper[m] else ""
            cells += f"{r[k] / 1e6:>16.2f} M{dev:>9}"
        ratio = rows[args.b][k] / rows[args.a][k]
        print(f"{k:<10}{cells}   {ratio:.3f}   {desc}")
    if all(paper.values()):
        print(
            f"{'paper':<10}"
            + "".join(f"{paper[m]:>16.2f} M{'':>9}" for m in rows)
            + f"   {paper[args.b] / paper[args.a]:.3f}"
        )
    print(f"per-layer chart: {png}")
    return 0


# ----------------------------------------------------------------------------- configuration
def cmd_export(args) -> int:
    import shutil

    from quant.export import export

    cfg = resolve_config(args)
    d = cfg.path(Path(args.build_root))
    r = export(cfg, d, args.ckpt)
    kind = "seeded, calibrated weights" if r.calibrated else "checkpoint weights"
    print(f"export: wrote {r.onnx_path} ({kind})")
    worst = min(r.health, key=lambda h: h.code_share)
    print(f"export: every activation alive; least used: {worst.describe()}")
    if args.output:
        shutil.copyfile(r.onnx_path, args.output)
        print(f"export: copied to {args.output}")
    return 0


# What a QONNX file fixes itself: these arguments are refused beside --qonnx.
QONNX_FIXED = ("size", "width", "wbits", "abits", "num_classes", "ckpt")


def qonnx_build_dir(args, log=print) -> Path | None:
    """The build directory of ``--qonnx FILE`` (``hls.qonnx_in``), None without it; a model name
    or a configuration argument beside it is refused (the file fixes them)."""
    if getattr(args, "qonnx", None) is None:
        if args.model is None:
            raise UserError("give a model name or --qonnx FILE")
        return None
    if args.model is not None:
        raise UserError(f"give a model name ({args.model}) or --qonnx FILE, not both")
    given = [k for k in QONNX_FIXED if getattr(args, k, None) is not None]
    if given or getattr(args, "seeded", False):
        opts = ", ".join(f"--{k.replace('_', '-')}" for k in given + (["seeded"] if args.seeded else []))
        raise UserError(f"{opts}: a QONNX file fixes its own sizes, widths and weights")
    from hls.qonnx_in import prepare_build_dir

    return prepare_build_dir(args.qonnx, Path(args.build_root), log=log)


def cmd_hls(args) -> int:
    import time

    t = time.perf_counter()
    d = qonnx_build_dir(args)
    if d is None:
        cfg = resolve_config(args)
        d = ensure_export(cfg, args.ckpt, args.build_root)
        what = "export (or reuse) of the QONNX model"
    else:
        what = "normalisation and rule check of the QONNX file (or reuse)"
    export_s = round(time.perf_counter() - t, 3)
    from hls.flow import HlsRequest, run

    variant = variant_of(args)
    req = HlsRequest.of(
        d,
        variant,
        clk_ns=args.clk_ns,
        baseline=not args.no_baseline,
        prior_timings={what: export_s},
    )
    out = run(req)
    print(f"hls: report {out / 'report' / 'report.md'}")
    return 0


def variant_dir(args) -> Path:
    """The hls variant directory of the configuration the arguments name; the earlier stages
    (export, hls) run first when their outputs are missing, as ``make hls`` would run them."""
    from hls.flow import HlsRequest, run

    variant = variant_of(args)
    d = qonnx_build_dir(args)
    if d is not None:
        v = d / variant.name
        if not (v / "model.hw.onnx").exists():
            print(f"{args.cmd}: no {v / 'model.hw.onnx'} yet; running the hls stage first")
            run(HlsRequest.of(d, variant))
        return v
    cfg = resolve_config(args)
    d = cfg.path(Path(args.build_root))
    cfg.check_dir(d, ignore=("seed",))  # here --seed is the seed of the input vectors
    v = d / variant.name
    if not (v / "model.hw.onnx").exists():
        print(f"{args.cmd}: no {v / 'model.hw.onnx'} yet; running the hls stage first")
        export_cfg = BuildConfig(**{**asdict(cfg), "seed": 0}) if not cfg.ckpt_sha256 else cfg
        exported = ensure_export(export_cfg, args.ckpt, args.build_root)
        run(HlsRequest.of(exported, variant))
    return v


def cmd_golden(args) -> int:
    v = variant_dir(args)
    from golden.vectors import write_vectors

    out = write_vectors(v, v / "vectors", n=args.n, seed=args.seed)
    print(f"golden: wrote {out} ({args.n} frame(s), seed {args.seed})")
    return 0


def cmd_sim(args) -> int:
    v = variant_dir(args)
    from golden.vectors import write_vectors
    from sim.graph import passed, simulate

    vectors = v / "vectors"
    if not (vectors / "manifest.json").exists():
        print(f"sim: no golden vectors yet; writing {vectors} first")
        write_vectors(v, vectors, n=1, seed=0)
    report = simulate(v, vectors, simulator=args.sim)
    print(f"sim: report {v / 'sim' / 'report.md'}")
    return 0 if passed(report) else 1


def cmd_verify(args) -> int:
    v = variant_dir(args)
    from hls.report import refresh_report
    from sim.verify import REPORT_MD, diagnosis_lines, verify

    rep = verify(v, args.vectors, frames=args.frames, stall=args.stall)
    if (v / "report" / "estimates.json").is_file():
        refresh_report(v)  # report.md: the measured interval beside the estimate
    m, e, t = rep["measured"], rep["estimate"], rep["timings"]
    print(f"verify: {rep['verdict']}" + (f" — {rep['reason']}" if rep.get("reason") else ""))
    if m["interval"]:
        print(
            f"verify: steady state {m['interval']} cycles per frame "
            f"({m['ratio']} x the estimate {e['interval']}), "
            f"{m['fps']} frames/s at {rep['clk_ns']} ns; {rep['frames']} frames, "
            f"{t['simulated_cycles_per_second']} simulated cycles/s"
        )
    if rep.get("deadlock"):
        print("\n".join(["verify: deadlock diagnosis:", *diagnosis_lines(rep["deadlock"])]))
    print(f"verify: report {v / 'report' / REPORT_MD}")
    return 0 if rep["verdict"] == "pass" else 1


def cmd_rtl(args) -> int:
    v = variant_dir(args)
    from sim.handoff.package import write_package

    out = write_package(v, weights=args.weights, prefix=args.prefix)
    print(f"rtl: wrote {out} (README.md: interface, memory inventory; tb/run.sh: the standalone testbench)")
    if args.run_tb:
        print(f"rtl: running {out / 'tb' / 'run.sh'} ...", flush=True)
        rc = subprocess.run([str(out / "tb" / "run.sh")]).returncode
        print(f"rtl: testbench {'passed' if rc == 0 else f'FAILED (exit {rc})'}")
        return 0 if rc == 0 else 1
    return 0


def cmd_area(args) -> int:
    import time

    v = variant_dir(args)
    from golden.fsutil import atomic_write
    from sim.area import area_md, network_area
    from sim.handoff.design import graph_sha
    from sim.handoff.package import write_package

    pkg = v / "rtl"
    design = pkg / "design.json"
    if not design.is_file() or json.loads(design.read_text()).get("graph_sha256") != graph_sha(v):
        print(f"area: no package of this graph in {pkg} yet; writing it first (hwcsp rtl)")
        write_package(v)
    t0 = time.monotonic()
    result = network_area(pkg, v / "sim" / "area", jobs=args.jobs)
    timings = result.pop("timings", {}) | {"total_s": round(time.monotonic() - t0, 1)}
    report = v / "report"
    atomic_write(report / "area.json", json.dumps(result, indent=1) + "\n")
    atomic_write(report / "area.md", area_md(result))
    atomic_write(report / "area_timings.json", json.dumps(timings, indent=1) + "\n")
    t, lim = result["totals"], result.get("limiting") or {}
    print(
        f"area: {t['cells']:,} cells, {t['flops']:,} flip-flops, "
        f"{t['rom_bits']:,} ROM + {t['ram_bits']:,} RAM macro bits; "
        f"deepest path {lim.get('logic_depth', '?')} gate levels in {lim.get('module', '?')}"
    )
    print(f"area: report {report / 'area.md'} ({timings['total_s']:.0f} s)")
    for f in result["failed"]:
        print(f"area: group {f['group']} ({f['module']}) failed: {f['error']}", file=sys.stderr)
    return 0 if result["complete"] else 1


# ----------------------------------------------------------------------------- entry point
def cmd_import(args) -> int:
    from hwcsp.registry import zoo_models
    from quant.importer import import_darknet

    log = functools.partial(print, file=sys.stderr)
    rec = import_darknet(
        args.cfg, args.weights, args.name, args.strict, known=zoo_models(), log=log, calib=args.calib
    )
    print(rec.name)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hwcsp", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    s = sub.add_parser("models", help="every registered model at its paper size")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("import", help="import a network (a Darknet cfg and weights) as a model")
    fmt = s.add_subparsers(dest="format", required=True, metavar="FORMAT")
    d = fmt.add_parser(
        "darknet",
        help="a Darknet .cfg (and .weights): every command then accepts it by name",
        description="Stores the network in $HWCSP_MODELS (default ~/.hwcsp/models); prints its name.",
    )
    d.add_argument("cfg", type=Path, help="the Darknet .cfg file")
    d.add_argument("--weights", type=Path, help="its Darknet .weights file (the model's default weights)")
    d.add_argument("--name", help="model name (default: the cfg's file name)")
    d.add_argument(
        "--calib", type=Path, help="folder of images to calibrate activation scales on (default: digits)"
    )
    d.add_argument(
        "--strict", action="store_true", help="refuse activations other than ReLU and linear (leaky, ...)"
    )
    d.set_defaults(func=cmd_import)

    s = sub.add_parser("info", help="per-layer table and BFLOPs chart of one model")
    s.add_argument("model")
    s.add_argument("--size", type=int)
    s.add_argument("--width", type=float, default=1.0)
    s.add_argument("--json", action="store_true")
    s.add_argument("--build-root", default="build")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("cio", help="memory traffic (CIO, the paper's Fig. 8) of two models and its chart")
    s.add_argument("a", nargs="?", default="resnext50")
    s.add_argument("b", nargs="?", default="cspresnext50")
    s.add_argument("--size", type=int, help="input size (default: each model's paper size)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--build-root", default="build")
    s.set_defaults(func=cmd_cio)

    s = sub.add_parser("export", help="QONNX export of a configuration")
    add_config_args(s)
    s.add_argument("-o", "--output", type=Path, help="also copy the QONNX file here")
    s.set_defaults(func=cmd_export)

    from quant import commands

    for name, help_, add_args, func in (
        (
            "train",
            "float training or QAT on the offline digits data (or a COCO folder)",
            add_train_args,
            commands.cmd_train,
        ),
        (
            "eval",
            "mAP of float, QAT or integer execution, through pycocotools",
            commands.add_eval_args,
            commands.cmd_eval,
        ),
        ("detect", "draw detections on an image", commands.add_detect_args, commands.cmd_detect),
    ):
        s = sub.add_parser(name, help=help_)
        add_config_args(s)
        s.set_defaults(func=func)
        add_args(s)

    s = sub.add_parser("hls", help="FINN lowering, folding, HLS code and reports (the main job)")
    add_config_args(s, qonnx=True)
    add_variant_args(s)
    s.add_argument("--clk-ns", type=float, default=5.0, help="clock period in ns (default 5)")
    s.add_argument("--no-baseline", action="store_true", help="skip FINN's SetFolding sweep in the report")
    s.set_defaults(func=cmd_hls)

    s = sub.add_parser("golden", help="golden vectors of the integer dataflow graph")
    add_config_args(s, seed_help="seed of the random input vectors", qonnx=True)
    s.add_argument("--n", type=int, default=1, help="number of input frames")
    add_variant_args(s)
    s.set_defaults(func=cmd_golden)

    s = sub.add_parser("sim", help="RTL simulation of every node on its golden vectors")
    add_config_args(s, qonnx=True)
    s.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    add_variant_args(s)
    s.set_defaults(func=cmd_sim)

    s = sub.add_parser(
        "verify", help="the stitched RTL network in its steady state: bit-exact and at the estimate"
    )
    add_config_args(s, qonnx=True)
    add_variant_args(s)
    s.add_argument(
        "--frames",
        type=int,
        help="frames of the first run (default 2L + 4 for the latency L that the hls schedule "
        "estimates; more follow when the measured latency needs them)",
    )
    s.add_argument(
        "--stall", action="store_true", help="also a run under random stalls at the network's edges"
    )
    s.add_argument(
        "--vectors", type=Path, help="golden vectors to use (default: the variant's vectors-edges)"
    )
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser(
        "rtl", help="hand-off package: synthesizable RTL, memory images, standalone testbench, README"
    )
    add_config_args(s, qonnx=True)
    add_variant_args(s)
    s.add_argument(
        "--weights",
        choices=("rom", "ram"),
        default="rom",
        help="weights and thresholds in ROMs (default, <variant>/rtl) or in RAMs with a load port "
        "(<variant>/rtl-ram)",
    )
    s.add_argument("--prefix", help="module name prefix (default <model>_<graph hash>_)")
    s.add_argument("--run-tb", action="store_true", help="then build and run the package's testbench")
    s.set_defaults(func=cmd_rtl)

    s = sub.add_parser("area", help="Yosys generic-gate area of the hand-off package (opt-in, slow)")
    add_config_args(s, qonnx=True)
    add_variant_args(s)
    s.add_argument("--jobs", type=int, default=2, help="Yosys processes at once (default 2)")
    s.set_defaults(func=cmd_area)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "model", None) is not None:  # an unknown model is the first thing to report
            from hwcsp.registry import get_entry

            get_entry(args.model)
        return args.func(args)
    except NotImplementedStage as e:
        print(f"hwcsp {args.cmd}: {e}", file=sys.stderr)
        return EXIT_NOT_IMPLEMENTED
    except HwcspError as e:
        print(f"hwcsp {args.cmd}: error: {e}", file=sys.stderr)
        return EXIT_USER


if __name__ == "__main__":
    sys.exit(main())
