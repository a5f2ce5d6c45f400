"""The ``hwcsp`` command line; ``make <stage>`` calls the same subcommands.

Stages are imported lazily so that every subcommand only pays for what it uses. Errors caused
by the user's input print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from hwcsp.buildcfg import BuildConfig
from hwcsp.errors import NotImplementedStage, UserError

EXIT_USER = 2
EXIT_NOT_IMPLEMENTED = 3


def _paper() -> dict:
    return json.loads((Path(__file__).parent / "data" / "paper_tables.json").read_text())


def paper_row(name: str) -> dict | None:
    d = _paper()
    for r in d["coco_detectors"]:
        if r["model"] == name:
            return {
                "params_M": r["params_M"],
                "bflops": r["bflops"],
                "size": r["size"],
                "convention": "all floats",
            }
    for r in d["imagenet"]:
        if r["model"] == name:
            return {
                "params_M": r["params_M"],
                "bflops": r["bflops"],
                "size": r["size"],
                "convention": "weights",
            }
    return None


# ----------------------------------------------------------------------------- analysis
def cmd_models(args) -> int:
    from hwcsp.analysis import model_stats
    from hwcsp.registry import get_entry, list_models

    rows = []
    for name in list_models():
        e = get_entry(name)
        s = model_stats(name, e.paper_size).summary()
        rows.append({**s, "task": e.task, "paper": paper_row(name)})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(
        f"{'model':<24}{'task':<10}{'size':>5}{'params M':>10}{'all M':>8}{'BFLOPs':>8}{'CIO M':>8}   paper"
    )
    for r in rows:
        p = r["paper"]
        ref = f"{p['params_M']:.2f}M ({p['convention']}) / {p['bflops']:.3f}" if p else "-"
        print(
            f"{r['model']:<24}{r['task']:<10}{r['size']:>5}{r['params_M']:>10.3f}{r['params_all_M']:>8.3f}"
            f"{r['bflops']:>8.3f}{r['cio_M']:>8.2f}   {ref}"
        )
    return 0


def cmd_info(args) -> int:
    from hwcsp.analysis import format_table, model_stats, plot_bflops
    from hwcsp.registry import get_entry

    size = args.size or get_entry(args.model).paper_size
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


# ----------------------------------------------------------------------------- configuration
def add_config_args(p: argparse.ArgumentParser, seed_help: str = "seed of the weight initialisation") -> None:
    p.add_argument("model", help="registered model name (hwcsp models)")
    p.add_argument("--size", type=int, help="input size (default: the checkpoint's, else the paper's)")
    p.add_argument("--width", type=float, help="channel width multiplier (default 1.0)")
    p.add_argument("--wbits", type=int, help="weight bits (default 4; first layer and head use 8)")
    p.add_argument("--abits", type=int, help="activation bits (default 4)")
    p.add_argument("--num-classes", type=int, help="detector classes (default 80, or the checkpoint's)")
    p.add_argument(
        "--ckpt",
        type=Path,
        help="trained checkpoint (default: the shipped one of this configuration, if any)",
    )
    p.add_argument(
        "--seeded", action="store_true", help="seeded, calibrated weights even if a checkpoint ships"
    )
    p.add_argument("--seed", type=int, default=0, help=seed_help)
    p.add_argument("--build-root", default="build", help="root of the build directories")


SHIPPED_CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def shipped_checkpoint(model: str, size: int, width: float, wbits: int, abits: int) -> Path | None:
    """A trained checkpoint shipped in the repository for exactly this configuration, if any."""
    p = SHIPPED_CHECKPOINTS / f"{model}-s{size}-w{width:g}-w{wbits}a{abits}.pt"
    return p if p.is_file() else None


def resolve_config(args):
    """BuildConfig from the arguments, the checkpoint's metadata filling the unset ones.

    Without ``--ckpt`` a shipped trained checkpoint of the same configuration is the default
    (``--seeded`` forces seeded, calibrated weights).
    """
    from golden.fsutil import sha256_file
    from hwcsp.buildcfg import BuildConfig
    from hwcsp.registry import get_entry

    entry = get_entry(args.model)
    if args.ckpt is None and not getattr(args, "seeded", False):
        shipped = shipped_checkpoint(
            args.model, args.size or entry.paper_size, args.width or 1.0, args.wbits or 4, args.abits or 4
        )
        if shipped is not None:
            print(
                f"using the shipped trained checkpoint {shipped} (--seeded for seeded weights)",
                file=sys.stderr,
            )
            args.ckpt = shipped
    meta: dict = {}
    sha = ""
    if args.ckpt is not None:
        from quant.checkpoint import check_matches, load_checkpoint

        _, meta = load_checkpoint(args.ckpt)
        check_matches(meta, args.ckpt, model=args.model)
        sha = sha256_file(args.ckpt)

    def pick(key, arg, default):
        if arg is not None:
            return arg
        return meta.get(key, default) if meta.get(key) is not None else default

    return BuildConfig(
        model=args.model,
        size=int(pick("size", args.size, entry.paper_size)),
        width=float(pick("width", args.width, 1.0)),
        wbits=int(pick("wbits", args.wbits, 4)),
        abits=int(pick("abits", args.abits, 4)),
        num_classes=int(pick("num_classes", args.num_classes, 80)),
        seed=0 if sha else int(args.seed),
        ckpt_sha256=sha,
    )


def ensure_export(cfg, ckpt, build_root, log=print) -> Path:
    """The configuration's build directory with a matching QONNX export (made if missing)."""
    d = cfg.path(Path(build_root))
    cfg.check_dir(d)
    if (d / "model.qonnx.onnx").exists() and (d / "config.json").exists() and (d / "export.json").exists():
        log(f"export: reusing {d / 'model.qonnx.onnx'} (config.json matches)")
        return d
    from quant.export import export

    r = export(cfg, d, ckpt, log=log)
    log(f"export: wrote {r.onnx_path}")
    return d


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


