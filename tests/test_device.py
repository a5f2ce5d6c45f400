"""--device auto|cpu|cuda (quant.device): the choice, the DDP backend, and a GPU run where one exists.

Everything but the last test runs without a GPU: the choice is a function of what torch reports,
which the tests pass in. The GPU test trains on the GPU and checks that its checkpoint loads on the
CPU and exports there byte-identically to the same weights written from the CPU; it is skipped with
its reason on machines without a CUDA GPU (this one).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from quant.device import DeviceError, dist_backend, resolve_device, to_device
from quant.targets import Assigned

try:
    from golden_helpers.cli import hwcsp
except ImportError:  # tests/ imported as a package
    from tests.golden_helpers.cli import hwcsp


def test_auto_takes_the_gpu_of_the_local_rank_when_there_is_one():
    assert resolve_device("auto", 0, cuda_available=False) == torch.device("cpu")
    assert resolve_device("auto", 1, cuda_available=True, cuda_count=2) == torch.device("cuda", 1)
    assert resolve_device("cpu", 0, cuda_available=True, cuda_count=2) == torch.device("cpu")
    assert resolve_device("cuda", 0, cuda_available=True, cuda_count=1) == torch.device("cuda", 0)


@pytest.mark.parametrize(
    "requested, rank, available, count, message",
    [
        ("cuda", 0, False, 0, "sees no CUDA GPU"),
        ("cuda", 2, True, 2, "local rank 2 needs GPU 2, this machine has 2"),
        ("auto", 1, True, 1, "local rank 1 needs GPU 1"),
        ("tpu", 0, False, 0, "choose one of auto, cpu, cuda"),
    ],
)
def test_impossible_choices_are_one_clear_error(requested, rank, available, count, message):
    with pytest.raises(DeviceError, match=message):
        resolve_device(requested, rank, cuda_available=available, cuda_count=count)


def test_nccl_between_gpus_gloo_between_cpus():
    assert dist_backend(torch.device("cuda", 0)) == "nccl"
    assert dist_backend(torch.device("cpu")) == "gloo"


def test_moving_to_the_cpu_changes_nothing_and_nested_targets_are_moved():
    batch = (torch.zeros(2, 3), [{"boxes": torch.ones(1, 4), "labels": torch.zeros(1)}])
    assert to_device(batch, torch.device("cpu")) is batch  # the tested CPU path: no copies
    z = torch.zeros(0, dtype=torch.int64)
    asg = Assigned(z, z, z, z, torch.zeros(0, 2), torch.zeros(0, 2), z, torch.zeros(0))
    meta = torch.device("meta")  # a device without a GPU: every tensor must arrive there
    moved = to_device({"x": [torch.ones(2)], "asg": asg, "n": 3}, meta)
    assert moved["x"][0].device == meta and moved["n"] == 3
    assert all(getattr(moved["asg"], f).device == meta for f in ("b", "txy", "weight"))


def test_cuda_on_a_machine_without_one_exits_2_with_one_line(tmp_path):
    r = hwcsp(
        "train", "cspdensenetb-ref-prn", "--size", "64", "--width", "0.25", "--mode", "float",
        "--epochs", "1", "--device", "cuda", "--out", str(tmp_path / "run"), timeout=300,
    )  # fmt: skip
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines() == [
        next(line for line in r.stderr.splitlines() if "sees no CUDA GPU" in line)
    ], r.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none visible to torch here)")
def test_a_gpu_checkpoint_loads_and_exports_on_the_cpu_like_a_cpu_one(tmp_path):
    from hwcsp.buildcfg import BuildConfig
    from quant.checkpoint import load_checkpoint, save_checkpoint
    from quant.export import export
    from quant.train import TrainConfig, train

    cfg = TrainConfig(
        model="cspdensenetb-ref-prn", size=64, width=0.25, mode="float", train_images=32, val_images=0,
        epochs=1, batch=16, warmup=1, cache=None, progress=False, device="cuda",
    )  # fmt: skip
    gpu = train(replace(cfg, out=str(tmp_path / "gpu")), log=lambda *_: None)
    state, meta = load_checkpoint(gpu.last)
    assert all(t.device.type == "cpu" for t in state.values())
    cpu_ckpt = tmp_path / "cpu.pt"
    save_checkpoint(cpu_ckpt, {k: v.clone() for k, v in state.items()}, meta)
    outs = []
    for ck in (gpu.last, cpu_ckpt):
        bc = BuildConfig(model=cfg.model, size=64, width=0.25, num_classes=10, ckpt_sha256="x")
        outs.append(export(bc, tmp_path / ck.stem, ck, log=lambda *_: None).onnx_path.read_bytes())
    assert outs[0] == outs[1]
