"""`hwcsp train` on a classifier (quant.tasks.ClassifyTask): cross-entropy, top-1 / top-5, float and
QAT through the same loop, checkpoints and run directory as the detectors; data from an .npz array
file or an image folder; the QAT checkpoint exports (calibrated and checked on its own training
images) and runs the integer chain golden == FINN == qonnx == Brevitas with 0 mismatches."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

try:
    from golden_helpers.cli import hwcsp
    from golden_helpers.finn_env import Finn, finn
    from golden_helpers.refs import chain_tally
except ImportError:  # tests/ imported as a package
    from tests.golden_helpers.cli import hwcsp
    from tests.golden_helpers.finn_env import Finn, finn
    from tests.golden_helpers.refs import chain_tally

__all__ = ["finn"]

COMMON = [
    "--size",
    "32",
    "--width",
    "0.25",
    "--batch",
    "32",
    "--warmup",
    "4",
    "--no-progress",
    "--threads",
    "1",
]


def quadrants(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 grey images (Fashion-MNIST's shape): class k has a bright square in quadrant k."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(y):
        r, c = divmod(int(k), 2)
        x[i, r * 14 + 2 : r * 14 + 12, c * 14 + 2 : c * 14 + 12] = 200
    return x, y.astype(np.int64)


def _hwcsp(*args: str) -> subprocess.CompletedProcess:
    return hwcsp(*args, OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("classify")
    (a, b), (c, d) = quadrants(256, 0), quadrants(64, 1)
    npz = tmp / "quad.npz"
    np.savez(
        npz, images=a, labels=b, val_images=c, val_labels=d, class_names=np.array(["tl", "tr", "bl", "br"])
    )
    fl, qat = tmp / "float", tmp / "qat"
    p = _hwcsp(
        "train", "resnet10", "--data", str(npz), "--mode", "float", "--epochs", "4", *COMMON, "--out", str(fl)
    )
    assert p.returncode == 0, p.stderr[-3000:]
    args = ["--mode", "qat", "--init", str(fl / "last.pt"), "--epochs", "1", *COMMON, "--out", str(qat)]
    p = _hwcsp("train", "resnet10", "--data", str(npz), *args)
    assert p.returncode == 0, p.stderr[-3000:]
    return {"tmp": tmp, "npz": npz, "float": fl, "qat": qat, "log": p.stdout}


def _epochs(run: Path) -> list[dict]:
    return [
        r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "epoch"
    ]


def test_float_then_qat_learn_and_record_top1_top5(trained: dict) -> None:
    from quant.checkpoint import load_checkpoint

    fl, qat = _epochs(trained["float"]), _epochs(trained["qat"])
    assert [r["epoch"] for r in fl] == [1, 2, 3, 4]
    assert fl[-1]["loss"] < fl[0]["loss"] / 10
    # the square's quadrant is easy: measured top-1 1.0 after 4 float epochs and after QAT
    assert fl[-1]["val_top1"] >= 0.95 and qat[-1]["val_top1"] >= 0.95, (fl[-1], qat[-1])
    assert all(r["val_top5"] == 1.0 and r["val_images"] == 64 for r in fl + qat)  # 4 classes
    assert "QAT from float" in trained["log"] and "val top-1" in trained["log"]
    _, meta = load_checkpoint(trained["qat"] / "last.pt")
    assert meta["quant"] and meta["num_classes"] == 4 and meta["classes"] == ["tl", "tr", "bl", "br"]
    assert "anchors" not in meta and meta["val"]["val_top1"] == qat[-1]["val_top1"]
    assert meta["data"] == str(trained["npz"])


def test_qat_classifier_exports_and_is_exact_through_the_chain(
    trained: dict, finn: Finn, tmp_path: Path
) -> None:
    from hls.flow import HlsRequest, run
    from hwcsp.buildcfg import BuildConfig
    from quant.export import export

    ckpt = trained["qat"] / "last.pt"
    cfg = BuildConfig("resnet10", 32, 0.25, num_classes=4)
    logs: list[str] = []
    r = export(cfg, cfg.path(tmp_path), ckpt, log=logs.append)
    assert json.loads((r.onnx_path.parent / "export.json").read_text())["weights"] == "checkpoint"
    hw = run(
        HlsRequest(r.onnx_path.parent, baseline=False, codegen=False, verify_frames=1), log=lambda *a: None
    )
    a, _ = quadrants(2, 5)
    x = np.repeat(np.pad(a, ((0, 0), (2, 2), (2, 2)))[:, :, :, None], 3, axis=3)  # 32x32 RGB codes
    tally = chain_tally(hw, r.net, finn, x)
    assert tally.mismatches == 0 and tally.integers > 0, str(tally)


def test_image_folder_with_a_val_sibling(tmp_path: Path) -> None:
    from PIL import Image

    root, val = tmp_path / "shapes", tmp_path / "shapes-val"
    (a, b), (c, d) = quadrants(64, 2), quadrants(16, 3)
    names = ["br", "bl", "tl", "tr"]  # folder names, sorted: bl br tl tr
    for base, xs, ys in ((root, a, b), (val, c, d)):
        for i, (im, k) in enumerate(zip(xs, ys, strict=True)):
            (base / names[k]).mkdir(parents=True, exist_ok=True)
            Image.fromarray(im).save(base / names[k] / f"{i:03d}.png")
    out = tmp_path / "run"
    p = _hwcsp(
        "train",
        "resnet10",
        "--data",
        str(root),
        "--mode",
        "float",
        "--epochs",
        "1",
        *COMMON,
        "--out",
        str(out),
    )
    assert p.returncode == 0, p.stderr[-3000:]
    (r,) = _epochs(out)
    assert r["val_images"] == 16 and 0.0 <= r["val_top1"] <= r["val_top5"] <= 1.0
    assert json.loads((out / "train.json").read_text())["classes"] == ["bl", "br", "tl", "tr"]


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"pictures": np.zeros((4, 8, 8), np.uint8)}, "needs arrays 'images' and 'labels'"),
        (
            {"images": np.zeros((4, 8, 8), np.uint8), "labels": np.array([0, 1, 2, 9])},
            "labels must lie in 0..3",
        ),
        ({"images": np.zeros((4, 8, 8), np.float32), "labels": np.arange(4)}, "images must be uint8"),
    ],
    ids=["missing-arrays", "label-range", "float-images"],
)
def test_bad_array_files_exit_2_with_one_line(tmp_path: Path, arrays: dict, match: str) -> None:
    f = tmp_path / "bad.npz"
    extra = {"class_names": np.array(["a", "b", "c", "d"])} if "labels" in arrays else {}
    np.savez(f, **arrays, **extra)
    p = _hwcsp(
        "train",
        "resnet10",
        "--data",
        str(f),
        "--mode",
        "float",
        "--epochs",
        "1",
        *COMMON,
        "--out",
        str(tmp_path / "o"),
    )
    assert p.returncode == 2 and match in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert not (tmp_path / "o" / "last.pt").exists()


def _idx_gz(path: Path, magic: int, arr: np.ndarray) -> None:
    import gzip
    import struct

    path.write_bytes(gzip.compress(struct.pack(f">{arr.ndim + 1}i", magic, *arr.shape) + arr.tobytes()))


def test_fashion_mnist_reads_the_packages_idx_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """IDX files written byte by byte (big-endian header, then uint8 data) read back exactly; a
    wrong magic or a truncated file is one clear error; the Debian package when installed."""
    from quant.data import fashion_mnist as fm
    from quant.tasks import load_fashion_mnist

    images = np.arange(3 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(3, 28, 28)
    labels = np.array([9, 0, 4], dtype=np.uint8)
    for stem in ("train", "t10k"):
        _idx_gz(tmp_path / f"{stem}-images-idx3-ubyte.gz", 2051, images)
        _idx_gz(tmp_path / f"{stem}-labels-idx1-ubyte.gz", 2049, labels)
    monkeypatch.setenv("FASHION_MNIST", str(tmp_path))
    x, y = fm.load("train")
    assert (x == images).all() and y.tolist() == [9, 0, 4] and y.dtype == np.int64
    d = load_fashion_mnist(32, 2, "val")
    assert d.images.shape == (2, 32, 32, 3) and d.class_names[9] == "Ankle boot"
    _idx_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", 2051, labels)
    with pytest.raises(fm.FashionMnistError, match="magic 2051, expected 2049"):
        fm.load("val")
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(
        __import__("gzip").compress((2051).to_bytes(4, "big") + b"\0\0\0\3\0\0\0\x1c\0\0\0\x1c" + b"\1" * 100)
    )
    with pytest.raises(fm.FashionMnistError, match="100 bytes of data"):
        fm.load("train")
    monkeypatch.setenv("FASHION_MNIST", str(tmp_path / "nowhere"))
    with pytest.raises(fm.FashionMnistError, match="dataset-fashion-mnist"):
        fm.load("train")
    monkeypatch.delenv("FASHION_MNIST")
    if not (fm.DEFAULT_DIR / "train-labels-idx1-ubyte.gz").exists():
        pytest.skip("the Debian package dataset-fashion-mnist is not installed (make setup installs it)")
    (x, y), (xv, yv) = fm.load("train"), fm.load("val")
    assert x.shape == (60000, 28, 28) and xv.shape == (10000, 28, 28)
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yv).tolist() == [1000] * 10
