"""Where training runs: ``--device auto|cpu|cuda`` and the DDP backend that goes with it.

``auto`` takes the GPU of this process's local rank when torch sees one, else the CPU. DDP uses
NCCL between GPUs and gloo between CPUs. Calibration and export always run on the CPU (the export
is byte-identical only there); checkpoints are written from CPU copies, so one written on a GPU
loads on a CPU.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import Any

import torch

from hwcsp.errors import UserError

DEVICES = ("auto", "cpu", "cuda")


class DeviceError(UserError, ValueError):
    pass


def resolve_device(
    requested: str, local_rank: int = 0, cuda_available: bool | None = None, cuda_count: int | None = None
) -> torch.device:
    """The device one training process uses (``cuda_*`` override what torch reports, for tests)."""
    if requested not in DEVICES:
        raise DeviceError(f"--device {requested}: choose one of {', '.join(DEVICES)}")
    available = torch.cuda.is_available() if cuda_available is None else cuda_available
    if requested == "cpu" or (requested == "auto" and not available):
        return torch.device("cpu")
    if not available:
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise DeviceError(f"--device cuda: torch ({torch.__version__}, {build}) sees no CUDA GPU")
    count = torch.cuda.device_count() if cuda_count is None else cuda_count
    if local_rank >= count:
        raise DeviceError(
            f"--device cuda: local rank {local_rank} needs GPU {local_rank}, this machine has {count}; "
            "start at most one process per GPU (torchrun --nproc-per-node)"
        )
    return torch.device("cuda", local_rank)


def dist_backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def to_device(obj: Any, device: torch.device) -> Any:
    """Tensors inside ``obj`` (lists, tuples, dicts, dataclasses) on ``device``; the same object
    when nothing moves (the CPU path)."""
    if device.type == "cpu":
        return obj
    if torch.is_tensor(obj):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_device(v, device) for v in obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return replace(obj, **{f.name: to_device(getattr(obj, f.name), device) for f in fields(obj)})
    return obj
