"""The Darknet cfg reader: Darknet's layer semantics, its refusals, and the zoo's cfg text
against the public cfgs (``../shared/reference/darknet-cfg``; skipped where absent)."""

from pathlib import Path

import pytest
import torch

from hwcsp.analysis import analyze
from hwcsp.darknet_cfg import CfgError, CfgWriter, cfg_graph, parse_cfg
from hwcsp.graph import Conv, MaxPool, Output
from hwcsp.models import resnet
from hwcsp.net import CSPNet, check_graph, tensor_groups

CFG_DIR = Path(__file__).parents[2] / "shared" / "reference" / "darknet-cfg"


def _public(name: str) -> str:
    path = CFG_DIR / name
    if not path.exists():
        pytest.skip(f"{path} is absent (the public cfgs are test data of the shared reference)")
    return path.read_text()


def _sig(g):
    return [(n.name, n.op, n.inputs, n.attrs) for n in g.nodes]


@pytest.mark.parametrize(
    "public, ours",
    [
        ("resnet10.cfg", resnet.resnet10_cfg),
        ("resnext50.cfg", resnet.resnext50_cfg),
        ("csresnext50.cfg", resnet.cspresnext50_cfg),
    ],
)
def test_zoo_cfg_text_reads_like_the_public_cfg(public, ours):
    a, b = cfg_graph(_public(public)), cfg_graph(ours())
    assert _sig(a) == _sig(b)
    assert len(a.nodes) > 20


def test_public_cfg_counts_match_the_paper():
    """Read straight from the public files (not our text): params and BFLOPs of Table 3."""
    for name, size, params, bflops in (
        ("resnet10.cfg", 256, 5.24, 2.273),
        ("resnext50.cfg", 256, 22.19, 10.11),
        ("csresnext50.cfg", 256, 20.50, 7.93),
    ):
        s = analyze(CSPNet(cfg_graph(_public(name)), None), size)
        assert abs(s.params / 1e6 - params) / params < 0.01, name
        assert abs(s.bflops - bflops) / bflops < 0.01, name


def _mini(*body: str) -> str:
    return "[net]\nchannels=3\n\n" + "\n\n".join(body) + "\n\n[avgpool]\n\n" + _FC


_FC = "[convolutional]\nfilters=10\nsize=1\nstride=1\npad=1\nactivation=linear\n\n[softmax]\n"
_CONV = "[convolutional]\nbatch_normalize=1\nfilters={f}\nsize={k}\nstride={s}\npad=1\nactivation={a}"


def conv(f, k=3, s=1, a="leaky", extra=""):
    return _CONV.format(f=f, k=k, s=s, a=a) + extra


def test_strided_shortcut_onto_more_channels_samples_pixels_and_splits_filters():
    """resnet10's strided block: 8 channels at 2x resolution added onto 16 (no projection)."""
    g = cfg_graph(
        _mini(conv(8), conv(16, s=2), conv(16, a="linear"), "[shortcut]\nfrom=-3\nactivation=leaky")
    )
    n = {x.name: x for x in g.nodes}
    assert n["shortcut3.sample"].op == "maxpool" and n["shortcut3.sample"].attrs == MaxPool(1, 2)
    assert n["conv2a"].attrs.cout == 8 and n["conv2a"].attrs.act == "linear"
    assert n["conv2b"].attrs.cout == 8 and n["conv2b"].attrs.act == "relu"  # the shortcut's activation
    assert n["shortcut3.add"].inputs == ["conv2a", "shortcut3.sample"]
    assert n["shortcut3"].op == "concat" and n["shortcut3"].inputs == ["shortcut3.add", "conv2b"]
    groups = tensor_groups(g)  # one quantizer for the add, its inputs and the concat
    assert len({groups[t] for t in ("conv0", "conv2a", "conv2b", "shortcut3.add", "shortcut3")}) == 1
    assert "conv2" not in n


def test_shortcut_semantics_against_darknet_arithmetic():
    """Float model of the graph vs the shortcut computed by hand (Darknet's shortcut_cpu)."""
    torch.manual_seed(0)
    g = cfg_graph(
        _mini(conv(8), conv(16, s=2), conv(16, a="linear"), "[shortcut]\nfrom=-3\nactivation=leaky")
    )
    net = CSPNet(g, None).eval()
    taps: dict = {}
    with torch.no_grad():
        net(torch.rand(1, 3, 16, 16), taps)
        full = torch.cat([taps["conv2a"], taps["conv2b"]], 1)  # conv2b already had its ReLU
    x0, out = taps["conv0"], taps["shortcut3"]
    expect = full.clone()
    expect[:, :8] = torch.relu(full[:, :8] + x0[:, :, ::2, ::2])
    assert torch.equal(out, expect)


