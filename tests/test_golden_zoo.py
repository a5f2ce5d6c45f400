"""Every zoo detector at full size (slow): golden on its folded graph == FINN's python execution of the
generic graph at every tensor, == qonnx and == Brevitas integer codes at the outputs and every
activation; every op type covered.  4 seeded random frames + 1 dataset image per model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from golden.execute import Program
from golden.ops import OPS
from golden.software import images_to_input, load_io_spec
from hwcsp import list_models

try:
    from golden_helpers.finn_env import Finn, finn
    from golden_helpers.refs import Graphs, Tally, against_brevitas, against_finn, against_qonnx
except ImportError:  # tests/ imported as a package
    from tests.golden_helpers.finn_env import Finn, finn
    from tests.golden_helpers.refs import Graphs, Tally, against_brevitas, against_finn, against_qonnx

__all__ = ["finn"]

DETECTORS = list_models("detect")  # every zoo detector (tests/test_zoo.py pins the list)


def quiet(*_a, **_k) -> None:
    pass


@pytest.mark.slow
@pytest.mark.parametrize("name", DETECTORS)
def test_full_size_detector_is_exact(finn: Finn, name: str, tmp_path: Path) -> None:
    from hls.flow import HlsRequest, run
    from hwcsp.buildcfg import BuildConfig
    from hwcsp.registry import get_entry
    from quant.data import calibration_images
    from quant.export import export

    cfg = BuildConfig(name, get_entry(name).paper_size)
    d = cfg.path(tmp_path)
    r = export(cfg, d, log=quiet)
    hw = run(HlsRequest(d, baseline=False, codegen=False), log=quiet)
    model = onnx.load(str(hw / "model.hw.onnx"))
    assert {n.op_type.rsplit("_", 1)[0] for n in model.graph.node} <= set(OPS)
    spec = load_io_spec(hw / "io_spec.json")
    rng = np.random.default_rng(4)
    x = np.concatenate(
        [
            rng.integers(0, 256, (4, *spec.input.shape[1:])),
            images_to_input(calibration_images(cfg.size, 1, seed=2), spec),
        ]
    )
    gold = Program(model).run({spec.input.name: x}, return_all=True)
    g = Graphs.load(hw, finn)
    tally = Tally()
    for f in range(x.shape[0]):
        one = {k: v[f : f + 1] for k, v in gold.items()}
        against_finn(g, finn, one, x[f : f + 1], tally)
        against_qonnx(g, finn, one, x[f : f + 1], tally)
    against_brevitas(g, r.net, gold, x, tally)
    print(f"{cfg.dirname}: {tally}")
    assert tally.mismatches == 0, str(tally)
