"""QAT training step vs the same float step: images/s of each and their ratio, measured in one run.

Both models see the same batch, loss, optimizer and thread count; steps alternate float/QAT so
that load from other processes on a shared machine hits both alike, and medians are reported. The
QAT model runs with hwcsp's fused fake quantizers (``hwcsp.quant.FusedIntQuant``, the default);
a copy with Brevitas' own ``IntQuant`` runs beside them as the named baseline ("qat_brevitas").

    python -m benchmarks.qat_step [--model M --size S --width W --wbits 4 --abits 4 --batch 32 --steps 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass
class StepBench:
    model: str
    size: int
    width: float
    wbits: int
    abits: int
    batch: int
    steps: int
    threads: int
    float_img_s: float
    qat_img_s: float
    qat_brevitas_img_s: float

    @property
    def ratio(self) -> float:
        """QAT throughput as a fraction of float throughput."""
        return self.qat_img_s / self.float_img_s

    def to_json(self) -> dict:
        return {
            **asdict(self),
            "qat_over_float": round(self.ratio, 4),
            "qat_brevitas_over_float": round(self.qat_brevitas_img_s / self.float_img_s, 4),
        }


def run(
    model: str = "cspdensenetb-ref-prn",
    size: int = 128,
    width: float = 0.5,
    wbits: int = 4,
    abits: int = 4,
    batch: int = 32,
    steps: int = 10,
    threads: int = 2,
    warmup: int = 2,
) -> StepBench:
    import copy

    import hwcsp
    from hwcsp.quant import unfuse_fake_quant
    from quant.anchors import fit_levels, levels_of_graph
    from quant.data import DigitsConfig, DigitsDetection
    from quant.loss import yolo_loss
    from quant.train import TrainConfig, calibrate_for_qat, make_optimizer

    torch.set_num_threads(threads)
    ds = DigitsDetection("train", DigitsConfig(size=size), length=batch)
    samples = [ds[i] for i in range(batch)]
    x = torch.from_numpy(np.stack([s.image for s in samples]).transpose(0, 3, 1, 2).copy()).float() * 2.0**-8
    targets = [{"boxes": torch.from_numpy(s.boxes), "labels": torch.from_numpy(s.labels)} for s in samples]
    torch.manual_seed(0)
    fnet = hwcsp.create_model(model, size=size, width=width, num_classes=10, quant=False)
    qnet = hwcsp.create_model(model, size=size, width=width, wbits=wbits, abits=abits, num_classes=10)
    qnet.load_state_dict(fnet.state_dict(), strict=False)
    wh = np.concatenate([s.boxes[:, 2:] - s.boxes[:, :2] for s in samples])
    levels = fit_levels(wh, levels_of_graph(fnet))
    calibrate_for_qat(qnet, x, targets, levels, 99.0)
    cfg = TrainConfig(model=model, size=size)
    qbnet = copy.deepcopy(qnet)
    assert unfuse_fake_quant(qbnet) > 0
    nets = {"float": fnet, "qat": qnet, "qat_brevitas": qbnet}
    opts = {k: make_optimizer(n, cfg) for k, n in nets.items()}
    times: dict[str, list[float]] = {k: [] for k in nets}
    for i in range(warmup + steps):
        for k, net in nets.items():
            net.train()
            t = time.perf_counter()
            loss = yolo_loss(net(x), targets, levels, (size, size)).total
            loss.backward()
            opts[k].step()
            opts[k].zero_grad(set_to_none=True)
            if i >= warmup:
                times[k].append(time.perf_counter() - t)
    ips = {k: batch / statistics.median(v) for k, v in times.items()}
    return StepBench(
        model, size, width, wbits, abits, batch, steps, threads, ips["float"], ips["qat"], ips["qat_brevitas"]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.qat_step", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="cspdensenetb-ref-prn")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--wbits", type=int, default=4)
    p.add_argument("--abits", type=int, default=4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=10, help="timed steps of each kind (after 2 warm-up steps)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print one JSON record")
    a = p.parse_args(argv)
    r = run(a.model, a.size, a.width, a.wbits, a.abits, a.batch, a.steps, a.threads)
    if a.json:
        print(json.dumps(r.to_json()))
    else:
        print(
            f"{r.model} {r.size}² w{r.width:g} W{r.wbits}A{r.abits}, batch {r.batch}, {r.threads} threads, "
            f"median of {r.steps} steps: float {r.float_img_s:.1f} img/s, QAT {r.qat_img_s:.1f} img/s, "
            f"QAT/float = {r.ratio:.3f} (Brevitas' own fake quantizers: {r.qat_brevitas_img_s:.1f} img/s, "
            f"{r.qat_brevitas_img_s / r.float_img_s:.3f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
