"""Parameters, BFLOPs, MACs and CIO, measured on the built module with forward hooks.

Conventions (paper, darknet 2019): BFLOPs = 2*MACs of convolutions + k^2*C*Hout*Wout of max
and (local) average pooling; route/concat/split, upsample, shortcut/add and global pooling
count 0. Parameters:
"imagenet" = conv and FC weights only; "coco" = every float of a darknet weights file (weights,
biases, BatchNorm gamma/beta/mean/var). CIO (HarDNet): input + output feature-map elements of
every layer that reads and writes feature maps (conv, pooling); joins and splits are free.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from hwcsp.graph import AvgPool, Conv, MaxPool
from hwcsp.net import CSPNet, layer_key


@dataclass
class LayerRow:
    name: str
    op: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    macs: int
    flops: int
    params: int  # conv/FC weights only
    params_all: int  # every float (weights, biases, BatchNorm)
    cio: int
    share: float = 0.0  # of the model's FLOPs


@dataclass
class ModelStats:
    model: str
    size: int
    rows: list[LayerRow]

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def params_all(self) -> int:
        return sum(r.params_all for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def bflops(self) -> float:
        return sum(r.flops for r in self.rows) / 1e9

    @property
    def cio(self) -> int:
        return sum(r.cio for r in self.rows)

    def summary(self) -> dict:
        return {
            "model": self.model,
            "size": self.size,
            "params_M": self.params / 1e6,
            "params_all_M": self.params_all / 1e6,
            "bflops": self.bflops,
            "gmacs": self.macs / 1e9,
            "cio_M": self.cio / 1e6,
        }

    def to_json(self) -> dict:
        return {**self.summary(), "layers": [asdict(r) for r in self.rows]}


def _numel(shape) -> int:
    n = 1
    for s in shape[1:]:
        n *= int(s)
    return n


def analyze(net: CSPNet, size: int) -> ModelStats:
    """Run one zero image of ``size`` x ``size`` through ``net`` and count every layer. Only shapes
    are read, so a net built on the meta device (no storage, no arithmetic) counts the same."""
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    hooks = []
    for n in net.graph.nodes:
        mod = net.layers[layer_key(n.name)]

        def hook(_m, args, out, name=n.name):
            first = args[0] if args else None
            val = getattr(first, "value", first)
            o = out[0] if isinstance(out, list) else out
            o = getattr(o, "value", o)
            shapes[name] = (tuple(val.shape) if val is not None else (), tuple(o.shape))

        hooks.append(mod.register_forward_hook(hook))
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            dev = next(net.parameters()).device
            net(torch.zeros(1, net.graph.in_channels, size, size, device=dev))
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)

    rows = []
    for n in net.graph.nodes:
        ins, outs = shapes[n.name]
        macs = flops = params = params_all = cio = 0
        op = n.op
        if n.op == "conv":
            s: Conv = n.attrs
            conv = net.layers[layer_key(n.name)].conv
            params = conv.weight.numel()
            params_all = params + (4 * s.cout if s.bn else s.cout)
            macs = params * outs[2] * outs[3]
            flops = 2 * macs
            cio = _numel(ins) + _numel(outs)
        elif n.op == "maxpool" and n.attrs.k == 1:
            op = "sample"  # a 1x1 window: part of a Darknet shortcut (no FLOPs), not a pooling layer
            cio = _numel(ins) + _numel(outs)
        elif n.op == "mul":  # SAM: one product per output value
            flops = _numel(outs)
            cio = 2 * _numel(ins) + _numel(outs)
        elif n.op == "max":  # Darknet's maxout (maxpool_depth) counts one operation per input value
            flops = len(n.inputs) * _numel(ins)
            cio = len(n.inputs) * _numel(ins) + _numel(outs)
        elif n.op in ("maxpool", "avgpool"):
            p: MaxPool | AvgPool = n.attrs
            flops = p.k * p.k * outs[1] * outs[2] * outs[3]
            cio = _numel(ins) + _numel(outs)
        rows.append(LayerRow(n.name, op, ins, outs, macs, flops, params, params_all, cio))
    total = sum(r.flops for r in rows) or 1
    for r in rows:
        r.share = r.flops / total
    return ModelStats(net.meta.get("model", "?"), size, rows)


# CIO conventions (the paper names none for Fig. 8): which layers' input + output feature maps count.
CIO_CONVENTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "hwcsp": ("every layer of the streamed graph that reads and writes maps (conv, pooling, sampling)",
              ("conv", "maxpool", "avgpool", "sample")),
    "darknet": ("Darknet's conv and pooling layers (a shortcut's sampling is not a layer there)",
                ("conv", "maxpool", "avgpool")),
    "conv": ("convolutions only", ("conv",)),
}  # fmt: skip


def cio_by_convention(stats: ModelStats) -> dict[str, int]:
    return {k: sum(r.cio for r in stats.rows if r.op in ops) for k, (_, ops) in CIO_CONVENTIONS.items()}


def plot_cio_pair(a: ModelStats, b: ModelStats, path) -> None:
    """Fig. 8 style: per-layer input and output feature-map sizes of two models (conv and pooling
    layers in graph order), one panel each, on one scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(12, 6.2), sharey=True)
    for ax, st in zip(axes, (a, b), strict=True):
        rows = [r for r in st.rows if r.op in CIO_CONVENTIONS["darknet"][1]]
        x = range(len(rows))
        ax.bar(x, [_numel(r.in_shape) / 1e6 for r in rows], width=0.9, color="#1f77b4", label="input")
        ax.bar(x, [-_numel(r.out_shape) / 1e6 for r in rows], width=0.9, color="#ff7f0e", label="output")
        ax.axhline(0, color="black", lw=0.6)
        cio = cio_by_convention(st)["darknet"] / 1e6
        ax.set_title(f"{st.model} @{st.size}: CIO {cio:.1f} M (conv and pooling layers)", fontsize=10)
        ax.set_ylabel("M elements (in up, out down)")
        ax.set_xlim(-0.5, len(rows) - 0.5)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8, frameon=False)
    axes[-1].set_xlabel("layer, in graph order")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def model_stats(name: str, size: int | None = None, width: float = 1.0) -> ModelStats:
    from hwcsp.registry import create_model, get_entry

    size = size or get_entry(name).paper_size
    with torch.device("meta"):  # counts need shapes only; no arithmetic, so busy cores cost nothing
        net = create_model(name, size=size, width=width, quant=False)
    return analyze(net, size)


