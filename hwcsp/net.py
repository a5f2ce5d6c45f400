"""The one builder: any ``Graph`` becomes a float or Brevitas-quantized ``nn.Module``."""

from __future__ import annotations

import torch
from brevitas.quant_tensor import QuantTensor
from torch import nn

from hwcsp.graph import ACTIVATIONS, GATE, ArchitectureError, AvgPool, Conv, Graph, MaxPool, Split, Upsample
from hwcsp.modules import (
    Add,
    Concat,
    ConvBN,
    GlobalAvgPool,
    Identity,
    Max,
    Mul,
    make_act,
    make_gate,
    make_input_quant,
    make_signed_act,
    tie_scale,
)
from hwcsp.modules import (
    AvgPool as AvgPoolModule,
)
from hwcsp.modules import MaxPool as MaxPoolModule
from hwcsp.modules import Split as SplitModule
from hwcsp.modules import Upsample as UpsampleModule
from hwcsp.quant import INPUT_BITS, QuantConfig, fuse_fake_quant

MIN_GROUP_CHANNELS = 4  # below that a grouped convolution is all but depthwise


def signed_key(group: str) -> str:
    """The module key of a group's signed quantizer (its own export scope, beside the ReLU's)."""
    return layer_key(group) + "__signed"


def layer_key(name: str) -> str:
    """The module-dict key of a graph layer (dots are not allowed in ``nn.ModuleDict`` keys)."""
    return name.replace(".", "_")


def check_graph(graph: Graph) -> dict[str, int]:
    """Validate hardware rules and return the channel count of every tensor."""
    return _infer(graph)[0]


def tensor_groups(graph: Graph) -> dict[str, str]:
    """Activation group of every tensor (``""`` for linear outputs)."""
    return _infer(graph)[1]


def _infer(graph: Graph) -> tuple[dict[str, int], dict[str, str]]:
    """Channels and activation group of every tensor, checking the hardware rules on the way.

    Raises ``ArchitectureError`` naming the layer for: depthwise convolution, an activation
    other than ReLU/linear, joins whose inputs do not share one activation quantizer, an
    unquantized (linear) tensor feeding anything but an output, and shape mismatches.
    """
    ch: dict[str, int] = {}
    group: dict[str, str] = {}
    for n in graph.nodes:
        ins = n.inputs
        for i in ins:
            if i not in ch:
                raise ArchitectureError(f"layer '{n.name}': input '{i}' is not defined before it")
        if n.op == "input":
            ch[n.name], group[n.name] = graph.in_channels, "input"
        elif n.op == "conv":
            s: Conv = n.attrs
            cin = ch[ins[0]]
            if s.act not in ACTIVATIONS:
                raise ArchitectureError(
                    f"layer '{n.name}': activation '{s.act}' is not supported (ReLU only: "
                    "hardware implements activations as integer thresholds)"
                )
            if s.groups > 1 and s.groups == cin and cin > 1:
                raise ArchitectureError(
                    f"layer '{n.name}': depthwise convolution (groups == channels == {cin}) is not supported"
                )
            if cin % s.groups or s.cout % s.groups:
                raise ArchitectureError(f"layer '{n.name}': groups={s.groups} does not divide the channels")
            if s.act == "relu" and not s.group:
                raise ArchitectureError(f"layer '{n.name}': ReLU output needs an activation group")
            if s.groups > 1 and cin // s.groups < MIN_GROUP_CHANNELS:
                raise ArchitectureError(
                    f"layer '{n.name}': {cin // s.groups} input channels per group (groups={s.groups}); "
                    f"grouped convolution needs at least {MIN_GROUP_CHANNELS}"
                )
            ch[n.name], group[n.name] = s.cout, s.group  # linear + group: signed at the group's scale
            if s.act == "sigmoid":  # a gate: its own quantizer at a constant scale
                if any(c.op != "mul" for c in graph.consumers(n.name)) or not graph.consumers(n.name):
                    raise ArchitectureError(
                        f"layer '{n.name}': activation 'sigmoid' only as a gate that a mul reads (SAM); "
                        "anywhere else ReLU only (activations are integer thresholds)"
                    )
                group[n.name] = GATE + n.name
        elif n.op in ("maxpool", "avgpool", "upsample"):
            ch[n.name], group[n.name] = ch[ins[0]], group[ins[0]]
        elif n.op == "split":
            sp: Split = n.attrs
            if sum(sp.sizes) != ch[ins[0]]:
                raise ArchitectureError(f"layer '{n.name}': split sizes {sp.sizes} != {ch[ins[0]]} channels")
            for j, c in enumerate(sp.sizes):
                ch[f"{n.name}:{j}"], group[f"{n.name}:{j}"] = c, group[ins[0]]
            ch[n.name], group[n.name] = ch[ins[0]], group[ins[0]]
        elif n.op in ("concat", "add", "max"):
            groups = {group[i] for i in ins}
            if len(groups) != 1 or "" in groups:
                detail = ", ".join(f"{i}→{group[i] or 'unquantized'}" for i in ins)
                raise ArchitectureError(
                    f"layer '{n.name}': {n.op} inputs use different activation quantizers ({detail}); "
                    "every input of a join must share one quantizer"
                )
            if n.op in ("add", "max"):
                if len({ch[i] for i in ins}) != 1:
                    raise ArchitectureError(f"layer '{n.name}': {n.op} of different channel counts")
                ch[n.name] = ch[ins[0]]
            else:
                ch[n.name] = sum(ch[i] for i in ins)
            group[n.name] = groups.pop()
        elif n.op == "mul":
            gates = [i for i in ins if group[i].startswith(GATE)]
            if len(ins) != 2 or len(gates) != 1 or ch[ins[0]] != ch[ins[1]]:
                raise ArchitectureError(
                    f"layer '{n.name}': mul takes features and one sigmoid gate of as many channels"
                )
            ch[n.name], group[n.name] = ch[ins[0]], n.name  # the product: its own quantizer
        elif n.op == "gap":
            ch[n.name], group[n.name] = ch[ins[0]], n.name  # pooled features: their own group
        elif n.op == "output":
            ch[n.name], group[n.name] = ch[ins[0]], ""
        else:
            raise ArchitectureError(f"layer '{n.name}': unknown op '{n.op}'")
        for i in ins:
            if not group[i] and n.op != "output":
                raise ArchitectureError(
                    f"layer '{n.name}': reads the unquantized linear output '{i}'; only outputs may"
                )
    return ch, group


