"""A tiny layer-graph IR, in the spirit of a darknet cfg with explicit names.

Architectures (``hwcsp.arch``) expand into a ``Graph``; one builder (``hwcsp.net``) turns any
graph into a module. Keeping the topology explicit lets the builder check hardware rules
(joins share a quantizer, no depthwise, ReLU only) and name the offending layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hwcsp.errors import UserError

Op = Literal[
    "input", "conv", "maxpool", "avgpool", "split", "concat", "add", "max", "mul", "upsample", "gap", "output"
]  # "max": the elementwise maximum of its inputs (Maxout is a split, then a max); "mul": features
# times a sigmoid gate of the same shape (SAM), requantized by its own quantizer
ACTIVATIONS = ("relu", "linear", "sigmoid")  # sigmoid: a gate, quantized at 2^-bits (SAM)
GATE = "gate:"  # the quantizer group of a sigmoid gate: its own, at a constant scale


class ArchitectureError(UserError, ValueError):
    """A model description breaks a hardware rule; the message names the layer."""


def channels(c: int, width: float) -> int:
    """Scale a channel count by the width multiplier (even, at least 2): every record and the
    Darknet reader scale widths this one way."""
    return max(2, 2 * round(c * width / 2))


@dataclass(frozen=True)
class Conv:
    """Convolution + (BatchNorm) + activation, quantized by the named activation group."""

    cout: int
    k: int = 3
    stride: int = 1
    groups: int = 1
    act: str = "relu"
    bn: bool = True
    # Activation-quantizer group. A ReLU output is unsigned in its group; a linear output with a
    # group is signed with one more bit at the group's scale (a residual branch feeding an add);
    # a linear output without one ("") is unquantized and may only feed an output.
    group: str = ""
    wbits: int | None = None  # None: the model's default weight width
    role: str = "hidden"  # "first", "hidden" or "head" (detection/classification output)


@dataclass(frozen=True)
class MaxPool:
    k: int = 2
    stride: int = 2
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # left, right, top, bottom (zero padding)


@dataclass(frozen=True)
class AvgPool:
    """k x k average pooling, no padding: exact integers as floor(sum / k^2) (k a power of two)."""

    k: int = 2
    stride: int = 2


@dataclass(frozen=True)
class Split:
    sizes: tuple[int, ...]


@dataclass(frozen=True)
class Upsample:
    scale: int = 2


@dataclass(frozen=True)
class Output:
    """A network output: ``kind`` is "yolo" (with anchors and stride) or "logits"."""

    kind: str = "yolo"
    stride: int = 0
    anchors: tuple[tuple[int, int], ...] = ()


@dataclass
class Node:
    name: str
    op: Op
    inputs: list[str] = field(default_factory=list)
    attrs: Conv | MaxPool | AvgPool | Split | Upsample | Output | None = None


@dataclass
class Graph:
    """Nodes in topological order. A ``split`` node ``s`` produces ``s:0``, ``s:1``, ..."""

    nodes: list[Node] = field(default_factory=list)
    in_channels: int = 3

    def add(self, name: str, op: Op, inputs: list[str] | str | None = None, attrs=None) -> str:
        if any(n.name == name for n in self.nodes):
            raise ArchitectureError(f"layer '{name}': defined twice")
        ins = [inputs] if isinstance(inputs, str) else list(inputs or [])
        self.nodes.append(Node(name, op, ins, attrs))
        return name

    def conv(self, name: str, x: str, spec: Conv) -> str:
        return self.add(name, "conv", x, spec)

    def node(self, name: str) -> Node:
        base = name.split(":")[0]
        for n in self.nodes:
            if n.name == base:
                return n
        raise ArchitectureError(f"unknown layer '{name}'")

    def outputs(self) -> list[Node]:
        return [n for n in self.nodes if n.op == "output"]

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    def total_stride(self) -> int:
        """The largest factor by which the graph shrinks its input: a valid input size is a
        multiple of it (every feature map then has whole pixels, and upsampled maps match)."""
        stride: dict[str, int] = {}
        for n in self.nodes:
            ins = [stride[i.split(":")[0]] for i in n.inputs]
            s = max(ins, default=1)
            if isinstance(n.attrs, Conv | MaxPool | AvgPool):
                s *= n.attrs.stride
            elif isinstance(n.attrs, Upsample):
                s = max(1, s // n.attrs.scale)
            stride[n.name] = s
        return max(stride.values(), default=1)
