"""The one Darknet cfg reader: cfg text -> ``Graph``, with Darknet's layer semantics.

Used by the zoo (models with a public cfg are written as cfg text and read here; the tests check
that text against the public files) and, later, by users importing their own networks.

Semantics, under the hardware rules (ReLU only, integer joins):
- ``leaky``, ``mish``, ``swish``, ``relu6`` and ``relu`` become ReLU (counts unchanged); ``linear``
  stays linear: a linear convolution that feeds anything but an output is a signed residual
  branch, quantized at the scale of the join it feeds (``hwcsp.graph.Conv``).
- ``[shortcut]`` adds ``from`` onto the previous layer and applies its activation (ReLU). Darknet
  allows ``from`` to have fewer channels (added onto the first ones) and a resolution that is a
  multiple of the previous layer's (every stride-th pixel is added). Both are built from streamable
  layers: a 1x1 stride-s max pool samples the pixels, and the previous convolution is computed as
  two convolutions (the first min(C) filters, linear, into the add; the rest, with the shortcut's
  ReLU, concatenated after it), so no tensor is sliced.
- ``[shortcut]`` from a layer with *more* channels (PRN's partial residual) adds its first C
  channels: that convolution is computed as two (the first C filters and the rest, concatenated
  under its name), so the first part is a tensor of its own.
- ``[route] layers=a,b`` concatenates; ``groups=G group_id=j`` takes channel slice j of G (a split).
- ``[avgpool]`` is the global average pool, ``[connected]`` after it a 1x1 convolution,
  ``[softmax]`` marks the logits output, ``[yolo]`` a detection output (its mask's anchors, the
  stride of its map); the convolution before either keeps its filters at any width.
- ``logistic`` (Darknet's default activation) becomes ReLU like the others (``CONVERTED``), except
  in a convolution right before a ``[sam]``: that is SAM's gate, a quantized sigmoid;
- ``[sam] from=k`` multiplies layer k by the gate before it (Darknet's sam_layer), requantized.
- Quantizer groups: the inputs of every join (and the add's output) share one quantizer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from hwcsp.graph import ArchitectureError, Conv, Graph, MaxPool, Output, Split, Upsample, channels

RELU_LIKE = ("leaky", "relu", "mish", "swish", "relu6", "logistic")
# activations that become ReLU under the hardware rule (the import command lists them)
CONVERTED = tuple(a for a in RELU_LIKE if a != "relu")
SUPPORTED = (
    "net",
    "convolutional",
    "connected",
    "maxpool",
    "avgpool",
    "route",
    "shortcut",
    "softmax",
    "upsample",
    "yolo",
    "sam",
)
HEADS = ("softmax", "yolo")  # a convolution right before one of these is an output convolution


class CfgError(ArchitectureError):
    """A cfg the reader cannot turn into integer hardware; the message names the section."""


@dataclass(frozen=True)
class Section:
    kind: str
    options: tuple[tuple[str, str], ...]
    line: int = 0  # where it starts in the text (1-based), for messages

    def get(self, key: str, default=None):
        for k, v in self.options:
            if k == key:
                return v
        return default

    def int(self, key: str, default: int | None = None) -> int:
        v = self.get(key)
        if v is None:
            if default is None:
                raise CfgError(f"[{self.kind}] at line {self.line}: missing '{key}='")
            return default
        try:
            return int(v)
        except ValueError:
            raise CfgError(f"[{self.kind}] at line {self.line}: '{key}={v}' is not an integer") from None

    def ints(self, key: str) -> list[int]:
        v = self.get(key)
        if v is None:
            raise CfgError(f"[{self.kind}] at line {self.line}: missing '{key}='")
        try:
            return [int(t) for t in v.split(",") if t.strip()]
        except ValueError:
            raise CfgError(
                f"[{self.kind}] at line {self.line}: '{key}={v}' is not a list of integers"
            ) from None


def parse_cfg(text: str) -> list[Section]:
    """Sections in order; comments (``#``, ``;``) and blank lines dropped, keys lower-cased."""
    out: list[Section] = []
    kind, opts, start = None, [], 0
    for i, raw in enumerate(text.splitlines(), 1):
        line = re.split(r"[#;]", raw, maxsplit=1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise CfgError(f"line {i}: unterminated section header '{line}'")
            if kind is not None:
                out.append(Section(kind, tuple(opts), start))
            kind, opts, start = line[1:-1].strip().lower(), [], i
        elif "=" in line:
            if kind is None:
                raise CfgError(f"line {i}: option '{line}' before the first [section]")
            k, v = line.split("=", 1)
            opts.append((k.strip().lower(), v.strip()))
        else:
            raise CfgError(f"line {i}: expected '[section]' or 'key=value', got '{line}'")
    if kind is not None:
        out.append(Section(kind, tuple(opts), start))
    if not out or out[0].kind != "net":
        raise CfgError("a Darknet cfg starts with a [net] section")
    return out


def format_cfg(sections: list[Section]) -> str:
    """Cfg text of ``sections`` (the zoo writes its public-cfg models this way)."""
    blocks = []
    for s in sections:
        blocks.append("\n".join([f"[{s.kind}]", *(f"{k}={v}" for k, v in s.options)]))
    return "\n\n".join(blocks) + "\n"


class CfgWriter:
    """Builds cfg sections in order; the zoo's public-cfg models are written with it."""

    def __init__(self, size: int, channels: int = 3):
        self.sections = [
            Section("net", (("height", str(size)), ("width", str(size)), ("channels", str(channels))))
        ]

    def _add(self, kind: str, **opts) -> CfgWriter:
        self.sections.append(Section(kind, tuple((k, str(v)) for k, v in opts.items())))
        return self

    def conv(
        self, filters: int, size: int = 1, stride: int = 1, act: str = "leaky", groups: int = 1
    ) -> CfgWriter:
        opts = {"batch_normalize": 1, "filters": filters, "size": size}
        if groups > 1:
            opts["groups"] = groups
        return self._add("convolutional", **opts, stride=stride, pad=1, activation=act)

    def maxpool(self, size: int = 2, stride: int = 2) -> CfgWriter:
        return self._add("maxpool", size=size, stride=stride)

    def route(self, *layers: int) -> CfgWriter:
        return self._add("route", layers=",".join(map(str, layers)))

    def shortcut(self, frm: int) -> CfgWriter:
        return self._add("shortcut", **{"from": frm}, activation="leaky")

    def classifier(self, classes: int = 1000) -> CfgWriter:
        self._add("avgpool")
        self._add("convolutional", filters=classes, size=1, stride=1, pad=1, activation="linear")
        return self._add("softmax", groups=1)

    def text(self) -> str:
        return format_cfg(self.sections)


def _scaled_groups(groups: int, cin: int, cin_w: int, cout_w: int) -> int:
    """Keep the channels per group at reduced width: fewer groups, never fewer channels each."""
    if groups == 1:
        return 1
    per = cin // groups
    g = max(1, cin_w // per)
    while g > 1 and (cin_w % g or cout_w % g):
        g -= 1
    return g


class _Reader:
    def __init__(self, sections: list[Section], width: float, num_classes: int | None):
        self.sections = sections
        self.width = width
        self.num_classes = num_classes
        self.g = Graph()
        self.layer: list[str] = []  # darknet layer index -> tensor name
        self.ch: dict[str, int] = {}
        self.stride: dict[str, int] = {}
        self.parent: dict[str, str] = {}  # union-find over quantizer groups
        self.convs: dict[str, Conv] = {}  # conv tensor -> its spec, groups resolved at the end
        self.orig_ch: dict[str, int] = {}
        self.removed: set[str] = set()  # convs computed as two (a shortcut onto fewer channels)
        self.taps: dict[str, str] = {}  # conv -> its first filters as their own conv (PRN residuals)
        self.handlers = {
            "convolutional": self._convolutional,
            "maxpool": self._maxpool,
            "avgpool": self._avgpool,
            "upsample": self._upsample,
            "route": self._route,
            "shortcut": self._shortcut,
            "sam": self._sam,
        }
        self.classes: int | None = None  # of the [yolo] layers (one value for all)

    # ---- quantizer groups
    def _find(self, x: str) -> str:
        while self.parent.setdefault(x, x) != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def _union(self, names: list[str]) -> None:
        roots = [self._find(self._root_of(n)) for n in names]
        for r in roots[1:]:
            self.parent[r] = roots[0]

    def _root_of(self, tensor: str) -> str:
        return tensor.split(":")[0]

    # ---- helpers
    def _ref(self, s: Section, i: int, offset: int) -> str:
        j = i + offset if offset < 0 else offset
        if not 0 <= j < i:
            raise CfgError(f"[{s.kind}] at line {s.line}: layer {offset} is out of range (this is layer {i})")
        if self.layer[j] in self.removed:
            raise CfgError(
                f"[{s.kind}] at line {s.line}: layer {j} was split for a shortcut onto fewer channels "
                "and cannot be read again"
            )
        return self.layer[j]

    def _tensor(self, name: str, ch: int, stride: int) -> str:
        self.ch[name], self.stride[name] = ch, stride
        return name

    def read(self) -> Graph:
        net = self.sections[0]
        self.g.in_channels = net.int("channels", 3)
        prev = self._tensor(self.g.add("input", "input"), self.g.in_channels, 1)
        self.parent["input"] = "input"
        body = self.sections[1:]
        for i, s in enumerate(body):
            if s.kind not in SUPPORTED:
                raise CfgError(
                    f"[{s.kind}] at line {s.line}: not supported (supported: {', '.join(SUPPORTED[1:])})"
                )
            nxt = body[i + 1] if i + 1 < len(body) else None
            if s.kind in HEADS:
                prev = self._softmax(s, i, prev) if s.kind == "softmax" else self._yolo(s, i, prev)
            elif s.kind in ("convolutional", "connected"):
                head = nxt if nxt is not None and nxt.kind in HEADS else None
                gate = nxt is not None and nxt.kind == "sam" and s.get("activation", "logistic") == "logistic"
                prev = self._convolutional(s, i, prev, head, gate)
            else:
                prev = self.handlers[s.kind](s, i, prev, False)
            self.layer.append(prev)
        return self._finish()

    # ---- sections
    def _convolutional(self, s: Section, i: int, x: str, head: Section | None, gate: bool = False) -> str:
        if s.kind == "connected":  # on a 1x1 map (after [avgpool]) it is a 1x1 convolution
            if self.g.node(x).op != "gap":
                raise CfgError(
                    f"[connected] at line {s.line}: only after [avgpool] (a fully connected layer on a "
                    "spatial map flattens it, which has no streaming form here)"
                )
            s = Section(s.kind, (*s.options, ("filters", str(s.int("output"))), ("size", "1")), s.line)
        k, stride, pad = s.int("size", 1), s.int("stride", 1), s.int("pad", 0)
        if k > 1 and pad != 1 and s.int("padding", -1) != k // 2:
            raise CfgError(f"[convolutional] at line {s.line}: only 'same' padding (pad=1) is supported")
        if s.int("dilation", 1) != 1:
            raise CfgError(f"[convolutional] at line {s.line}: dilated convolution is not supported")
        act = s.get("activation", "logistic")
        if gate:
            act = "sigmoid"  # SAM's gate (the [sam] after it): a quantized sigmoid, not a ReLU
        elif act in RELU_LIKE:
            act = "relu"
        elif act != "linear":
            raise CfgError(
                f"[convolutional] at line {s.line}: activation '{act}' is not supported "
                "(ReLU-like or linear only: activations are integer thresholds)"
            )
        filters = s.int("filters")
        cin, cin_orig = self.ch[x], self.orig_ch.get(x, self.ch[x])
        groups = s.int("groups", 1)
        if groups > 1 and groups == cin_orig and filters == groups:
            raise CfgError(f"[convolutional] at line {s.line}: depthwise convolution is not supported")
        if head is None:
            cout = channels(filters, self.width)
        elif self.num_classes is None:
            cout = filters
        elif head.kind == "yolo":
            cout = len(head.ints("mask")) * (5 + self.num_classes)
        else:
            cout = self.num_classes
        groups = _scaled_groups(groups, cin_orig, cin, cout)
        bn = s.int("batch_normalize", 0) == 1
        role = "head" if head is not None else ("first" if x == "input" else "hidden")
        name = f"conv{i}"
        spec = Conv(cout, k, stride, groups, act, bn, "", None, role)
        self.convs[name] = spec
        self.g.conv(name, x, spec)
        self.orig_ch[name] = filters
        return self._tensor(name, cout, self.stride[x] * stride)

    def _maxpool(self, s: Section, i: int, x: str, _head: bool) -> str:
        if s.int("maxpool_depth", 0):
            return self._maxout(s, i, x)
        k, stride = s.int("size", 1), s.int("stride", 1)
        pad = s.int("padding", k - 1)
        if k == stride and s.get("padding") is None:
            # valid sizes are multiples of the total stride: a k = stride window never reads
            # Darknet's default padding, and leaving it out spares the hardware a padding layer
            pad = 0
        left = pad // 2
        name = self.g.add(
            f"maxpool{i}", "maxpool", x, MaxPool(k, stride, (left, pad - left, left, pad - left))
        )
        self.orig_ch[name] = self.orig_ch.get(x, self.ch[x])
        self._union([name, x])
        return self._tensor(name, self.ch[x], self.stride[x] * stride)

    def _maxout(self, s: Section, i: int, x: str) -> str:
        """Darknet's ``maxpool_depth=1``, ``out_channels=N``: output channel g is the maximum of
        input channels g, g + N, g + 2N, ... (EFM's compression): a split into chunks of N
        channels, then their elementwise maximum."""
        n, c = s.int("out_channels", 1), self.ch[x]
        if s.int("size", 1) != 1 or s.int("stride", 1) != 1:
            raise CfgError(
                f"[maxpool] at line {s.line}: maxout (maxpool_depth) with a spatial window is not supported"
            )
        if n < 1 or c % n or c == n:
            raise CfgError(
                f"[maxpool] at line {s.line}: out_channels={n} must divide the {c} input channels "
                "into two or more chunks"
            )
        parts = self.g.add(f"maxout{i}.split", "split", x, Split(tuple([n] * (c // n))))
        name = self.g.add(f"maxout{i}", "max", [f"{parts}:{j}" for j in range(c // n)])
        self.orig_ch[parts], self.orig_ch[name] = c, n
        self._union([name, parts, x])  # the codes of x, regrouped: one quantizer
        self._tensor(parts, c, self.stride[x])
        return self._tensor(name, n, self.stride[x])

    def _sam(self, s: Section, i: int, x: str, _head: bool) -> str:
        """Darknet's [sam]: layer ``from`` times the sigmoid gate right before (same shape)."""
        gate = self.g.node(x)
        if gate.op != "conv" or gate.attrs.act != "sigmoid":
            raise CfgError(f"[sam] at line {s.line}: must follow a convolution with activation=logistic")
        src = self._ref(s, i, s.int("from"))
        if self.ch[src] != self.ch[x] or self.stride[src] != self.stride[x]:
            raise CfgError(
                f"[sam] at line {s.line}: the gate ({self.ch[x]} channels) and layer {s.get('from')} "
                f"({self.ch[src]} channels) differ in shape"
            )
        name = self.g.add(f"sam{i}", "mul", [src, x])
        self.orig_ch[name] = self.orig_ch.get(src, self.ch[src])
        return self._tensor(name, self.ch[src], self.stride[src])

    def _avgpool(self, s: Section, i: int, x: str, _head: bool) -> str:
        name = self.g.add(f"gap{i}", "gap", x)
        self.orig_ch[name] = self.orig_ch.get(x, self.ch[x])
        return self._tensor(name, self.ch[x], self.stride[x])

    def _upsample(self, s: Section, i: int, x: str, _head: bool) -> str:
        st = s.int("stride", 2)
        name = self.g.add(f"upsample{i}", "upsample", x, Upsample(st))
        self.orig_ch[name] = self.orig_ch.get(x, self.ch[x])
        self._union([name, x])
        return self._tensor(name, self.ch[x], max(1, self.stride[x] // st))

    def _softmax(self, s: Section, i: int, x: str) -> str:
        if x not in self.convs or self.convs[x].role != "head":
            raise CfgError(f"[softmax] at line {s.line}: must follow the classifier's convolution")
        return self.g.add("logits", "output", x, Output("logits"))

    def _yolo(self, s: Section, i: int, x: str) -> str:
        for key, neutral in (("new_coords", 0.0), ("scale_x_y", 1.0)):
            v = s.get(key)
            if v is not None and _number(v) != neutral:
                raise CfgError(
                    f"[yolo] at line {s.line}: '{key}={v}' is not supported ({key}={neutral:g} only)"
                )
        if x not in self.convs or self.convs[x].role != "head" or self.convs[x].act != "linear":
            raise CfgError(f"[yolo] at line {s.line}: must follow a linear convolution (the output layer)")
        mask, classes = s.ints("mask"), s.int("classes", 80)
        flat = s.ints("anchors")
        anchors = list(zip(flat[0::2], flat[1::2], strict=False))
        if len(flat) % 2 or any(not 0 <= m < len(anchors) for m in mask):
            raise CfgError(f"[yolo] at line {s.line}: mask {mask} does not index the {len(anchors)} anchors")
        if self.orig_ch[x] != len(mask) * (5 + classes):
            raise CfgError(
                f"[yolo] at line {s.line}: the convolution before it has {self.orig_ch[x]} filters, "
                f"{len(mask)} anchors x (5 + {classes} classes) = {len(mask) * (5 + classes)} expected"
            )
        if self.classes not in (None, classes):
            raise CfgError(f"[yolo] at line {s.line}: classes={classes}, another [yolo] has {self.classes}")
        self.classes = classes
        out = Output("yolo", self.stride[x], tuple(anchors[m] for m in mask))
        return self.g.add(f"yolo{i}", "output", x, out)

    def _route(self, s: Section, i: int, x: str, _head: bool) -> str:
        srcs = [self._ref(s, i, o) for o in s.ints("layers")]
        groups, gid = s.int("groups", 1), s.int("group_id", 0)
        if len({self.stride[t] for t in srcs}) != 1:
            raise CfgError(f"[route] at line {s.line}: concatenated layers differ in resolution")
        if groups > 1:
            if len(srcs) != 1:
                raise CfgError(f"[route] at line {s.line}: groups= needs exactly one layer")
            c = self.ch[srcs[0]]
            if c % groups:
                raise CfgError(f"[route] at line {s.line}: {c} channels do not split into {groups} groups")
            if not 0 <= gid < groups:
                raise CfgError(f"[route] at line {s.line}: group_id={gid} outside 0..{groups - 1}")
            name = self.g.add(f"route{i}", "split", srcs[0], Split(tuple([c // groups] * groups)))
            self.orig_ch[name] = self.orig_ch.get(srcs[0], c) // groups
            self._union([name, srcs[0]])
            self._tensor(name, c, self.stride[srcs[0]])
            return self._tensor(f"{name}:{gid}", c // groups, self.stride[srcs[0]])
        if len(srcs) == 1:
            return srcs[0]  # an alias: the layer is read again (a fork)
        name = self.g.add(f"route{i}", "concat", srcs)
        self.orig_ch[name] = sum(self.orig_ch.get(t, self.ch[t]) for t in srcs)
        self._union([name, *srcs])
        return self._tensor(name, sum(self.ch[t] for t in srcs), self.stride[srcs[0]])

    def _shortcut(self, s: Section, i: int, x: str, _head: bool) -> str:
        offs = s.ints("from")
        if len(offs) != 1:
            raise CfgError(f"[shortcut] at line {s.line}: one 'from' layer only")
        f = self._ref(s, i, offs[0])
        act = s.get("activation", "linear")
        if act not in RELU_LIKE:
            raise CfgError(
                f"[shortcut] at line {s.line}: activation '{act}' is not supported "
                "(the add's output is quantized with a ReLU)"
            )
        if s.get("weights_type", "none") != "none":
            raise CfgError(f"[shortcut] at line {s.line}: weighted shortcuts are not supported")
        sf, sx = self.stride[f], self.stride[x]
        if sx % sf:
            raise CfgError(f"[shortcut] at line {s.line}: 'from' is coarser than the layer it is added to")
        src = f
        if sx != sf:  # sample every (sx/sf)-th pixel: a 1x1 window of that stride
            src = self.g.add(f"shortcut{i}.sample", "maxpool", f, MaxPool(1, sx // sf))
            self._tensor(src, self.ch[f], sx)
            self._union([src, f])
        cf, cx = self.ch[f], self.ch[x]
        if cf > cx:  # the first cx channels of 'from' (PRN): computed as their own convolution
            src = self._tap_conv(s, f, cx)
            cf = cx
        name = f"shortcut{i}"
        if cf == cx:
            self.g.add(name, "add", [x, src])
            self._union([name, x, src])
            self.orig_ch[name] = self.orig_ch.get(x, cx)
            return self._tensor(name, cx, sx)
        a, b = self._split_conv(s, x, cf)
        add = self.g.add(f"{name}.add", "add", [a, src])
        self._tensor(add, cf, sx)
        self.g.add(name, "concat", [add, b])
        self._union([name, add, a, b, src])
        self.orig_ch[name] = self.orig_ch.get(x, cx)
        return self._tensor(name, cx, sx)

    def _tap_conv(self, s: Section, f: str, first: int) -> str:
        """Conv ``f`` as two convolutions (its first ``first`` filters and the rest) concatenated
        under its name, so its readers are unchanged and the first part is a tensor of its own."""
        if f in self.taps and self.ch[self.taps[f]] == first:
            return self.taps[f]  # read again (the PRN head adds layer 8 twice)
        spec = self.convs.get(f)
        if spec is None or spec.act != "relu":
            raise CfgError(
                f"[shortcut] at line {s.line}: 'from' has more channels ({self.ch[f]}) than the layer "
                f"({first}); adding its first channels needs 'from' to be a ReLU convolution "
                "(slicing a tensor is not streamable)"
            )
        at = self.g.nodes.index(self.g.node(f))
        node = self.g.nodes.pop(at)
        del self.convs[f]
        a, b = f"{f}a", f"{f}b"
        self.convs[a] = replace(spec, cout=first)
        self.convs[b] = replace(spec, cout=spec.cout - first)
        tail = self.g.nodes[at:]
        del self.g.nodes[at:]
        for n in (a, b):
            self.g.conv(n, node.inputs[0], self.convs[n])
            self._tensor(n, self.convs[n].cout, self.stride[f])
            self.orig_ch[n] = self.convs[n].cout
        self.g.add(f, "concat", [a, b])
        self.g.nodes.extend(tail)
        self._union([f, a, b])
        self.taps[f] = a
        return a

    def _split_conv(self, s: Section, x: str, first: int) -> tuple[str, str]:
        """Replace conv ``x`` by two: its first ``first`` filters and the rest (with ReLU)."""
        spec = self.convs.get(x)
        if spec is None or spec.act != "linear" or self.g.consumers(x) or self.layer.count(x) > 1:
            raise CfgError(
                f"[shortcut] at line {s.line}: adding fewer channels needs the previous layer to be "
                "a linear convolution read by nothing else"
            )
        node = self.g.node(x)
        self.g.nodes.remove(node)
        del self.convs[x]
        self.removed.add(x)
        a, b = f"{x}a", f"{x}b"
        self.convs[a] = replace(spec, cout=first)
        self.convs[b] = replace(spec, cout=spec.cout - first, act="relu")
        for n in (a, b):
            self.g.conv(n, node.inputs[0], self.convs[n])
            self._tensor(n, self.convs[n].cout, self.stride[x])
        return a, b

    def _finish(self) -> Graph:
        """Resolve the quantizer groups: a ReLU conv and a linear conv read by more than the
        output join the group of their tensor's joins (a lone one names its own)."""
        for n in self.g.nodes:
            if n.op == "conv":
                feeds_output = all(c.op == "output" for c in self.g.consumers(n.name))
                group = "" if n.attrs.act == "linear" and feeds_output else self._find(n.name)
                n.attrs = replace(n.attrs, group=group)
        if not self.g.outputs():
            raise CfgError("the cfg has no output ([softmax] after the classifier's convolution)")
        return self.g


def _number(v: str) -> float | None:
    try:
        return float(v)
    except ValueError:
        return None


def cfg_graph(text: str, width: float = 1.0, num_classes: int | None = None) -> Graph:
    """The ``Graph`` of a Darknet cfg at a width multiplier (the classifier keeps its classes)."""
    if not (width > 0 and math.isfinite(width)):
        raise CfgError(f"width must be positive, got {width}")
    return _Reader(parse_cfg(text), width, num_classes).read()