def test_maxout_is_the_max_of_channel_chunks():
    """Darknet's [maxpool] maxpool_depth=1 out_channels=N (EFM's compression): channel g of the
    output is the max of input channels g, g + N, g + 2N, ... (written here from that rule)."""
    torch.manual_seed(0)
    g = cfg_graph(_mini(conv(12), "[maxpool]\nmaxpool_depth=1\nout_channels=4\nsize=1\nstride=1", conv(6)))
    n = {x.name: x for x in g.nodes}
    assert n["maxout1.split"].attrs.sizes == (4, 4, 4) and n["maxout1"].op == "max"
    assert check_graph(g)["maxout1"] == 4 and n["conv2"].inputs == ["maxout1"]
    groups = tensor_groups(g)
    assert groups["maxout1"] == groups["conv0"]  # the same codes: one quantizer
    net = CSPNet(g, None).eval()
    taps: dict = {}
    with torch.no_grad():
        net(torch.rand(1, 3, 16, 16), taps)
    x, out = taps["conv0"], taps["maxout1"]
    expect = torch.stack([torch.stack([x[:, c + 4 * j] for j in range(3)]).amax(0) for c in range(4)], 1)
    assert torch.equal(out, expect)
    with pytest.raises(CfgError, match="must divide the 12 input channels"):
        cfg_graph(_mini(conv(12), "[maxpool]\nmaxpool_depth=1\nout_channels=5"))


def test_sam_multiplies_a_layer_by_the_sigmoid_gate_before_it():
    """Darknet's [sam] from=k: layer k times the logistic convolution right before it (that one stays
    a sigmoid: SAM's gate), then requantized; elsewhere logistic still becomes ReLU."""
    from hwcsp.user_models import converted_activations

    torch.manual_seed(0)
    text = _mini(conv(8, a="relu"), conv(8, a="logistic"), "[sam]\nfrom=-2", conv(6, a="logistic"))
    g = cfg_graph(text)
    n = {x.name: x for x in g.nodes}
    assert n["conv1"].attrs.act == "sigmoid" and n["conv3"].attrs.act == "relu"
    assert n["sam2"].op == "mul" and n["sam2"].inputs == ["conv0", "conv1"]
    assert converted_activations(text) == {"logistic": [3]}  # the gate is not converted
    net = CSPNet(g, None).eval()
    taps: dict = {}
    with torch.no_grad():
        net(torch.rand(1, 3, 16, 16), taps)
    gate = taps["conv1"]
    assert 0 < float(gate.min()) and float(gate.max()) < 1  # a sigmoid, not a ReLU
    assert torch.equal(taps["sam2"], taps["conv0"] * gate)
    with pytest.raises(
        CfgError, match=r"\[sam\] at line \d+: must follow a convolution with activation=logistic"
    ):
        cfg_graph(_mini(conv(8, a="relu"), conv(8, a="relu"), "[sam]\nfrom=-2"))


def test_route_groups_is_a_split_and_layers_concatenate():
    g = cfg_graph(
        _mini(conv(8), "[route]\nlayers=-1\ngroups=2\ngroup_id=1", conv(4), "[route]\nlayers=-1,-3")
    )
    n = {x.name: x for x in g.nodes}
    assert n["route1"].op == "split" and n["route1"].attrs.sizes == (4, 4)
    assert n["conv2"].inputs == ["route1:1"]
    assert n["route3"].op == "concat" and n["route3"].inputs == ["conv2", "conv0"]
    assert check_graph(g)["route3"] == 12


def test_activations_map_to_relu_or_linear():
    g = cfg_graph(_mini(conv(8, a="mish"), conv(8, a="swish")))
    assert {x.attrs.act for x in g.nodes if x.op == "conv" and x.attrs.role != "head"} == {"relu"}


def test_width_keeps_channels_per_group():
    text = _mini(conv(64, k=1), conv(64, extra="\ngroups=16"))
    g = cfg_graph(text, width=0.25)
    grouped = next(x for x in g.nodes if x.name == "conv1")
    assert grouped.attrs.cout == 16 and grouped.attrs.groups == 4  # 4 channels per group, as at width 1
    head = next(x for x in g.nodes if x.op == "conv" and x.attrs.role == "head")
    assert head.attrs.cout == 10  # the classifier keeps its classes