def format_table(stats: ModelStats) -> str:
    head = f"{'layer':<22}{'op':<9}{'in':>16}{'out':>16}{'MMACs':>10}{'params':>10}{'CIO(k)':>10}{'share':>8}"
    lines = [head, "-" * len(head)]
    for r in stats.rows:
        if r.op in ("input", "output"):
            continue
        lines.append(
            f"{r.name:<22}{r.op:<9}{'x'.join(map(str, r.in_shape[1:])):>16}"
            f"{'x'.join(map(str, r.out_shape[1:])):>16}{r.macs / 1e6:>10.2f}{r.params:>10}"
            f"{r.cio / 1e3:>10.1f}{100 * r.share:>7.1f}%"
        )
    s = stats.summary()
    lines.append("-" * len(head))
    lines.append(
        f"{stats.model} @{stats.size}: {s['params_M']:.3f}M params (weights), {s['params_all_M']:.3f}M "
        f"(all floats), {s['bflops']:.3f} BFLOPs, CIO {s['cio_M']:.2f}M"
    )
    return "\n".join(lines)


def plot_bflops(stats: ModelStats, path) -> None:
    """Per-layer BFLOPs bars, coloured by op (in the style of the paper's Fig. 7)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in stats.rows if r.flops > 0]
    colors = {"conv": "#1f77b4", "maxpool": "#ff7f0e"}
    fig, ax = plt.subplots(figsize=(max(8, 0.28 * len(rows)), 4.5))
    ax.bar(range(len(rows)), [r.flops / 1e9 for r in rows], color=[colors.get(r.op, "grey") for r in rows])
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r.name for r in rows], rotation=90, fontsize=7)
    ax.set_ylabel("BFLOPs")
    ax.set_title(f"{stats.model} @{stats.size}: {stats.bflops:.3f} BFLOPs, {stats.params / 1e6:.2f}M params")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    ax.legend(
        handles, list(colors), loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=8, frameon=False
    )
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
