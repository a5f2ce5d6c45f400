"""torchrun with 2 processes (DDP, gloo), on one node or as two nodes through c10d rendezvous, equals
1 process accumulating the same two micro-batches."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from quant.checkpoint import load_checkpoint

ARGS = [
    "cspdensenetb-ref-prn",
    "--size",
    "64",
    "--width",
    "0.25",
    "--mode",
    "qat",  # QAT: the folded weights depend on BatchNorm running statistics, the harder case
    "--train-images",
    "16",
    "--batch",
    "8",
    "--epochs",
    "1",
    "--warmup",
    "1",
    "--val-images",
    "0",
    "--threads",
    "1",
    "--no-progress",
    "--log-shards",
]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, cwd=os.getcwd(), env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    """One process accumulating the two micro-batches of each step."""
    tmp = tmp_path_factory.mktemp("ddp")
    one = tmp / "one"
    run(
        [
            sys.executable,
            "-m",
            "quant.train",
            *ARGS,
            "--build-root",
            str(tmp / "build"),
            "--accum",
            "2",
            "--out",
            str(one),
        ]
    )
    return one


def check_equal_to_single(two: Path, single: Path) -> None:
    ranks = [json.loads((two / f"shards-rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and [r["rank"] for r in ranks] == [0, 1]
    s0, s1 = ({i for mb in r["micro_batches"] for i in mb} for r in ranks)
    assert s0 and s1 and not s0 & s1  # disjoint shards
    # the single process saw exactly the same micro-batches, in rank order within each step
    one = json.loads((single / "shards-rank0.json").read_text())
    assert one["world_size"] == 1
    interleaved = [
        mb for pair in zip(ranks[0]["micro_batches"], ranks[1]["micro_batches"], strict=True) for mb in pair
    ]
    assert one["micro_batches"] == interleaved and len(interleaved) == 4  # 2 steps x 2 micro-batches

    assert json.loads((two / "train.json").read_text())["world_size"] == 2
    a, _ = load_checkpoint(single / "last.pt")
    b, _ = load_checkpoint(two / "last.pt")
    assert a.keys() == b.keys() and not any(k.startswith("module.") for k in b)
    worst = 0.0
    for k in a:
        if a[k].is_floating_point():
            rel = float((a[k] - b[k]).norm() / a[k].norm().clamp(min=1e-12))
            worst = max(worst, rel)
    print(f"largest relative difference of a tensor: {worst:.3g}")
    assert worst <= 1e-6, worst
    # and training did change the weights (the comparison is not between two untouched inits)
    import hwcsp

    torch.manual_seed(0)
    init = hwcsp.create_model("cspdensenetb-ref-prn", size=64, width=0.25, num_classes=10).state_dict()
    assert not torch.equal(init["layers.stem.conv.weight"], a["layers.stem.conv.weight"])


def test_two_processes_equal_one_process_accumulating(tmp_path, single):
    two = tmp_path / "two"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    run([*torchrun, "-m", "quant.train", *ARGS, "--build-root", str(tmp_path / "build"), "--out", str(two)])
    check_equal_to_single(two, single)


def test_two_nodes_equal_one_process_accumulating(tmp_path, single):
    """Two "nodes" (one process each) meeting through c10d rendezvous, each with its own build
    directory as separate machines have: each node fills its own data cache (local rank 0), rank 0
    alone calibrates (DDP hands its scales to the other rank) and writes the checkpoints."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    two = tmp_path / "two"
    procs = []
    for node in (0, 1):
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "hwcsp-test",
            "-m", "quant.train", *ARGS, "--build-root", str(tmp_path / f"node{node}"), "--out", str(two),
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for node in (0, 1):  # each node generated its own cache
        assert list((tmp_path / f"node{node}" / "cache").glob("digits-train-*/images.npy")), node
    check_equal_to_single(two, single)
