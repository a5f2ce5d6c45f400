"""Feature-pyramid detection heads of the paper's Table 2: EFM, GFM and CEM, with SAM and SPP.

One record, ``FusionHead``, expands all three; they differ in which backbone scales each output
level fuses and how:

- **EFM** (exact fusion): the level at stride s fuses the scales s/2, s and 2s of the head's own
  levels; each is projected to the level's width by a 1x1 convolution (a finer one is max-pooled
  down first, a coarser one is upsampled after), and the three projections are compressed by
  **Maxout**. Maxout over the concatenation of equally wide chunks (Darknet's ``maxpool_depth``:
  output channel g is the maximum of channels g, g+N, g+2N) is the elementwise maximum of the
  chunks, so the graph holds one ``max`` of the projections and no concat.
- **GFM** (global fusion): the same, fusing every level of the head.
- **CEM** (ThunderNet's context enhancement, two levels): the level sums the projections of its
  own and every coarser scale and a global context, a 1x1 convolution of the coarsest feature's
  global average broadcast over the frame.

Then, per level: **SAM** (optional): the fused features times a sigmoid gate, a 1x1 convolution
of them, as Darknet's ``[sam]``; **SPP** (optional, coarsest level): the fused features
concatenated with their 5x5, 9x9 and 13x13 stride-1 max pools; the level's convolution; and a
1x1 YOLO output convolution.

Widths and kernels are records, not fitted per row: see ``hwcsp.models.heads`` for the choices and
which of the paper's numbers they reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hwcsp.graph import ArchitectureError, MaxPool, Output, Upsample, channels

Builder = Any  # hwcsp.arch's graph builder, which imports this module
FUSIONS = ("efm", "gfm", "cem")
LEVELS = (8, 16, 32)  # the strides a pyramid head can read, finest first
SPP_POOLS = (5, 9, 13)


def level_strides(levels: int) -> tuple[int, ...]:
    """The strides of a head with ``levels`` output levels: the coarsest ones of LEVELS."""
    return LEVELS[len(LEVELS) - levels :]


@dataclass(frozen=True)
class FusionHead:
    fusion: str  # one of FUSIONS
    widths: tuple[int, ...]  # the fused features' channels per level, finest first
    convs: tuple[tuple[int, int], ...]  # (kernel, channels) of each level's convolution
    anchors: tuple[tuple[int, int], ...] = ()
    masks: tuple[tuple[int, ...], ...] = ()  # per level, coarsest first (as the PRN head's)
    sam: bool = False
    spp: bool = False
    num_classes: int = 80

    @property
    def strides(self) -> tuple[int, ...]:
        return level_strides(len(self.widths))

    def taps(self, w: float) -> dict[int, int]:
        return {}

    def sources(self, s: int) -> tuple[int, ...]:
        """The strides the level at stride ``s`` fuses."""
        st = self.strides
        if self.fusion == "efm":  # the finest level reaches below the pyramid (stride 4)
            return tuple(t for t in (s // 2, s, 2 * s) if t >= st[0] // 2 and t <= st[-1])
        if self.fusion == "gfm":
            return st
        return tuple(t for t in st if t >= s)  # cem: its own and the coarser scales

    def expand(self, b: Builder, feats: dict[int, str], taps: dict[int, str], w: float) -> None:
        if self.fusion not in FUSIONS:
            raise ArchitectureError(f"head: unknown fusion '{self.fusion}' (one of {FUSIONS})")
        if not (len(self.widths) == len(self.convs) == len(self.masks)) or len(self.widths) > len(LEVELS):
            raise ArchitectureError("head: widths, convs and masks need one entry per level (at most 3)")
        missing = [t for s in self.strides for t in self.sources(s) if t not in feats]
        if missing:
            raise ArchitectureError(f"head: the backbone has no feature at stride {missing[0]}")
        out_ch = len(self.masks[0]) * (5 + self.num_classes)
        coarsest = self.strides[-1]
        glb = None
        if self.fusion == "cem":
            glb = b.g.add("head.glb", "gap", feats[coarsest])
            b.ch[glb], b.grp[glb] = b.ch[feats[coarsest]], glb
        for i, s in reversed(list(enumerate(self.strides))):  # outputs coarsest first, as PRN's
            p = f"head.l{s}"
            wid = channels(self.widths[i], w)
            x = self._fuse(b, p, s, feats, wid, glb)
            if self.sam:
                gate = b.conv(f"{p}.sam.gate", x, wid, 1, act="sigmoid")
                x = b.g.add(f"{p}.sam", "mul", [x, gate])
                b.ch[x], b.grp[x] = wid, x
            if self.spp and s == coarsest:
                pools = [b.keep(f"{p}.spp{k}", "maxpool", x, MaxPool(k, 1, (k // 2,) * 4)) for k in SPP_POOLS]
                x = b.join(f"{p}.spp", "concat", [x, *pools])
            k, c = self.convs[i]
            h = b.conv(f"{p}.conv", x, channels(c, w), k, f"{p}.conv")
            b.conv(f"{p}.y", h, out_ch, 1, act="linear", bn=False, role="head")
            anchors = tuple(self.anchors[j] for j in self.masks[len(self.strides) - 1 - i])
            b.g.add(f"head.out{s}", "output", f"{p}.y", Output("yolo", s, anchors))

    def _fuse(self, b: Builder, p: str, s: int, feats: dict[int, str], wid: int, glb: str | None) -> str:
        """The level's fused features: one projection per source scale, resampled to stride s."""
        parts = []
        for t in self.sources(s):
            x = feats[t]
            if t < s:  # finer: pool down first, project at the level's resolution
                x = b.keep(f"{p}.from{t}.pool", "maxpool", x, MaxPool(s // t, s // t))
            y = b.conv(f"{p}.from{t}", x, wid, 1, p)
            if t > s:  # coarser: project at its own resolution, then upsample
                y = b.keep(f"{p}.from{t}.up", "upsample", y, Upsample(t // s))
            parts.append(y)
        if glb is not None:  # broadcast over the frame by the add
            parts.append(b.conv(f"{p}.glb", glb, wid, 1, p))
        if len(parts) == 1:
            return parts[0]
        if self.fusion != "cem":
            return b.join(f"{p}.fuse", "max", parts)
        x = parts[0]
        for j, y in enumerate(parts[1:]):  # binary adds, as every other residual
            x = b.join(f"{p}.fuse{j}" if j < len(parts) - 2 else f"{p}.fuse", "add", [x, y])
        return x


@dataclass(frozen=True)
class YoloV3Head:
    """YOLOv3's three-level head (Redmon and Farhadi, 2018): per level, five alternating 1x1 and
    3x3 convolutions, a 3x3 convolution and the YOLO output; a coarser level's 1x1 route is
    upsampled and concatenated with the next finer backbone feature (the route joins that
    feature's quantizer, as the join rule asks)."""

    widths: tuple[int, ...] = (128, 256, 512)  # the 1x1 widths per level, finest first
    anchors: tuple[tuple[int, int], ...] = ()
    masks: tuple[tuple[int, ...], ...] = ()  # per level, coarsest first
    num_classes: int = 80

    def taps(self, w: float) -> dict[int, int]:
        return {}

    def expand(self, b: Builder, feats: dict[int, str], taps: dict[int, str], w: float) -> None:
        out_ch = len(self.masks[0]) * (5 + self.num_classes)
        strides = level_strides(len(self.widths))
        x = feats[strides[-1]]
        for i, s in enumerate(reversed(strides)):
            p = f"head.l{s}"
            c = channels(self.widths[len(strides) - 1 - i], w)
            if i:
                f = feats[s]
                r = b.conv(f"{p}.route", x, c, 1, b.grp[f])
                up = b.keep(f"{p}.up", "upsample", r, Upsample(2))
                x = b.join(f"{p}.cat", "concat", [up, f])
            for j in range(5):
                x = b.conv(f"{p}.c{j}", x, c * (2 if j % 2 else 1), 3 if j % 2 else 1, f"{p}.c{j}")
            h = b.conv(f"{p}.conv", x, 2 * c, 3, f"{p}.conv")
            b.conv(f"{p}.y", h, out_ch, 1, act="linear", bn=False, role="head")
            b.g.add(
                f"head.out{s}",
                "output",
                f"{p}.y",
                Output("yolo", s, tuple(self.anchors[j] for j in self.masks[i])),
            )
