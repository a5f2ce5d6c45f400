"""``hwcsp train``, ``hwcsp eval`` and ``hwcsp detect`` (wired into ``hwcsp.cli``).

This module is imported whenever the CLI builds its parser, so it imports nothing heavy at the top.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hwcsp.errors import UserError

MODES = ("float", "qat", "int")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mode", choices=MODES, help="float, qat or int execution (default: the checkpoint's kind)"
    )
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        help="float/qat execution: a GPU when torch sees one (auto, the default), the CPU, or the GPU",
    )
    from quant.args import add_variant_args

    add_variant_args(p)  # int mode: which HLS folding variant (default: the --macs 2048 one)


def add_eval_args(p: argparse.ArgumentParser) -> None:
    _add_common(p)
    p.add_argument("--data", default="digits", help="'digits' (its val split) or a COCO folder")
    p.add_argument("--images", type=int, default=1000, help="evaluate the first N images (default 1000)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the digits data (default 0)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--conf", type=float, default=0.005, help="score threshold before NMS (default 0.005)")


class _IntermixedParser(argparse.ArgumentParser):
    """Lets the optional IMAGE positional follow options (``detect MODEL --ckpt F IMAGE``): plain
    argparse binds an optional positional, empty, to the first positional chunk (MODEL)."""

    _inside = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inside:
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            ns, rest = self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False
        if getattr(ns, "image", None) is None and Path(ns.model).suffix.lower() in IMAGE_SUFFIXES:
            ns.image, ns.model = Path(ns.model), None  # ``detect --ckpt F IMAGE``: model from the checkpoint
        return ns, rest


def add_detect_args(p: argparse.ArgumentParser) -> None:
    if type(p) is argparse.ArgumentParser:
        p.__class__ = _IntermixedParser
    _add_common(p)
    p.add_argument("image", nargs="?", type=Path, help="image file (any size; resized to the model's)")
    p.add_argument(
        "-o", "--output", type=Path, help="PNG to write (default build/<config>/detect/<image>.png)"
    )
    p.add_argument("--conf", type=float, default=0.3, help="score threshold (default 0.3)")


def cmd_train(args) -> int:
    from quant.train import cmd_train as run

    return run(args)


# ----------------------------------------------------------------------------- eval / detect
class Loaded:
    """A checkpoint resolved into a configuration, levels and a runner for one execution mode."""

    def __init__(self, args, mode_default_int: bool = False):
        import torch

        from quant.anchors import levels_from_meta, levels_of_graph
        from quant.args import resolve_config
        from quant.checkpoint import check_matches, load_checkpoint

        self.cfg = resolve_config(args)  # without --ckpt: the shipped checkpoint of the configuration
        if args.ckpt is None:
            raise UserError(
                f"{args.cmd} needs --ckpt (a checkpoint written by hwcsp train); "
                "no trained checkpoint ships for this configuration"
            )
        if getattr(args, "threads", None):
            torch.set_num_threads(args.threads)
        self.state, self.meta = load_checkpoint(args.ckpt)
        c = self.cfg
        check_matches(
            self.meta, args.ckpt, model=c.model, size=c.size, width=c.width, num_classes=c.num_classes
        )
        self.mode = args.mode or ("qat" if self.meta["quant"] else "float")
        self.args = args
        net = self._net(quant=self.mode != "float")
        self.levels = levels_from_meta(self.meta, levels_of_graph(net))
        self.classes = list(self.meta.get("classes") or [str(i) for i in range(c.num_classes)])
        if self.mode == "int":
            from quant.args import variant_of
            from quant.evaluate import IntModel

            d = c.path(Path(args.build_root))
            c.check_dir(d)
            v = d / variant_of(args).name
            fold = (
                (
                    f" MACS={args.macs}"
                    if args.macs
                    else f" TARGET_FPS={args.target_fps:g}"
                    if args.target_fps
                    else ""
                )
                + (" NOSPLIT=1" if args.no_split else "")
                + (f" FIFO_DEPTHS={args.fifo_depths}" if args.fifo_depths else "")
            )
            hint = (
                f"make hls MODEL={c.model} SIZE={c.size} WIDTH={c.width:g} WBITS={c.wbits} ABITS={c.abits} "
                f"CKPT={args.ckpt}{fold}"
            )
            im = IntModel.open(v, hint)
            if sorted(map(str, im.strides())) != sorted(str(lv.stride) for lv in self.levels):
                raise UserError(
                    f"{v}/io_spec.json: output strides {im.strides()} differ from the checkpoint's"
                )
            self.runner = im.runner([lv.stride for lv in self.levels])
        else:
            from quant.device import resolve_device
            from quant.evaluate import torch_runner

            # after any calibration (CPU); detections come back to the CPU either way
            self.runner = torch_runner(net.to(resolve_device(getattr(args, "device", None) or "auto")))

    def _net(self, quant: bool):
        from hwcsp.registry import create_model
        from quant.train import load_weights

        c = self.cfg
        if not quant:
            net = create_model(c.model, size=c.size, width=c.width, num_classes=c.num_classes, quant=False)
            load_weights(net, self.state, self.args.ckpt)
            return net
        from quant.calibrate import calibrate_until_alive
        from quant.export import build_model, calibration_input

        net, needs_calib = build_model(c, self.args.ckpt, (self.state, self.meta))
        if needs_calib and self.mode == "qat":  # a float checkpoint: scales as the export sets them
            calibrate_until_alive(net, calibration_input(c.size), set_bn=False)
        return net

    def out_dir(self, stage: str) -> Path:
        d = self.cfg.path(Path(self.args.build_root))
        self.cfg.check_dir(d)
        return d / stage


def cmd_eval(args) -> int:
    from golden.fsutil import atomic_write
    from quant.decode import PostProcess
    from quant.evaluate import check_classes, coco_eval_set, digits_eval_set, evaluate

    ld = Loaded(args)
    c = ld.cfg
    if args.data == "digits":
        evalset = digits_eval_set(c.size, args.images, args.data_seed)
    else:
        evalset = coco_eval_set(args.data, args.images)
    check_classes(evalset, ld.classes, c.num_classes)
    batch = 1 if ld.mode == "int" else args.batch  # the golden model runs frame by frame anyway
    r = evaluate(
        ld.runner, evalset, ld.levels, c.size, ld.mode, batch, PostProcess(conf=args.conf), progress=True
    )
    out = ld.out_dir("eval") / f"{ld.mode}-{evalset.name.replace('/', '_').replace(':', '_')}.json"
    record = {**r.to_json(), "ckpt": str(args.ckpt), "ckpt_sha256": c.ckpt_sha256, "data": evalset.name}
    atomic_write(out, json.dumps(record, indent=1) + "\n")
    print(
        f"eval {ld.mode}: mAP@0.5 {r.map50:.4f}  mAP@0.5:0.95 {r.map50_95:.4f}  "
        f"({r.images} images of {evalset.name}, {r.detections} detections, {r.seconds:.0f} s) -> {out}"
    )
    return 0


def cmd_detect(args) -> int:
    from quant.decode import PostProcess
    from quant.detect import draw, read_image, save_png
    from quant.evaluate import detect_images

    if args.model is None:  # ``hwcsp detect --ckpt F IMAGE``: the model comes from the checkpoint
        from quant.checkpoint import load_checkpoint

        if args.ckpt is None:
            raise UserError("detect needs --ckpt (a checkpoint written by hwcsp train)")
        args.model = load_checkpoint(args.ckpt)[1]["model"]
    if args.image is None:
        raise UserError("detect needs an IMAGE (e.g. hwcsp detect MODEL --ckpt F picture.png -o out.png)")
    image = read_image(args.image)
    ld = Loaded(args)
    (det,) = detect_images(ld.runner, [image], ld.levels, ld.cfg.size, PostProcess(conf=args.conf, iou=0.45))
    out = args.output or ld.out_dir("detect") / f"{args.image.stem}.png"
    save_png(draw(image, det, ld.classes), out)
    for box, score, label in zip(det.boxes, det.scores, det.labels, strict=True):
        print(f"  {ld.classes[int(label)]:>8} {score:.3f}  [{', '.join(f'{v:.1f}' for v in box)}]")
    print(f"detect {ld.mode}: {len(det.scores)} detections >= {args.conf} -> {out}")
    return 0
