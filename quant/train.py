"""Float training and QAT of the zoo's detectors and classifiers (``hwcsp train``, ``make train``,
``torchrun``). The loop is shared; data, loss, QAT calibration and the validation score are the
task's (``quant.tasks``: YOLO loss and mAP, or cross-entropy and top-1 / top-5).

Run directory (``--out``, default ``<build-root>/<config>/train-seed<SEED>/`` where ``<config>`` is
the configuration's build directory name, ``<model>-s<SIZE>-w<WIDTH>-w<WBITS>a<ABITS>`` for QAT and
``<model>-s<SIZE>-w<WIDTH>-float`` for float training)::

    train.json        the run's configuration, data, anchors (written before the first epoch ends)
    metrics.jsonl     one record every --log-every steps and one per epoch (with val mAP)
    epoch-NNN.pt      checkpoint after epoch NNN (weights_only-loadable: tensors + JSON metadata)
    last.pt           the latest epoch's checkpoint
    resume.pt         optimizer state and position, for --resume

Every file is replaced atomically at the end of an epoch, so an interrupted run leaves the last
complete epoch behind and a failing one (bad input) leaves nothing.

Reproducibility: the seed fixes the initial weights, k-means anchors and the batch order (one
permutation per epoch from (seed, epoch)); there is no other randomness.

Distributed (``torchrun --nproc_per_node=2 -m quant.train ...``, gloo on CPU): each step's global
batch is cut into world x accum micro-batches; rank r takes micro-batches r*accum..(r+1)*accum-1.
BatchNorm normalises per micro-batch; its running statistics are updated from the step's starting
values by every micro-batch and averaged over micro-batches and ranks, so a 2-process run equals a
1-process run accumulating the same two micro-batches (tests/test_ddp.py). Several machines:
``torchrun --nnodes N --rdzv-backend c10d --rdzv-endpoint HOST:PORT ...`` (README); each node's local
rank 0 fills that node's data cache, global rank 0 alone calibrates and writes checkpoints.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from golden.errors import HwcspError
from golden.fsutil import atomic_write, sha256_file
from hwcsp.errors import UserError
from quant.anchors import Level
from quant.checkpoint import CheckpointError, check_matches, load_checkpoint, save_checkpoint
from quant.device import dist_backend, resolve_device, to_device
from quant.loss import yolo_loss
from quant.tasks import TASKS, _calibrate_by_loss

N_CALIB = 32  # training images that set the activation scales before QAT


class TrainError(UserError, RuntimeError):
    pass


@dataclass
class TrainConfig:
    model: str
    size: int
    width: float = 1.0
    wbits: int = 4
    abits: int = 4
    mode: str = "qat"  # "float" or "qat"
    num_classes: int | None = None  # None: the data's
    init: str | None = None  # checkpoint to start from (a float one for QAT)
    data: str = "digits"  # "digits" or a COCO folder
    data_seed: int = 0
    train_images: int | None = None  # None: the whole split
    val_images: int = 1000
    epochs: int = 10
    batch: int = 32  # global batch (all ranks, all accumulation steps)
    accum: int = 1
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 300  # steps
    clip: float = 10.0
    scale_lr_mult: float = 1.0  # learning-rate factor of the activation scales (QAT)
    calib_percentile: float | None = None  # QAT from float: None = the best of CALIB_PERCENTILES
    seed: int = 0
    out: str | None = None
    build_root: str = "build"
    cache: str | None = "build/cache"  # digits image cache; None: generate in memory
    resume: bool = False
    stop_after: int | None = None  # end this process after that epoch (as if interrupted); --resume continues
    threads: int | None = None
    device: str = "auto"  # quant.device: auto (a GPU when torch sees one), cpu or cuda
    log_every: int = 50
    log_shards: bool = False  # record the sample indices each rank trains on (DDP test)
    progress: bool = True

    def run_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        tag = "float" if self.mode == "float" else f"w{self.wbits}a{self.abits}"
        return (
            Path(self.build_root)
            / f"{self.model}-s{self.size}-w{self.width:g}-{tag}"
            / f"train-seed{self.seed}"
        )

    def identity(self) -> dict:
        """Fields a resumed run must share with the original."""
        skip = {
            "out",
            "build_root",
            "cache",
            "resume",
            "stop_after",
            "threads",
            "device",
            "progress",
            "log_every",
            "log_shards",
        }
        return {k: v for k, v in asdict(self).items() if k not in skip}


@dataclass
class TrainResult:
    run_dir: Path
    last: Path
    epochs: int
    metrics: list[dict] = field(default_factory=list)


# ----------------------------------------------------------------------------- model
def create_net(cfg: TrainConfig, num_classes: int) -> nn.Module:
    import hwcsp

    torch.manual_seed(cfg.seed)
    return hwcsp.create_model(
        cfg.model,
        size=cfg.size,
        width=cfg.width,
        wbits=cfg.wbits,
        abits=cfg.abits,
        num_classes=num_classes,
        quant=cfg.mode == "qat",
    )


def load_weights(net: nn.Module, state: dict, path: Path) -> None:
    """Load a checkpoint's weights; a float checkpoint into a quantized net lacks only act scales and
    the frozen zero biases of BatchNorm convs, a QAT one into a float net has only those extra."""
    own = net.state_dict()
    if state and all(k.startswith("module.") for k in state):  # saved from a DDP wrapper elsewhere
        state = {k.removeprefix("module."): v for k, v in state.items()}
    extra_ok = ("acts.", "signed_acts.")
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    allowed = [k for k in missing + unexpected if k.startswith(extra_ok) or k.endswith("conv.bias")]
    bad = [k for k in missing + unexpected if k not in allowed]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if bad or shapes:
        detail = f"missing/unexpected {bad[:3]}" if bad else f"shape of {shapes[:3]}"
        raise CheckpointError(f"checkpoint '{path}' does not fit this model: {detail}")
    net.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


def calibrate_for_qat(
    net: nn.Module,
    x: torch.Tensor,
    targets: list[dict[str, torch.Tensor]],
    levels: list[Level],
    percentile: float | None = None,
    log: Callable[[str], None] = print,
) -> float:
    """A detector's QAT calibration (``quant.tasks``): the percentile with the lowest YOLO loss."""
    size = (x.shape[2], x.shape[3])
    return _calibrate_by_loss(
        net, x, percentile, lambda out: yolo_loss(out, targets, levels, size).total, log
    )


