"""Declarative architecture records and their expansion into a ``Graph``.

A model is a stem, a list of stages (each preceded by a 2x2/2 maxpool) and a head. Stage and
head records expand themselves (``expand``; a head also says which stage taps it reads), so a
new stage or head type is one record in this module and ``build_graph`` does not change. A CSP stage
is one reusable record, parameterised by the split ratio gamma and the fusion strategy
(paper, Fig. 3): ``csp`` (partial transition -> concat -> transition), ``first`` (concat ->
transition), ``last`` (partial transition -> concat) and ``none`` (plain dense stage).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwcsp.darknet_cfg import cfg_graph
from hwcsp.graph import ArchitectureError, AvgPool, Conv, Graph, MaxPool, Output, Split, Upsample, channels
from hwcsp.heads import FusionHead, YoloV3Head

FUSIONS = ("csp", "first", "last", "none")
LAYERS = ("plain", "twoway")


@dataclass(frozen=True)
class PlainStage:
    """One 3x3 conv (darknet)."""

    cout: int
    k: int = 3

    def expand(self, b: _Builder, name: str, x: str, w: float, tap: int | None):
        return b.final_conv(f"{name}.conv", x, channels(self.cout, w), self.k, name, tap)


@dataclass(frozen=True)
class CSPDenseStage:
    """Cross-stage-partial dense stage. ``m`` = 0 is the b-variant's single 1x1 conv.

    ``layer`` is the dense layer: "plain" (one 3x3 conv of ``growth``) or "twoway" (PeleeNet's
    two-way layer: a 1x1 -> 3x3 branch and a 1x1 -> 3x3 -> 3x3 branch of growth/2 each, their
    1x1 convs ``bottleneck`` x growth/2 wide)."""

    cout: int
    m: int
    growth: int
    gamma: float = 0.5  # share of the input channels that bypasses the dense block (part1)
    fusion: str = "csp"
    layer: str = "plain"
    bottleneck: int = 1
    # close with a 2x2/2 average pool (PeleeNet's transitions); with CSP fusion the pool comes
    # between the concat and the transition, which then runs at the pooled resolution
    pool: bool = False

    def expand(self, b: _Builder, name: str, x: str, w: float, tap: int | None):
        return _csp_stage(b, name, x, self, w, tap)

    @property
    def late_pool(self) -> bool:
        """Pools before its transition (CSP fusion): the stage's output, and a partial-residual
        tap of it, are at the pooled resolution; otherwise the transition runs first."""
        return self.pool and self.fusion == "csp" and self.m > 0


@dataclass(frozen=True)
class PeleeStem:
    """PeleeNet's stem block (stride 4): a 3x3/2 conv, then a 1x1 -> 3x3/2 branch beside a
    2x2/2 maxpool, concatenated (both in the first conv's quantizer group) and fused by a 1x1."""

    cout: int = 32
    stride: int = 4

    def expand(self, b: _Builder, x: str, w: float) -> str:
        c = channels(self.cout, w)
        s1 = b.conv("stem", x, c, 3, "stem", role="first", stride=2)
        r = b.conv("stem.reduce", s1, channels(self.cout // 2, w), 1, "stem.reduce")
        d = b.conv("stem.down", r, c, 3, "stem", stride=2)
        p = b.keep("stem.pool", "maxpool", s1, MaxPool(2, 2))
        cat = b.join("stem.cat", "concat", [d, p])
        return b.conv("stem.fuse", cat, c, 1, "stem.fuse")


@dataclass(frozen=True)
class PoolResidual:
    """YOLOv3-tiny-PRN layers 11-13: 2x2/1 maxpool (pad right/bottom), 3x3 conv, residual add."""

    k: int = 3


@dataclass(frozen=True)
class ClassifierHead:
    """Global average pool and a 1x1 conv to the logits."""

    num_classes: int = 1000

    def taps(self, w: float) -> dict[int, int]:
        return {}

    def expand(self, b: _Builder, feats: dict[int, str], taps: dict[int, str], w: float) -> None:
        x = feats[max(feats)]
        gp = b.g.add("gap", "gap", x)
        b.ch[gp], b.grp[gp] = b.ch[x], gp
        b.conv("fc", gp, self.num_classes, 1, act="linear", bn=False, role="head")
        b.g.add("logits", "output", "fc", Output("logits"))


@dataclass(frozen=True)
class PRNHead:
    """YOLOv3-tiny-PRN head (from its layer 14): partial residual adds, 2 or 3 YOLO levels."""

    levels: int = 2
    anchors: tuple[tuple[int, int], ...] = ()
    masks: tuple[tuple[int, ...], ...] = ()  # per level, coarsest first
    num_classes: int = 80

    def taps(self, w: float) -> dict[int, int]:
        """Channels of the partial-residual taps the head reads at strides 16 (and 8)."""
        need = {16: channels(128, w)}
        if self.levels == 3:
            need[8] = channels(128, w)
        return need

    def expand(self, b: _Builder, feats: dict[int, str], taps: dict[int, str], w: float) -> None:
        for s, c in self.taps(w).items():
            if b.ch[taps.get(s, feats[s])] != c:
                raise ArchitectureError(
                    f"PRN head: stride-{s} feature has {b.ch[feats[s]]} channels, needs >= {c}"
                )
        _prn_head(b, self, feats, taps, w)


DOWNSAMPLES = ("maxpool", "stage")


@dataclass(frozen=True)
class CfgArch:
    """A network written as Darknet cfg text (``hwcsp.darknet_cfg`` reads it): the models with a
    public cfg, whose text the tests compare with the public files."""

    text: str
    head: ClassifierHead = ClassifierHead()

    def graph(self, width: float, num_classes: int | None) -> Graph:
        return cfg_graph(self.text, width, num_classes)

    @property
    def task(self) -> str:
        yolo = any(n.attrs.kind == "yolo" for n in self.graph(1.0, None).outputs())
        return "detect" if yolo else "classify"


@dataclass(frozen=True)
class Arch:
    stem: int | PeleeStem  # channels of the 3x3 stride-1 stem conv, or a stem record
    stages: tuple[PlainStage | CSPDenseStage, ...]
    head: ClassifierHead | PRNHead | FusionHead | YoloV3Head
    tail: tuple[PoolResidual, ...] = ()  # layers after the last stage, before the head
    pool_last: bool = True  # maxpool before the last stage
    # "maxpool": a 2x2/2 maxpool before each stage (Darknet Reference); "stage": the stages
    # downsample themselves (PeleeNet's average-pooling transitions, ``CSPDenseStage.pool``)
    downsample: str = "maxpool"

    @property
    def task(self) -> str:
        return "classify" if isinstance(self.head, ClassifierHead) else "detect"


class _Builder:
    def __init__(self, width: float):
        self.g = Graph()
        self.w = width
        self.ch: dict[str, int] = {}
        self.grp: dict[str, str] = {}
        self.pre_pool: str | None = None

    def conv(self, name, x, cout, k=1, group="", act="relu", bn=True, role="hidden", stride=1):
        self.g.conv(name, x, Conv(cout, k, stride, 1, act, bn, group, None, role))
        self.ch[name], self.grp[name] = cout, group
        return name

    def join(self, name, op, xs):
        self.g.add(name, op, xs)
        self.ch[name] = sum(self.ch[x] for x in xs) if op == "concat" else self.ch[xs[0]]
        self.grp[name] = self.grp[xs[0]]
        return name

    def keep(self, name, op, x, attrs):
        self.g.add(name, op, x, attrs)
        self.ch[name], self.grp[name] = self.ch[x], self.grp[x]
        return name

    def final_conv(self, name, x, cout, k, group, tap: int | None):
        """A stage's output conv; with ``tap`` its filters are split so that the first ``tap``
        channels exist as their own tensor (``<name>a``) for a partial residual."""
        if tap is None or tap >= cout:
            return self.conv(name, x, cout, k, group), None
        a = self.conv(f"{name}a", x, tap, k, group)
        b = self.conv(f"{name}b", x, cout - tap, k, group)
        return self.join(name, "concat", [a, b]), a


def _csp_stage(b: _Builder, name: str, x: str, s: CSPDenseStage, w: float, tap: int | None):
    """Returns (output tensor, partial tap or None). Dense layers join the input's group."""
    if s.fusion not in FUSIONS:
        raise ArchitectureError(f"stage '{name}': unknown fusion '{s.fusion}' (one of {FUSIONS})")
    if s.layer not in LAYERS:
        raise ArchitectureError(f"stage '{name}': unknown dense layer '{s.layer}' (one of {LAYERS})")
    out, t = _csp_stage_body(b, name, x, s, w, tap)
    if s.pool and not s.late_pool:
        b.pre_pool = out  # the stage's last feature at its own resolution (a head may read it)
        out = b.keep(f"{name}.pool", "avgpool", out, AvgPool(2, 2))
    return out, t


def _csp_stage_body(b: _Builder, name: str, x: str, s: CSPDenseStage, w: float, tap: int | None):
    gin, gout = b.grp[x], f"{name}"
    cin = b.ch[x]
    cout, growth = channels(s.cout, w), channels(s.growth, w)
    if s.m == 0:
        return b.final_conv(f"{name}.t", x, cout, 1, gout, tap)
    if s.fusion == "none":
        part1, feats = None, x
    else:
        c1 = round(s.gamma * cin)
        if not 0 < c1 < cin:
            raise ArchitectureError(f"stage '{name}': gamma={s.gamma} leaves an empty part of {cin} channels")
        sp = b.g.add(f"{name}.split", "split", x, Split((c1, cin - c1)))
        for j, c in enumerate((c1, cin - c1)):
            b.ch[f"{sp}:{j}"], b.grp[f"{sp}:{j}"] = c, gin
        part1, feats = f"{sp}:0", f"{sp}:1"
    # Dense block as a chain: x_{j+1} = concat(x_j, layer_j(x_j)) keeps every fork small.
    for j in range(s.m):
        if s.layer == "twoway":
            feats = _two_way_layer(b, f"{name}.d{j}", feats, s, w, gin)
        else:
            d = b.conv(f"{name}.d{j}", feats, growth, 3, gin)
            feats = b.join(f"{name}.cat{j}", "concat", [feats, d])
    if s.fusion == "none":
        return b.final_conv(f"{name}.t", feats, cout, 1, gout, tap)
    if s.fusion == "first":
        cat = b.join(f"{name}.fuse", "concat", [part1, feats])
        return b.final_conv(f"{name}.t", cat, cout, 1, gout, tap)
    if s.fusion == "last":
        pt = b.conv(f"{name}.pt", feats, cout - b.ch[part1], 1, gin)
        return b.join(f"{name}.fuse", "concat", [part1, pt]), None
    pt = b.conv(f"{name}.pt", feats, b.ch[feats], 1, gin)
    cat = b.join(f"{name}.fuse", "concat", [part1, pt])
    if s.pool:
        cat = b.keep(f"{name}.pool", "avgpool", cat, AvgPool(2, 2))
    return b.final_conv(f"{name}.t", cat, cout, 1, gout, tap)


def _two_way_layer(b: _Builder, p: str, x: str, s: CSPDenseStage, w: float, gin: str) -> str:
    """PeleeNet's two-way dense layer: concat(x, 3x3(1x1(x)), 3x3(3x3(1x1(x))))."""
    half = channels(s.growth // 2, w)
    inner = channels(s.bottleneck * s.growth // 2, w)
    a = b.conv(f"{p}a.reduce", x, inner, 1, f"{p}a")
    a = b.conv(f"{p}a.conv", a, half, 3, gin)
    c = b.conv(f"{p}b.reduce", x, inner, 1, f"{p}b")
    c = b.conv(f"{p}b.conv1", c, half, 3, f"{p}b")
    c = b.conv(f"{p}b.conv2", c, half, 3, gin)
    return b.join(f"{p}.cat", "concat", [x, a, c])


def _prn_head(b: _Builder, h: PRNHead, feats: dict[int, str], taps: dict[int, str], w: float):
    out_ch = len(h.masks[0]) * (5 + h.num_classes)
    anchors = [tuple(h.anchors[i] for i in m) for m in h.masks]
    x = feats[32]
    c14 = channels(256, w)
    h14 = b.conv("head.h14", x, c14, 1, "head.h14")
    h15 = b.conv("head.h15", h14, c14, 3, "head.h14")
    h16 = b.join("head.h16", "add", [h14, h15])
    b.conv("head.y32", h16, out_ch, 1, act="linear", bn=False, role="head")
    b.g.add("head.out32", "output", "head.y32", Output("yolo", 32, anchors[0]))
    route, stride = h15, 16
    for level in range(1, h.levels):
        p = f"head.s{stride}"
        tap = taps.get(stride, feats[stride])
        c = b.ch[tap]
        if b.grp[tap] == "":
            raise ArchitectureError(f"{p}: tap '{tap}' is not quantized")
        r = b.conv(f"{p}.reduce", route, c, 1, b.grp[tap])
        up = b.keep(f"{p}.up", "upsample", r, Upsample(2))
        a1 = b.join(f"{p}.add1", "add", [up, tap])
        c3 = b.conv(f"{p}.conv", a1, c, 3, b.grp[tap])
        a2 = b.join(f"{p}.add2", "add", [c3, up])
        a3 = b.join(f"{p}.add3", "add", [a2, tap])
        b.conv(f"{p}.y", a3, out_ch, 1, act="linear", bn=False, role="head")
        b.g.add(f"head.out{stride}", "output", f"{p}.y", Output("yolo", stride, anchors[level]))
        route, stride = c3, stride // 2


def build_graph(arch: Arch | CfgArch, width: float = 1.0, num_classes: int | None = None) -> Graph:
    """Expand an ``Arch`` at a width multiplier into a validated-later ``Graph``."""
    if width <= 0:
        raise ArchitectureError(f"width must be positive, got {width}")
    if isinstance(arch, CfgArch):
        return arch.graph(width, num_classes)
    b = _Builder(width)
    b.g.add("input", "input")
    b.ch["input"], b.grp["input"] = 3, "input"
    head = arch.head
    if num_classes is not None:
        head = type(head)(**{**head.__dict__, "num_classes": num_classes})
    need_tap = head.taps(width)
    if arch.downsample not in DOWNSAMPLES:
        raise ArchitectureError(f"unknown downsample '{arch.downsample}' (one of {DOWNSAMPLES})")
    if isinstance(arch.stem, int):
        x, stride = b.conv("stem", "input", channels(arch.stem, width), 3, "stem", role="first"), 1
    else:
        x, stride = arch.stem.expand(b, "input", width), arch.stem.stride
    feats: dict[int, str] = {stride: x}
    taps: dict[int, str] = {}
    # feats[s]: the deepest feature at stride s (what a head reads); a stage that closes with an
    # average pool leaves its transition at its own stride and its output at twice that
    for i, st in enumerate(arch.stages):
        last = i == len(arch.stages) - 1
        if arch.downsample == "maxpool" and (not last or arch.pool_last):
            x = b.keep(f"pool{stride * 2}", "maxpool", x, MaxPool(2, 2))
            stride *= 2
        name = f"s{stride}"
        pool = getattr(st, "pool", False)
        out_stride = 2 * stride if pool and st.late_pool else stride
        b.pre_pool = None
        x, tap = st.expand(b, name, x, width, need_tap.get(out_stride))
        if pool:
            if b.pre_pool is not None:
                feats[stride] = b.pre_pool
            stride *= 2
        feats[stride] = x
        if tap is not None:
            taps[out_stride] = tap
    for j, t in enumerate(arch.tail):
        p = b.keep(f"tail{j}.pool", "maxpool", x, MaxPool(2, 1, (0, 1, 0, 1)))
        c = b.conv(f"tail{j}.conv", p, b.ch[x], t.k, b.grp[x])
        x = b.join(f"tail{j}.add", "add", [x, c])
    feats[stride] = x
    head.expand(b, feats, taps, width)
    return b.g
