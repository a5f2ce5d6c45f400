"""Shared fixtures: the test configuration's export and hls outputs, built once per test run.

With pytest-xdist every worker is its own session; the outputs are built under the run's common
temporary root behind a file lock, so the first worker builds and the others reuse them.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from filelock import FileLock

from hwcsp.buildcfg import BuildConfig

# Imported models live in $HWCSP_MODELS (default ~/.hwcsp/models): the tests see an empty store of
# their own, never the user's (the CLI subprocesses inherit it).
os.environ["HWCSP_MODELS"] = tempfile.mkdtemp(prefix="hwcsp-test-models-")
atexit.register(shutil.rmtree, os.environ["HWCSP_MODELS"], ignore_errors=True)

# The configuration `make test` runs end to end (issue: cspdensenetb-ref-prn WIDTH=0.25 SIZE=64).
TEST_CONFIG = BuildConfig("cspdensenetb-ref-prn", 64, 0.25)


def _shared(tmp_path_factory, name: str) -> Path:
    root = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in __import__("os").environ:
        root = root.parent
    return root / name


# The HW op types the flow emits for the zoo's detectors (the test graph has every one of them).
FLOW_OP_TYPES = frozenset(
    {
        "MVAU_hls",
        "ConvolutionInputGenerator_rtl",
        "FMPadding_rtl",
        "Pool_hls",
        "Thresholding_hls",
        "StreamingConcat_hls",
        "StreamingSplit_hls",
        "DuplicateStreams_hls",
        "ElementwiseAdd_hls",
        "UpsampleNearestNeighbour_hls",
        "StreamingDataWidthConverter_hls",
        "StreamingFIFO_rtl",
    }
)


@pytest.fixture(scope="session")
def flow_op_types() -> frozenset[str]:
    return FLOW_OP_TYPES


@pytest.fixture(scope="session")
def test_config() -> BuildConfig:
    return TEST_CONFIG


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> Path:
    """Build directory of TEST_CONFIG with its QONNX export (seeded, calibrated weights)."""
    from quant.export import export

    base = _shared(tmp_path_factory, "shared-build")
    d = TEST_CONFIG.path(base)
    with FileLock(str(base) + ".export.lock"):
        if not (d / "config.json").exists():
            export(TEST_CONFIG, d, log=lambda *a: None)
    return d


@pytest.fixture(scope="session")
def hw_dir(exported) -> Path:
    """The hls variant directory (default MAC budget) of TEST_CONFIG."""
    from hls.flow import HlsRequest, run

    req = HlsRequest(exported, baseline=False)
    out = exported / req.variant
    with FileLock(str(exported) + ".hls.lock"):
        if not (out / "report" / "timings.json").exists():
            run(req, log=lambda *a: None)
    return out


@pytest.fixture(scope="session")
def io_spec(hw_dir) -> dict:
    return json.loads((hw_dir / "io_spec.json").read_text())