def make_optimizer(net: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on conv weights only. The activation scales (log2 parameters rounded to
    integers in the forward pass) get ``scale_lr_mult`` times the learning rate: at the weights'
    rate they would hardly ever cross a rounding boundary, i.e. never change."""
    decay, scales, rest = [], [], []
    for name, p in net.named_parameters():
        if p.requires_grad:
            (decay if p.ndim == 4 else scales if name.startswith("acts.") else rest).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay, "lr_mult": 1.0},
        {"params": rest, "weight_decay": 0.0, "lr_mult": 1.0},
        {"params": scales, "weight_decay": 0.0, "lr_mult": cfg.scale_lr_mult},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr)


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 2% of the peak."""
    warm = min(cfg.warmup, max(1, total // 5))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


class BNStats:
    """BatchNorm running statistics averaged over a step's micro-batches and ranks."""

    def __init__(self, net: nn.Module):
        self.bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def _flat(self) -> torch.Tensor:
        return torch.cat([t for m in self.bns for t in (m.running_mean, m.running_var)])

    def _set(self, flat: torch.Tensor) -> None:
        i = 0
        for m in self.bns:
            for t in (m.running_mean, m.running_var):
                t.copy_(flat[i : i + t.numel()])
                i += t.numel()

    @torch.no_grad()
    def start(self) -> None:
        self.base = self._flat().clone()
        self.tracked = [m.num_batches_tracked.clone() for m in self.bns]
        self.acc = torch.zeros_like(self.base)
        self.count = 0

    @torch.no_grad()
    def before_micro(self) -> None:
        if self.count:
            self._set(self.base)
            for m, t in zip(self.bns, self.tracked, strict=True):
                m.num_batches_tracked.copy_(t)

    @torch.no_grad()
    def after_micro(self) -> None:
        self.acc += self._flat()
        self.count += 1

    @torch.no_grad()
    def finish(self, world: int) -> None:
        flat = self.acc / self.count
        if world > 1:
            dist.all_reduce(flat)
            flat /= world
        self._set(flat)


# ----------------------------------------------------------------------------- run directory
def _meta(cfg: TrainConfig, task_meta: dict, classes: list[str], epoch: int, extra: dict) -> dict:
    return {
        "model": cfg.model,
        "size": cfg.size,
        "width": cfg.width,
        "wbits": cfg.wbits if cfg.mode == "qat" else None,
        "abits": cfg.abits if cfg.mode == "qat" else None,
        "num_classes": len(classes),
        "quant": cfg.mode == "qat",
        **task_meta,
        "classes": list(classes),
        "seed": cfg.seed,
        "epoch": epoch,
        "epochs": cfg.epochs,
        "data": cfg.data,
        "data_seed": cfg.data_seed,
        **extra,
    }


def _write_jsonl(path: Path, records: list[dict]) -> None:
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in records))


def _read_resume(run: Path, cfg: TrainConfig) -> tuple[dict, dict, dict, list[dict]]:
    """(weights, meta, resume state, metrics) of an interrupted run, checked against ``cfg``."""
    for f in ("train.json", "last.pt", "resume.pt"):
        if not (run / f).is_file():
            raise TrainError(f"--resume: {run / f} does not exist (no completed epoch to resume from)")
    saved = json.loads((run / "train.json").read_text())["config"]
    diff = {k: (saved.get(k), v) for k, v in cfg.identity().items() if saved.get(k) != v}
    if diff:
        detail = ", ".join(f"{k}: run has {a!r}, asked {b!r}" for k, (a, b) in sorted(diff.items()))
        raise TrainError(f"--resume: {run} was started with another configuration ({detail})")
    state, meta = load_checkpoint(run / "last.pt")
    try:
        resume = torch.load(run / "resume.pt", map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{run / 'resume.pt'} cannot be read: {str(e).splitlines()[0]}") from e
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return state, meta, resume, metrics


# ----------------------------------------------------------------------------- training
def _dist_env(requested: str = "auto") -> tuple[int, int, int, torch.device]:
    """(global rank, world size, rank on this node, device) under torchrun, else (0, 1, 0, device):
    NCCL between GPUs, gloo between CPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(requested, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(dist_backend(device))
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), local_rank, device
    return 0, 1, 0, device


def train(cfg: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    """Train ``cfg``; returns where the checkpoints are. Raises ``UserError`` on bad input."""
    from tqdm import tqdm

    if cfg.mode not in ("float", "qat"):
        raise TrainError(f"mode must be 'float' or 'qat', got {cfg.mode!r}")
    rank, world, local_rank, device = _dist_env(cfg.device)
    if cfg.batch % (world * cfg.accum):
        raise TrainError(f"batch {cfg.batch} does not split into {world} ranks x {cfg.accum} micro-batches")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    say = log if rank == 0 else (lambda _m: None)
    run = cfg.run_dir()
    if not cfg.resume and (run / "last.pt").exists():
        raise TrainError(f"{run} already holds a run; pass --resume to continue it or --out for a new one")

    # starting point: resumed run, init checkpoint or seed
    init_state, init_meta, init_path = None, {}, None
    resume_state: dict | None = None
    metrics: list[dict] = []
    if cfg.resume:
        init_state, init_meta, resume_state, metrics = _read_resume(run, cfg)
        init_path = run / "last.pt"
    elif cfg.init:
        init_path = Path(cfg.init)
        init_state, init_meta = load_checkpoint(init_path)
        check_matches(init_meta, init_path, model=cfg.model, size=cfg.size, width=cfg.width)
        if init_meta["quant"] and cfg.mode == "float":
            raise TrainError(
                f"--init {init_path} is a QAT checkpoint; float training starts from a float one"
            )
        if init_meta["quant"]:
            check_matches(init_meta, init_path, wbits=cfg.wbits, abits=cfg.abits)

    from hwcsp.registry import get_entry

    task = TASKS[get_entry(cfg.model).task]()
    data = task.load(cfg, local_rank)
    classes = data.class_names
    if init_meta.get("classes") is not None and list(init_meta["classes"]) != classes:
        raise TrainError(f"{init_path} was trained on classes {init_meta['classes']}, the data has {classes}")
    if cfg.num_classes is not None and cfg.num_classes != len(classes):
        raise TrainError(f"--num-classes {cfg.num_classes}, but {data.name} has {len(classes)} categories")
    if init_meta and init_meta["num_classes"] != len(classes):
        raise TrainError(
            f"{init_path} predicts {init_meta['num_classes']} classes, {data.name} has {len(classes)}"
        )

    net = create_net(cfg, len(classes))
    task.setup(net, data, init_meta, init_path, cfg, say)
    # Calibration runs on rank 0 only: the other ranks receive its result with the weights (DDP
    # broadcasts rank 0's parameters and buffers when it wraps the model, below).
    if init_state is not None:
        load_weights(net, init_state, init_path)
        if cfg.mode == "qat" and not init_meta["quant"] and rank == 0:
            x, tg = data.batch(np.arange(min(N_CALIB, len(data.images))))
            pct = task.calibrate_qat(net, x, tg, cfg.calib_percentile, cfg.size, say)
            say(f"QAT from float {init_path}: scales at the {pct:g}th percentile of {len(x)} images")
    elif cfg.mode == "qat" and rank == 0:
        from quant.calibrate import calibrate

        x, _ = data.batch(np.arange(min(N_CALIB, len(data.images))))
        calibrate(net, x, set_bn=True)  # seeded weights: BatchNorm statistics and scales from data
        say("QAT from scratch: BatchNorm statistics and activation scales calibrated on seeded weights")

    net.to(device)  # after calibration, which stays on the CPU (a no-op there)
    val = task.load_val(cfg) if rank == 0 else None
    opt = make_optimizer(net, cfg)
    steps_per_epoch = len(data.images) // cfg.batch
    if steps_per_epoch == 0:
        raise TrainError(f"{len(data.images)} training images do not fill one batch of {cfg.batch}")
    total = steps_per_epoch * cfg.epochs
    start_epoch, step = 0, 0
    if resume_state is not None:
        opt.load_state_dict(resume_state["optimizer"])
        start_epoch, step = int(resume_state["epoch"]), int(resume_state["step"])
        say(f"resuming {run} after epoch {start_epoch} (step {step})")
    model: nn.Module = net
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(  # BNStats syncs the buffers
            net, device_ids=ids, forward_sync_buffers=False
        )
    bn = BNStats(net)
    micro = cfg.batch // (world * cfg.accum)
    init_info = {"path": str(cfg.init), "sha256": sha256_file(cfg.init)} if cfg.init else None
    train_json = {
        "config": cfg.identity(),
        "data": data.name,
        "train_images": len(data.images),
        "classes": classes,
        **task.meta(),
        "init": init_info,
        "world_size": world,
        "device": device.type,
        "params": sum(p.numel() for p in net.parameters()),
    }
    shards: list[list[int]] = []
    last = run / "last.pt"
    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        order = torch.randperm(
            len(data.images), generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        )
        order = order.numpy()
        sums = dict.fromkeys(("loss", *task.parts), 0.0)
        t0, seen = time.time(), 0
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=rank != 0 or not cfg.progress,
            mininterval=1 if sys.stderr.isatty() else 30,
            dynamic_ncols=True,
        )
        for s in bar:
            lr = lr_at(step, total, cfg)
            for g in opt.param_groups:
                g["lr"] = lr * g["lr_mult"]
            glob = order[s * cfg.batch : (s + 1) * cfg.batch]
            mine = glob.reshape(world * cfg.accum, micro)[rank * cfg.accum : (rank + 1) * cfg.accum]
            if cfg.log_shards:
                shards.extend(m.tolist() for m in mine)
            bn.start()
            parts = []
            for j, idx in enumerate(mine):
                bn.before_micro()
                x, tg = to_device(data.batch(idx), device)
                sync = j == cfg.accum - 1 or world == 1
                ctx = model.no_sync() if not sync else nullcontext()
                with ctx:
                    lp = task.loss(model(x), tg, cfg.size)
                    (lp.total / cfg.accum).backward()
                bn.after_micro()
                parts.append(lp)
            bn.finish(world)
            if cfg.clip:
                nn.utils.clip_grad_norm_(net.parameters(), cfg.clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            seen += cfg.batch
            loss = sum(float(p.total.detach()) for p in parts) / len(parts)
            for k, v in (
                ("loss", loss),
                *((k, sum(p.parts[k] for p in parts) / len(parts)) for k in task.parts),
            ):
                sums[k] += v
            ips = seen / max(time.time() - t0, 1e-9)
            bar.set_postfix(loss=f"{loss:.3f}", img_s=f"{ips:.1f}", lr=f"{lr:.2e}", refresh=False)
            if rank == 0 and cfg.log_every and step % cfg.log_every == 0:
                metrics.append(
                    {
                        "kind": "step",
                        "epoch": epoch + 1,
                        "step": step,
                        "loss": round(loss, 5),
                        "lr": lr,
                        "img_s": round(ips, 2),
                    }
                )
        bar.close()
        seconds = time.time() - t0
        record = {
            "kind": "epoch",
            "epoch": epoch + 1,
            "step": step,
            **{k: round(v / steps_per_epoch, 5) for k, v in sums.items()},
            "lr": lr_at(step - 1, total, cfg),
            "img_s": round(seen / seconds, 2),
            "seconds": round(seconds, 1),
            "world_size": world,
        }
        if rank == 0:
            if val is not None:
                record.update(task.evaluate(net, val, cfg))
                net.train()
            metrics.append(record)
            scores = {k: v for k, v in record.items() if k.startswith("val_") and k != "val_images"}
            meta = _meta(cfg, task.meta(), classes, epoch + 1, {"init": init_info, "val": scores})
            ckpt = run / f"epoch-{epoch + 1:03d}.pt"
            atomic_write(run / "train.json", json.dumps(train_json, indent=1) + "\n")
            save_checkpoint(ckpt, net.state_dict(), meta)
            save_checkpoint(last, net.state_dict(), meta)
            buf = io.BytesIO()
            torch.save({"optimizer": opt.state_dict(), "epoch": epoch + 1, "step": step}, buf)
            atomic_write(run / "resume.pt", buf.getvalue())
            _write_jsonl(run / "metrics.jsonl", metrics)
            val_txt = task.describe(record) if val is not None else ""
            speed = f"{record['img_s']:.1f} img/s, {seconds:.0f} s"
            say(f"epoch {epoch + 1}: loss {record['loss']:.4f}, {speed}{val_txt} -> {ckpt}")
        if cfg.log_shards:
            atomic_write(
                run / f"shards-rank{rank}.json",
                json.dumps({"rank": rank, "world_size": world, "micro_batches": shards}) + "\n",
            )
        if world > 1:
            dist.barrier()
        if cfg.stop_after is not None and epoch + 1 >= cfg.stop_after and epoch + 1 < cfg.epochs:
            say(f"stopping after epoch {epoch + 1} as asked; --resume continues")
            return TrainResult(run, last, epoch + 1, metrics)
    return TrainResult(run, last, cfg.epochs, metrics)


# ----------------------------------------------------------------------------- entry point
def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A ``TrainConfig`` from ``hwcsp train`` / ``python -m quant.train`` arguments."""
    from hwcsp.registry import get_entry

    entry = get_entry(args.model)
    init = args.init
    if args.ckpt is not None:
        if init is not None and Path(init) != Path(args.ckpt):
            raise TrainError("--ckpt and --init name different checkpoints; give one (--init) to start from")
        init = args.ckpt
    init_meta: dict = {}
    if init is not None and not args.resume:
        _, init_meta = load_checkpoint(Path(init))
    size = args.size or init_meta.get("size") or entry.paper_size
    width = args.width or init_meta.get("width") or 1.0
    kw = {}
    for k in (
        "epochs",
        "batch",
        "accum",
        "lr",
        "weight_decay",
        "warmup",
        "val_images",
        "train_images",
        "threads",
        "device",
        "scale_lr_mult",
        "calib_percentile",
    ):
        v = getattr(args, k, None)
        if v is not None:
            kw[k] = v
    return TrainConfig(
        model=args.model,
        size=int(size),
        width=float(width),
        wbits=args.wbits or 4,
        abits=args.abits or 4,
        mode=args.mode,
        num_classes=args.num_classes,
        init=str(init) if init is not None else None,
        data=args.data,
        seed=args.seed,
        out=str(args.out) if args.out else None,
        build_root=args.build_root,
        cache=str(Path(args.build_root) / "cache"),
        resume=args.resume,
        log_shards=args.log_shards,
        progress=not args.no_progress,
        **kw,
    )


def cmd_train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    r = train(cfg)
    if not dist.is_initialized() or dist.get_rank() == 0:
        print(f"train: checkpoints in {r.run_dir} (latest {r.last})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m quant.train`` (what ``torchrun`` launches); same arguments as ``hwcsp train``."""
    from quant.args import add_config_args, add_train_args

    p = argparse.ArgumentParser(prog="python -m quant.train", description=__doc__.splitlines()[0])
    add_config_args(p)
    add_train_args(p)
    args = p.parse_args(argv)
    try:
        return cmd_train(args)
    except HwcspError as e:
        print(f"train: error: {e}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
