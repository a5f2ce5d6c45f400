"""The `hwcsp` command line: analysis commands, clear errors, exit codes, the make/CLI mirror."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def hwcsp(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hwcsp.cli", *map(str, args)], cwd=cwd or ROOT, capture_output=True, text=True
    )


def test_models_json_lists_every_model_with_counts_and_paper_rows():
    r = hwcsp("models", "--json")
    assert r.returncode == 0, r.stderr
    rows = {m["model"]: m for m in json.loads(r.stdout)}
    assert len(rows) == 9
    prn = rows["cspdensenet-ref-prn"]
    assert prn["size"] == 320 and prn["paper"]["params_M"] == 3.97
    assert abs(prn["bflops"] - prn["paper"]["bflops"]) / prn["paper"]["bflops"] < 0.02
    assert rows["darknet-ref"]["task"] == "classify" and rows["darknet-ref"]["size"] == 256


def test_info_prints_the_layer_table_and_writes_the_chart(tmp_path):
    r = hwcsp("info", "cspdensenetb-ref-prn", "--size", 320, "--build-root", tmp_path)
    assert r.returncode == 0, r.stderr
    assert re.search(r"cspdensenetb-ref-prn @320: 1\.857M params .* 1\.589 BFLOPs", r.stdout)
    assert "s16.ta" in r.stdout and "head.s16.add1" in r.stdout
    png = tmp_path / "cspdensenetb-ref-prn" / "report" / "bflops_per_layer.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("cmd", ["info", "export", "hls", "train", "eval", "golden", "sim"])
def test_unknown_model_is_one_line_and_exit_2(cmd, tmp_path):
    r = hwcsp(cmd, "no-such-net", "--build-root", tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "unknown model 'no-such-net'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_export_cli_writes_the_configuration_directory(tmp_path):
    r = hwcsp(
        "export",
        "cspdensenetb-ref-prn",
        "--size",
        64,
        "--width",
        0.25,
        "--build-root",
        tmp_path,
        "-o",
        tmp_path / "copy.onnx",
    )
    assert r.returncode == 0, r.stderr
    d = tmp_path / "cspdensenetb-ref-prn-s64-w0.25-w4a4"
    assert {p.name for p in d.iterdir()} == {"model.qonnx.onnx", "export.json", "config.json"}
    assert "seeded, calibrated weights" in r.stdout + r.stderr
    assert (tmp_path / "copy.onnx").read_bytes() == (d / "model.qonnx.onnx").read_bytes()
    cfg = json.loads((d / "config.json").read_text())
    assert cfg == {
        "abits": 4,
        "ckpt_sha256": "",
        "model": "cspdensenetb-ref-prn",
        "num_classes": 80,
        "seed": 0,
        "size": 64,
        "wbits": 4,
        "width": 0.25,
    }


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    r = hwcsp("export", "cspdensenetb-ref-prn", "--ckpt", tmp_path / "nope.pt", "--build-root", tmp_path)
    assert r.returncode == 2 and "does not exist" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_make_mirrors_the_cli_and_requires_model():
    r = subprocess.run(
        ["make", "-n", "hls", "MODEL=cspdensenet-ref-prn", "MACS=512", "SIZE=64"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0
    assert re.search(r"hwcsp\.cli hls cspdensenet-ref-prn --size 64 .*--macs 512", r.stdout)
    r = subprocess.run(["make", "golden"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "MODEL is not set" in r.stderr