@pytest.mark.parametrize(
    "body, match",
    [
        ((conv(8, a="tanh"),), "activation 'tanh' is not supported"),
        ((conv(8), conv(8, extra="\ngroups=8")), "depthwise convolution is not supported"),
        ((conv(8), "[yolo]\nmask=0\nanchors=1,2"), r"\[yolo\] at line 12: must follow a linear convolution"),
        ((conv(8, a="linear"), "[yolo]\nmask=0\nanchors=1,2\nclasses=2"), "8 filters, 1 anchors x"),
        ((conv(7, a="linear"), "[yolo]\nmask=0\nanchors=1,2\nclasses=2\nscale_x_y=1.05"), "scale_x_y=1.05"),
        ((conv(7, a="linear"), "[yolo]\nmask=3\nanchors=1,2\nclasses=2"), "does not index the 1 anchors"),
        ((conv(8), "[connected]\noutput=4"), r"\[connected\] at line \d+: only after \[avgpool\]"),
        ((conv(8), "[maxpool]\nsize=2\nstride=2\nmaxpool_depth=1\nout_channels=4"), "maxout"),
        ((conv(8), "[shortcut]\nfrom=-5\nactivation=leaky"), "out of range"),
        (
            (conv(8), "[maxpool]\nsize=1\nstride=1", conv(4), "[shortcut]\nfrom=-2\nactivation=leaky"),
            "more channels",
        ),
        ((conv(8), conv(8, a="linear"), "[shortcut]\nfrom=-2\nactivation=linear"), "activation 'linear'"),
        (
            (
                conv(8),
                conv(8, k=3, extra="\npad=0").replace("pad=1\n", ""),
            ),
            "padding",
        ),
    ],
)
def test_refusals_name_the_section(body, match):
    with pytest.raises(CfgError, match=match):
        cfg_graph(_mini(*body))


def test_parse_errors_name_the_line():
    with pytest.raises(CfgError, match="line 2: expected"):
        parse_cfg("[net]\nthis is not an option\n")
    with pytest.raises(CfgError, match="starts with a \\[net\\]"):
        parse_cfg("[convolutional]\nfilters=4\n")
    with pytest.raises(CfgError, match="'filters=x' is not an integer"):
        cfg_graph(_mini(_CONV.format(f="x", k=1, s=1, a="leaky")))


def test_writer_round_trips():
    w = CfgWriter(64).conv(8, 3, 2).maxpool().conv(16, groups=4).route(-1, -3).shortcut(-2)
    text = w.text()
    again = CfgWriter(64)
    again.sections = parse_cfg(text)
    assert again.text() == text
    assert [s.kind for s in parse_cfg(text)][:3] == ["net", "convolutional", "maxpool"]


def test_linear_conv_into_a_join_is_a_signed_branch_of_the_join_group():
    g = cfg_graph(resnet.resnet10_cfg(), width=0.25)
    groups = tensor_groups(g)
    lin = [x for x in g.nodes if x.op == "conv" and x.attrs.act == "linear" and x.attrs.role != "head"]
    assert lin and all(x.attrs.group and x.attrs.group == groups[x.name] for x in lin)
    head = next(x for x in g.nodes if x.op == "conv" and x.attrs.role == "head")
    assert isinstance(head.attrs, Conv) and head.attrs.group == ""


def test_shortcut_from_more_channels_taps_the_first_filters():
    """PRN's partial residual: 'from' (8 channels) onto 4 channels adds its first 4. The 8-filter
    conv becomes two (4 + 4) concatenated under its name; the add reads the first; a second
    shortcut from the same layer reuses that tap."""
    text = _mini(
        conv(8), conv(4), "[shortcut]\nfrom=-2\nactivation=leaky", "[shortcut]\nfrom=0\nactivation=leaky"
    )
    g = cfg_graph(text)
    n = {x.name: x for x in g.nodes}
    assert "conv0" not in [x.name for x in g.nodes if x.op == "conv"]
    assert n["conv0"].op == "concat" and n["conv0"].inputs == ["conv0a", "conv0b"]
    assert n["conv0a"].attrs.cout == n["conv0b"].attrs.cout == 4
    assert n["conv1"].inputs == ["conv0"]  # readers of the layer are unchanged
    assert n["shortcut2"].inputs == ["conv1", "conv0a"] and n["shortcut3"].inputs == ["shortcut2", "conv0a"]
    names = [x.name for x in g.nodes]
    assert names.index("conv0") < names.index("conv1")  # still in topological order
    assert check_graph(g)["shortcut3"] == 4


def test_yolo_outputs_and_connected_classifier():
    det = (
        "[net]\nchannels=3\n\n"
        + "\n\n".join([conv(8, s=2), conv(14, k=1, a="linear")])
        + "\n\n[yolo]\nmask=1,2\nanchors=3,4, 5,6, 7,8\nclasses=2\nscale_x_y=1.0\nnew_coords=0\n"
    )
    (out,) = cfg_graph(det).outputs()
    assert out.name == "yolo2" and out.attrs == Output("yolo", 2, ((5, 6), (7, 8)))
    head = next(x for x in cfg_graph(det, width=0.5, num_classes=5).nodes if x.name == "conv1")
    assert head.attrs.cout == 2 * (5 + 5) and head.attrs.role == "head"
    cls = (
        "[net]\nchannels=3\n\n"
        + conv(8)
        + "\n\n[avgpool]\n\n[connected]\noutput=10\nactivation=linear\n\n[softmax]\n"
    )
    fc = next(x for x in cfg_graph(cls).nodes if x.name == "conv2")
    assert (fc.attrs.cout, fc.attrs.k, fc.attrs.role, fc.attrs.act) == (10, 1, "head", "linear")