class CSPNet(nn.Module):
    """Executes a ``Graph``. Outputs: a list of tensors (detectors) or one tensor (classifiers)."""

    def __init__(self, graph: Graph, qcfg: QuantConfig | None, meta: dict | None = None):
        super().__init__()
        channels, groups = _infer(graph)
        self.graph = graph
        self.qcfg = qcfg
        self.meta = dict(meta or {})
        self.quant = qcfg is not None
        self.layers = nn.ModuleDict()
        self.acts = nn.ModuleDict()
        for n in graph.nodes:
            k = layer_key(n.name)
            if n.op == "input":
                self.layers[k] = make_input_quant(self.quant)
            elif n.op == "conv":
                s: Conv = n.attrs
                wbits = qcfg.weight_bits(n.name, s.role, s.wbits) if self.quant else None
                self.layers[k] = ConvBN(channels[n.inputs[0]], s, wbits)
            elif n.op == "maxpool":
                p: MaxPool = n.attrs
                self.layers[k] = MaxPoolModule(p.k, p.stride, p.pad)
            elif n.op == "avgpool":
                a: AvgPool = n.attrs
                g = groups[n.inputs[0]]
                bits = (INPUT_BITS if g == "input" else qcfg.act_bits(g)) if self.quant else None
                self.layers[k] = AvgPoolModule(a.k, a.stride, bits)
            elif n.op == "split":
                self.layers[k] = SplitModule(n.attrs.sizes)
            elif n.op == "concat":
                self.layers[k] = Concat()
            elif n.op == "add":
                self.layers[k] = Add()
            elif n.op == "max":
                self.layers[k] = Max()
            elif n.op == "mul":
                self.layers[k] = Mul()
            elif n.op == "upsample":
                u: Upsample = n.attrs
                self.layers[k] = UpsampleModule(u.scale)
            elif n.op == "gap":
                self.layers[k] = GlobalAvgPool()
            elif n.op == "output":
                self.layers[k] = Identity()
        self.gates = nn.ModuleDict()
        for n in graph.nodes:
            if n.op == "conv" and n.attrs.act == "sigmoid":
                bits = qcfg.act_bits(groups[n.name]) if self.quant else None
                self.gates[layer_key(n.name)] = make_gate(bits)
        for g in sorted({v for v in groups.values() if v and v != "input" and not v.startswith(GATE)}):
            bits = None
            if self.quant:  # the pooled features too: a few thousand values cannot fill 8 bits
                bits = qcfg.act_bits(g)
            self.acts[layer_key(g)] = make_act(bits)
        self.signed_acts = nn.ModuleDict()
        for g in sorted({groups[n.name] for n in graph.nodes if _signed(n)}):
            bits = qcfg.act_bits(g) if self.quant else None
            self.signed_acts[signed_key(g)] = make_signed_act(bits, self.acts[layer_key(g)])
        self._groups = groups
        self._classifier = [n.attrs.kind for n in graph.outputs()] == ["logits"]
        if self.quant:
            fuse_fake_quant(self)  # the same values, a faster QAT step (hwcsp.quant.FakeQuant)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Brevitas rebuilds a quantizer's scaling module when its state is loaded, which unties a
        signed branch's scale from its group's ReLU scale (the add would no longer be exact): tie
        them again, to the ReLU's loaded value."""
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        if self.quant:
            for g in {self._groups[n.name] for n in self.graph.nodes if _signed(n)}:
                tie_scale(self.signed_acts[signed_key(g)], self.acts[layer_key(g)])
            fuse_fake_quant(self)
        return result

    def act_calls(self) -> list[tuple[str, str]]:
        """(layer, group) for every activation-quantizer call, in forward order."""
        calls = []
        for n in self.graph.nodes:
            if self._quantizes(n):
                calls.append((n.name, self._groups[n.name]))
        return calls

    def signed_calls(self) -> list[tuple[str, str]]:
        """(layer, module key) for every signed residual-branch quantizer call, in forward order."""
        return [(n.name, signed_key(self._groups[n.name])) for n in self.graph.nodes if _signed(n)]

    def gate_calls(self) -> list[tuple[str, str]]:
        """(layer, module key) for every sigmoid gate's quantizer call, in forward order."""
        return [(n.name, layer_key(n.name)) for n in self.graph.nodes if _gate(n)]

    def _quantizes(self, n) -> bool:
        return (n.op == "conv" and n.attrs.act == "relu") or n.op in ("add", "gap", "mul")

    def _act(self, n):
        """The quantizer ``n``'s output goes through (None: it keeps its input's codes)."""
        if _gate(n):
            return self.gates[layer_key(n.name)]
        if self._quantizes(n):
            return self.acts[layer_key(self._groups[n.name])]
        if _signed(n):
            return self.signed_acts[signed_key(self._groups[n.name])]
        return None

    def forward(self, x: torch.Tensor, taps: dict | None = None):
        env: dict[str, object] = {}
        outs = []
        for n in self.graph.nodes:
            mod = self.layers[layer_key(n.name)]
            args = [env[i] for i in n.inputs]
            if n.op == "input":
                y = mod(x)
            elif n.op == "split":
                parts = mod(args[0])
                for j, part in enumerate(parts):
                    env[f"{n.name}:{j}"] = part
                y = args[0]
            else:
                y = mod(*args)
            act = self._act(n)
            if act is not None:
                y = act(y)
            env[n.name] = y
            if taps is not None:
                taps[n.name] = y
            if n.op == "output":
                outs.append(y.value if isinstance(y, QuantTensor) else y)
        if self._classifier:
            return outs[0].flatten(1)
        return outs


def _gate(n) -> bool:
    return n.op == "conv" and n.attrs.act == "sigmoid"


def _signed(n) -> bool:
    """A linear convolution with an activation group: a signed residual branch."""
    return n.op == "conv" and n.attrs.act == "linear" and bool(n.attrs.group)
