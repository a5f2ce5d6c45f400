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
    assert len(rows) == 40  # tests/test_zoo.py pins the names
    # the detectors of issue 14 beside Tables 2 and 4, within tolerance
    efm = rows["csppeleenet-efm-sam"]["paper"]  # Table 4 at 416 (the paper also gives 512)
    assert efm["table"] == "coco_detectors" and efm["size"] == 416 and efm["within"]
    gfm = rows["csppeleenet-gfm"]["paper"]  # Table 2 gives BFLOPs only
    assert gfm["table"] == "table2" and gfm["within"] and gfm["params_M"] is None
    assert rows["peleenet-yolo"]["paper"] is None  # Fig. 7 gives no numbers
    prn = rows["cspdensenet-ref-prn"]
    assert prn["size"] == 320 and prn["paper"]["params_M"] == 3.97 and prn["paper"]["within"]
    assert abs(prn["bflops"] - prn["paper"]["bflops"]) / prn["paper"]["bflops"] < 0.02
    assert rows["darknet-ref"]["task"] == "classify" and rows["darknet-ref"]["size"] == 256
    grid = rows["csppeleenet-csp-g75"]["paper"]  # Table 1 gives BFLOPs only
    assert grid["table"] == "table1" and grid["params_M"] is None and list(grid["deviation"]) == ["bflops"]
    dev = (rows["resnext50"]["bflops"] - 10.11) / 10.11
    assert rows["resnext50"]["paper"]["deviation"]["bflops"] == pytest.approx(dev)


def test_cio_compares_two_models_under_each_convention(tmp_path):
    r = hwcsp("cio", "--json", "--build-root", tmp_path)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["paper_M"] == {"resnext50": 34.4, "cspresnext50": 32.6}
    assert set(d["cio"]["resnext50"]) == {"hwcsp", "darknet", "conv"}
    png = tmp_path / "report" / "cio_resnext50_vs_cspresnext50.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = hwcsp("cio", "resnext50", "no-such-net", "--build-root", tmp_path)
    assert bad.returncode == 2 and "unknown model 'no-such-net'" in bad.stderr


def test_models_table_flags_rows_outside_their_tolerance():
    r = hwcsp("models")
    assert r.returncode == 0, r.stderr
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines()[1:]}
    assert lines["resnext50"].rstrip().endswith("1% ok")
    assert "OUTSIDE" in lines["csppeleenet-first-g75"]  # +32% (see RESULTS.md, issue 13)