def _lazy(module: str, func: str):
    """A subcommand implemented in a later stage's package, imported only when it runs."""

    def run(args) -> int:
        import importlib

        return getattr(importlib.import_module(module), func)(args)

    return run


def _lazy_args(module: str, func: str):
    import importlib

    return getattr(importlib.import_module(module), func)


def cmd_hls(args) -> int:
    import time

    cfg = resolve_config(args)
    t = time.perf_counter()
    d = ensure_export(cfg, args.ckpt, args.build_root)
    export_s = round(time.perf_counter() - t, 3)
    from hls.flow import HlsRequest, run

    req = HlsRequest(
        d,
        macs=args.macs,
        target_fps=args.target_fps,
        split=not args.no_split,
        fifo_depths=args.fifo_depths,
        clk_ns=args.clk_ns,
        baseline=not args.no_baseline,
        prior_timings={"export (or reuse) of the QONNX model": export_s},
    )
    out = run(req)
    print(f"hls: report {out / 'report' / 'report.md'}")
    return 0


def add_variant_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--macs", type=int, help="MAC-unit budget: sum of PE*SIMD over MVAUs (default 2048)")
    g.add_argument("--target-fps", type=float, help="target frames per second")
    p.add_argument(
        "--no-split",
        action="store_true",
        help="fold every MVAU with PE | MH only, never split one into two (variant hls-…-nosplit)",
    )
    p.add_argument(
        "--fifo-depths",
        type=Path,
        metavar="JSON",
        help="FIFO depths sized by `python -m sim.fifo_sizing` (variant hls-…-fifo<sha8 of the file>)",
    )


def variant_dir(args) -> Path:
    """The hls variant directory of the configuration the arguments name; the earlier stages
    (export, hls) run first when their outputs are missing, as ``make hls`` would run them."""
    from hls.flow import HlsRequest, run

    cfg = resolve_config(args)
    d = cfg.path(Path(args.build_root))
    cfg.check_dir(d, ignore=("seed",))  # here --seed is the seed of the input vectors
    req = HlsRequest(d, args.macs, args.target_fps, split=not args.no_split, fifo_depths=args.fifo_depths)
    v = d / req.variant
    if not (v / "model.hw.onnx").exists():
        print(f"{args.cmd}: no {v / 'model.hw.onnx'} yet; running the hls stage first")
        export_cfg = BuildConfig(**{**asdict(cfg), "seed": 0}) if not cfg.ckpt_sha256 else cfg
        exported = ensure_export(export_cfg, args.ckpt, args.build_root)
        run(HlsRequest(exported, req.macs, req.target_fps, req.split, req.fifo_depths))
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
    from sim.graph import simulate

    vectors = v / "vectors"
    if not (vectors / "manifest.json").exists():
        print(f"sim: no golden vectors yet; writing {vectors} first")
        write_vectors(v, vectors, n=1, seed=0)
    report = simulate(v, vectors, simulator=args.sim)
    ok = report.get("all_bit_exact") and report.get("all_intervals_match")
    print(f"sim: report {v / 'sim' / 'report.md'}")
    return 0 if ok else 1


# ----------------------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hwcsp", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    s = sub.add_parser("models", help="every registered model at its paper size")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("info", help="per-layer table and BFLOPs chart of one model")
    s.add_argument("model")
    s.add_argument("--size", type=int)
    s.add_argument("--width", type=float, default=1.0)
    s.add_argument("--json", action="store_true")
    s.add_argument("--build-root", default="build")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("export", help="QONNX export of a configuration")
    add_config_args(s)
    s.add_argument("-o", "--output", type=Path, help="also copy the QONNX file here")
    s.set_defaults(func=cmd_export)

    for name, help_ in (
        ("train", "float training or QAT on the offline digits data (or a COCO folder)"),
        ("eval", "mAP of float, QAT or integer execution, through pycocotools"),
        ("detect", "draw detections on an image"),
    ):
        s = sub.add_parser(name, help=help_)
        add_config_args(s)
        s.set_defaults(func=_lazy("quant.commands", f"cmd_{name}"))
        _lazy_args("quant.commands", f"add_{name}_args")(s)

    s = sub.add_parser("hls", help="FINN lowering, folding, HLS code and reports (the main job)")
    add_config_args(s)
    add_variant_args(s)
    s.add_argument("--clk-ns", type=float, default=5.0, help="clock period in ns (default 5)")
    s.add_argument("--no-baseline", action="store_true", help="skip FINN's SetFolding sweep in the report")
    s.set_defaults(func=cmd_hls)

    s = sub.add_parser("golden", help="golden vectors of the integer dataflow graph")
    add_config_args(s, seed_help="seed of the random input vectors")
    s.add_argument("--n", type=int, default=1, help="number of input frames")
    add_variant_args(s)
    s.set_defaults(func=cmd_golden)

    s = sub.add_parser("sim", help="RTL simulation of every node on its golden vectors")
    add_config_args(s)
    s.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    add_variant_args(s)
    s.set_defaults(func=cmd_sim)
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
    except _user_errors() as e:
        print(f"hwcsp {args.cmd}: error: {e}", file=sys.stderr)
        return EXIT_USER


def _user_errors() -> tuple[type[Exception], ...]:
    """UserError, plus the golden model's own error class (golden cannot import hwcsp)."""
    errors: list[type[Exception]] = [UserError]
    golden_errors = sys.modules.get("golden.errors")
    if golden_errors is not None:
        errors.append(golden_errors.GoldenError)
    return tuple(errors)


if __name__ == "__main__":
    sys.exit(main())
