"""Darknet .weights reading (hwcsp.darknet_weights) against files built byte by byte with struct.pack,
for both header versions, and the float count of the public cfgs against the graph's own count."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from hwcsp.darknet_weights import WeightsError, expected_floats, read_header, read_weights, torch_batchnorm

CFG = """
[net]
width=8
height=8
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky

[convolutional]
filters=4
size=1
groups=2
activation=linear

[maxpool]
size=2
stride=2

[connected]
output=5
batch_normalize=1
activation=linear
"""
# conv0: 4 biases, 3 x 4 BatchNorm, 4 x 3 x 3 x 3 weights; conv1: 4 biases, 4 x 2 x 1 x 1 weights;
# connected: 5 biases, 5 x (4 x 4 x 4) weights (the maxpool's 4x4 map flattened), 3 x 5 BatchNorm
FLOATS = (4 + 12 + 108) + (4 + 8) + (5 + 320 + 15)
NEW = struct.pack("<iiiQ", 0, 2, 0, 0)  # a version 0.2 header: 64-bit 'seen'


def _body() -> bytes:
    """Every float names its place: hundreds say which array, the rest its flat index."""
    seq = []
    seq += [100 + i for i in range(4)]  # conv0 biases
    seq += [200 + i for i in range(4)] + [300 + i for i in range(4)] + [400 + i for i in range(4)]
    seq += [1000 + i for i in range(108)]  # conv0 weights, (filter, channel, ky, kx) row-major
    seq += [500 + i for i in range(4)]  # conv1 biases (no BatchNorm)
    seq += [2000 + i for i in range(8)]  # conv1 weights (4, 2, 1, 1)
    seq += [600 + i for i in range(5)]  # connected biases
    seq += [3000 + i for i in range(320)]  # connected weights (5, 64)
    seq += [700 + i for i in range(5)] + [800 + i for i in range(5)] + [900 + i for i in range(5)]
    assert len(seq) == FLOATS
    return struct.pack(f"<{FLOATS}f", *seq)


def test_new_header_has_a_64_bit_seen_and_arrays_land_in_place():
    data = struct.pack("<iiiQ", 0, 2, 5, 2**40 + 3) + _body()
    header, layers = read_weights(data, CFG)
    assert (header.major, header.minor, header.revision, header.seen) == (0, 2, 5, 2**40 + 3)
    kinds = [(p.index, p.kind) for p in layers]
    assert kinds == [(0, "convolutional"), (1, "convolutional"), (3, "connected")]
    c0, c1, fc = layers
    assert c0.biases.tolist() == [100, 101, 102, 103]
    assert [a.tolist() for a in c0.bn] == [[200, 201, 202, 203], [300, 301, 302, 303], [400, 401, 402, 403]]
    assert c0.weights.shape == (4, 3, 3, 3)
    assert c0.weights[2, 1, 0, 2] == 1000 + ((2 * 3 + 1) * 3 + 0) * 3 + 2
    assert c1.bn is None and c1.weights.shape == (4, 2, 1, 1) and c1.weights[3, 1, 0, 0] == 2007
    assert fc.weights.shape == (5, 64) and fc.weights[4, 63] == 3319 and fc.biases[0] == 600
    assert [a[-1] for a in fc.bn] == [704, 804, 904]  # after the weights for [connected]
    assert sum(p.floats for p in layers) == expected_floats(CFG) == FLOATS


def test_old_header_has_a_32_bit_seen():
    data = struct.pack("<iiii", 0, 1, 0, 777) + _body()
    header, size = read_header(data)
    assert (header.seen, size, header.seen_is_64bit) == (777, 16, False)
    _, layers = read_weights(data, CFG)
    assert layers[0].biases[0] == 100 and layers[-1].bn[2][-1] == 904


@pytest.mark.parametrize(
    "data, match",
    [
        (NEW + _body()[:-4], rf"holds {4 * FLOATS - 4} bytes .* need {FLOATS} floats"),
        (NEW + _body() + b"\0\0", "and a partial one"),
        (struct.pack("<iiii", 0, 1, 0, 0) + _body() + struct.pack("<f", 1), rf"\({FLOATS + 1} floats\)"),
        (struct.pack("<iiiQ", 1001, 2, 0, 0) + _body(), "version 1001.2.0"),
        (b"\0" * 10, "shorter than any header"),
    ],
    ids=["short", "partial-float", "long", "transposed-version", "tiny"],
)
def test_files_that_do_not_fit_the_cfg_are_refused(data: bytes, match: str):
    with pytest.raises(WeightsError, match=match):
        read_weights(data, CFG)


def test_groups_that_do_not_divide_are_refused_naming_the_line():
    bad = CFG.replace("groups=2", "groups=3")
    with pytest.raises(WeightsError, match=r"\[convolutional\] at line 15: groups=3"):
        expected_floats(bad)


SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.mark.parametrize("name", ["darknet", "resnet10", "resnext50", "csresnext50"])
def test_public_cfg_file_length_is_the_all_floats_count(name: str):
    """The .weights length the cfg implies equals the graph's every-float parameter count
    (hwcsp.analysis, computed from the model, not from the file layout)."""
    from hwcsp.analysis import analyze
    from hwcsp.darknet_cfg import cfg_graph
    from hwcsp.net import CSPNet

    path = SHARED / "darknet-cfg" / f"{name}.cfg"
    if not path.exists():
        pytest.skip(f"{path} is absent (the public cfgs live in ../shared/)")
    text = path.read_text()
    assert expected_floats(text) == analyze(CSPNet(cfg_graph(text), None), 256).params_all


def test_public_detector_cfgs_match_the_reference_all_floats():
    """architectures.md: YOLOv3-tiny 8.859 M and YOLOv3-tiny-PRN 4.940 M floats."""
    for name, millions in (("yolov3-tiny", 8.859), ("yolov3-tiny-prn", 4.940)):
        path = SHARED / "darknet-cfg" / f"{name}.cfg"
        if not path.exists():
            pytest.skip(f"{path} is absent (the public cfgs live in ../shared/)")
        assert round(expected_floats(path.read_text()) / 1e6, 3) == millions


def test_batchnorm_conversion_computes_darknets_normalization():
    rng = np.random.default_rng(0)
    scale, mean = rng.normal(size=6), rng.normal(size=6)
    var = np.array([0.0, 1e-9, 1e-6, 0.3, 2.0, 50.0])
    x = rng.normal(size=(3, 6))
    darknet = scale * (x - mean) / (np.sqrt(var) + 1e-6)
    bn = torch.nn.BatchNorm1d(6, eps=1e-5).double().eval()
    w, m, v = torch_batchnorm((scale, mean, var), bn.eps)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(w.astype(np.float64)))
        bn.bias.zero_()
        bn.running_mean.copy_(torch.from_numpy(m.astype(np.float64)))
        bn.running_var.copy_(torch.from_numpy(v.astype(np.float64)))
        ours = bn(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, darknet, rtol=1e-5, atol=1e-6)  # float32 storage of w, m, v
    with pytest.raises(WeightsError, match="negative"):
        torch_batchnorm((scale, mean, -var - 1), 1e-5)