def test_info_prints_the_layer_table_and_writes_the_chart(tmp_path):
    r = hwcsp("info", "cspdensenetb-ref-prn", "--size", 320, "--build-root", tmp_path)
    assert r.returncode == 0, r.stderr
    assert re.search(r"cspdensenetb-ref-prn @320: 1\.857M params .* 1\.589 BFLOPs", r.stdout)
    assert "s16.ta" in r.stdout and "head.s16.add1" in r.stdout
    png = tmp_path / "cspdensenetb-ref-prn" / "report" / "bflops_per_layer.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "cmd", ["info", "export", "hls", "train", "eval", "golden", "sim", "verify", "rtl", "area"]
)
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
    # every stage after the export takes your own QONNX file, area included
    for target in ("hls", "golden", "sim", "verify", "rtl", "area"):
        r = subprocess.run(["make", "-n", target, "QONNX=net.onnx"], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, (target, r.stderr)
        assert re.search(rf"hwcsp\.cli {target} --qonnx net\.onnx", r.stdout), target


# ----------------------------------------------------------------------------- bad input
TEST_CFG = ["cspdensenetb-ref-prn", "--size", "64", "--width", "0.25"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "cspdensenet-ref-prn", "--size", "-5"], "size -5: cspdensenet-ref-prn needs a positive"),
        (["info", "cspdensenet-ref-prn", "--size", "100"], "total stride 32 (nearby: 96, 128)"),
        (["export", "cspdensenetb-ref-prn", "--size", "63", "--width", "0.25"], "nearby: 32, 64"),
        (["export", *TEST_CFG, "--wbits", "40"], "40 bits is not supported: 2 to 8 bits"),
        (["export", *TEST_CFG, "--wbits", "0"], "0 bits is not supported"),
        (["export", *TEST_CFG, "--abits", "1"], "no bipolar mode"),
        (["export", *TEST_CFG, "--width", "0"], "must be positive"),
        (["hls", *TEST_CFG, "--macs", "-3"], "must be positive"),
        (["golden", *TEST_CFG, "--target-fps", "0"], "must be positive"),
    ],
)
def test_bad_values_are_one_clear_error_and_exit_2(args, message, tmp_path):
    r = hwcsp(*args, "--build-root", tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def test_library_callers_get_the_same_checks():
    from hwcsp import create_model
    from hwcsp.buildcfg import BuildConfig, ConfigError
    from hwcsp.registry import InputSizeError

    with pytest.raises(ConfigError, match="wbits 40"):
        BuildConfig("cspdensenetb-ref-prn", 64, wbits=40)
    with pytest.raises(ConfigError, match="abits 1"):
        BuildConfig("cspdensenetb-ref-prn", 64, abits=1)
    with pytest.raises(InputSizeError, match="nearby: 32, 64"):
        create_model("cspdensenetb-ref-prn", size=63)
    for ok in (2, 8):  # both ends of the supported range
        BuildConfig("cspdensenetb-ref-prn", 64, wbits=ok, abits=ok)


def test_total_stride_of_the_zoo():
    from hwcsp import list_models, model_graph

    strides = {name: model_graph(name).total_stride() for name in list_models()}
    # darknet.cfg: six 2x2/2 maxpools; every other model five stride-2 steps (PeleeNet: a
    # stride-4 stem and three average pools; ResNet: a 7x7/2 stem, a maxpool, three strided blocks)
    assert strides == {name: 64 if name == "darknet-ref" else 32 for name in list_models()}


# ----------------------------------------------------------------------------- exit status
def test_golden_and_sim_exit_0_on_success_and_non_zero_on_failure(hw_dir, tmp_path):
    """`hwcsp golden` and `hwcsp sim` on the test build: 0 when every node passes (sim used to
    exit 1 then), 1 when a node is not bit-exact, 2 on bad input."""
    import shutil

    root = tmp_path / "build"
    d = root / hw_dir.parent.name
    shutil.copytree(hw_dir.parent, d, ignore=shutil.ignore_patterns(".*"))
    args = [*TEST_CFG, "--seeded", "--build-root", root]
    r = hwcsp("golden", *args, "--n", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    r = hwcsp("golden", *args, "--n", "0")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
    r = hwcsp("sim", *args)
    report = json.loads((d / hw_dir.name / "sim" / "report.json").read_text())
    s = report["summary"]
    assert s["pass"] == s["nodes"] - s["verdicts"].get("skipped", 0) and not report["run_error"]
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    # one expected output beat of one node changed: that node fails and the command says so
    (out,) = sorted((d / hw_dir.name / "vectors" / "nodes").glob("*MVAU*/out0.hex"))[:1]
    lines = out.read_text().splitlines()
    first = lines[0]
    lines[0] = first[:-1] + ("0" if first[-1] != "0" else "1")
    out.write_text("\n".join(lines) + "\n")
    r = hwcsp("sim", *args)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    report = json.loads((d / hw_dir.name / "sim" / "report.json").read_text())
    assert report["summary"]["pass"] == s["pass"] - 1


def test_train_exits_0_on_success_and_2_on_bad_data(tmp_path):
    args = [*TEST_CFG, "--mode", "float", "--epochs", "1", "--train-images", "8", "--val-images", "0"]
    args += ["--batch", "8", "--threads", "1", "--no-progress", "--build-root", tmp_path]
    r = hwcsp("train", *args, "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "run" / "epoch-001.pt").is_file()
    r = hwcsp("train", *args, "--data", tmp_path / "no-such-folder", "--out", tmp_path / "bad")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    "cmd",
    ["models", "info", "export", "train", "eval", "detect", "hls", "golden", "sim", "verify", "rtl", "area"],
)
def test_an_unknown_option_exits_2_with_usage(cmd):
    r = hwcsp(cmd, "--no-such-option")
    assert r.returncode == 2 and "usage: hwcsp" in r.stderr and "Traceback" not in r.stderr
