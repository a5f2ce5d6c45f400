"""The flow's own check: FINN's python execution of the folded generic graph against qonnx's
execution of the QONNX export, in integer codes, at the outputs and at every activation of the
tensor map. Zero mismatching integers or the flow fails."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx

from hwcsp.errors import UserError


class VerificationError(UserError, RuntimeError):
    pass


@dataclass
class Verification:
    frames: int
    seed: int
    tensors_compared: int
    integers_compared: int
    mismatches: int

    def to_json(self) -> dict:
        return asdict(self)


def seeded_inputs(shape_nhwc: tuple[int, ...], n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape_nhwc).astype(np.int64) for _ in range(n)]


def verify_generic(
    qonnx_model: ModelWrapper,
    generic: ModelWrapper,
    io_spec: dict,
    tensor_map: dict[str, str],
    act_scales: dict[str, float],
    n: int = 2,
    seed: int = 0,
) -> Verification:
    inp = io_spec["input"]
    tensors = integers = bad = 0
    detail = []
    for x in seeded_inputs(tuple(inp["shape"]), n, seed):
        ref = execute_onnx(
            qonnx_model, {"input": (x.transpose(0, 3, 1, 2) * inp["scale"]).astype(np.float32)}, True
        )
        got = execute_onnx(generic, {inp["name"]: x.astype(np.float32)}, True)
        pairs = []
        for o in io_spec["outputs"]:
            r = ref[o["qonnx_name"]]
            r = r[:, :, None, None] if r.ndim == 2 else r  # a classifier's (N, C) logits: 1x1 maps
            r = r / o["scale"] - np.asarray(o["bias"]).reshape(1, -1, 1, 1)
            pairs.append((o["name"], r, got[o["name"]].transpose(0, 3, 1, 2)))
        for layer, hw_tensor in tensor_map.items():
            r = ref["input.q" if layer == "input" else layer] / act_scales[layer]
            g = got[hw_tensor]
            pairs.append((layer, r, g.transpose(0, 3, 1, 2) if g.ndim == 4 else g))
        for name, r, g in pairs:
            if not np.array_equal(r, np.round(r)):
                raise VerificationError(
                    f"verify: qonnx tensor {name} is not an integer multiple of its scale"
                )
            m = int((r != g).sum()) if r.shape == g.shape else r.size
            if m:
                detail.append(f"{name}: {m} of {r.size}")
            tensors += 1
            integers += r.size
            bad += m
    if bad:
        raise VerificationError(
            "FINN's execution of the generic graph differs from qonnx's execution of the export: "
            + "; ".join(detail[:6])
        )
    return Verification(n, seed, tensors, integers, bad)
