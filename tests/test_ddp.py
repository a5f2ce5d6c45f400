"""torchrun with 2 processes (DDP, gloo) equals 1 process accumulating the same two micro-batches."""

import json
import os
import subprocess
import sys

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


def run(cmd: list[str], tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    r = subprocess.run(cmd, cwd=os.getcwd(), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_two_processes_equal_one_process_accumulating(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    common = ["--build-root", str(tmp_path / "build")]
    run([sys.executable, "-m", "quant.train", *ARGS, *common, "--accum", "2", "--out", str(one)], tmp_path)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    run([*torchrun, "-m", "quant.train", *ARGS, *common, "--out", str(two)], tmp_path)
    ranks = [json.loads((two / f"shards-rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and [r["rank"] for r in ranks] == [0, 1]
    s0, s1 = ({i for mb in r["micro_batches"] for i in mb} for r in ranks)
    assert s0 and s1 and not s0 & s1  # disjoint shards
    # the single process saw exactly the same micro-batches, in rank order within each step
    single = json.loads((one / "shards-rank0.json").read_text())
    assert single["world_size"] == 1
    interleaved = [
        mb for pair in zip(ranks[0]["micro_batches"], ranks[1]["micro_batches"], strict=True) for mb in pair
    ]
    assert single["micro_batches"] == interleaved and len(interleaved) == 4  # 2 steps x 2 micro-batches

    assert json.loads((two / "train.json").read_text())["world_size"] == 2
    a, _ = load_checkpoint(one / "last.pt")
    b, _ = load_checkpoint(two / "last.pt")
    assert a.keys() == b.keys()
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
