"""The model zoo: registry, CSP stage variants, hardware rules, quantizer configuration."""

import numpy as np
import pytest
import torch

from hwcsp import create_model, list_models, model_graph
from hwcsp.arch import Arch, ClassifierHead, CSPDenseStage, PlainStage, build_graph
from hwcsp.graph import ArchitectureError, Conv, Graph, MaxPool, Split
from hwcsp.net import CSPNet, check_graph, tensor_groups
from hwcsp.quant import QuantConfig
from hwcsp.registry import UnknownModelError

DETECTORS = [
    "darknet-ref-prn",
    "cspdensenet-ref-prn",
    "cspdensenetb-ref-prn",
    "darknet-ref-prn3l",
    "cspdensenet-ref-prn3l",
    "cspdensenetb-ref-prn3l",
]
CLASSIFIERS = [
    "darknet-ref",
    "cspdensenet-ref",
    "cspdensenetb-ref",
    "peleenet",
    "csppeleenet",
    "csppeleenet-ref",
    "csppeleenetb-ref",
    "resnet10",
    "cspresnet10",
    "resnext50",
    "cspresnext50",
]
TABLE1 = [f"csppeleenet-{f}-g{g}" for f in ("first", "last", "csp") for g in (25, 50, 75)]
# issue 14: Table 2's heads on CSPPeleeNet, Table 4's detectors, Fig. 7's PeleeNet-YOLO
TABLE2 = [f"csppeleenet-{h}" for h in ("prn", "prn3l", "cem", "cem-sam", "gfm", "efm", "efm-sam", "efm-spp")]
HEAD_DETECTORS = [
    *TABLE2,
    "csppeleenet-ref-efm-sam",
    "cspdensenet-ref-efm-sam",
    "csppeleenet-ref-prn",
    "csppeleenet-ref-prn3l",
    "peleenet-prn",
    "peleenet-yolo",
]


def levels(name: str) -> int:
    return 2 if name.endswith(("-prn", "-cem", "-cem-sam")) else 3


def test_registry_lists_every_model():
    assert sorted(DETECTORS + HEAD_DETECTORS + CLASSIFIERS + TABLE1) == list_models()
    assert list_models("detect") == sorted(DETECTORS + HEAD_DETECTORS)


def test_unknown_model_names_close_matches():
    with pytest.raises(UnknownModelError, match="darknet-ref-prn"):
        create_model("darknet-ref-pr")


@pytest.mark.parametrize(
    "name", DETECTORS + HEAD_DETECTORS + CLASSIFIERS + ["csppeleenet-first-g25", "csppeleenet-last-g75"]
)
def test_every_model_runs_float_and_quantized(name):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64)
    q = create_model(name, size=64, width=0.25).eval()
    f = create_model(name, size=64, width=0.25, quant=False).eval()
    with torch.no_grad():
        yq, yf = q(x), f(x)
    if name in DETECTORS + HEAD_DETECTORS:
        assert [tuple(t.shape) for t in yq] == [tuple(t.shape) for t in yf]
        got = sorted(t.shape[-1] for t in yq)
        assert got == sorted(64 // s for s in (32, 16, 8)[: levels(name)])
        assert all(t.shape[1] == 3 * (5 + 80) for t in yq)
    else:
        assert yq.shape == yf.shape == (2, 1000)
    # the float twin's state dict loads into the quantized model (QAT from a float checkpoint)
    missing, unexpected = q.load_state_dict(f.state_dict(), strict=False)
    assert not unexpected
    assert all(k.startswith(("acts.", "signed_acts.")) or k.endswith("conv.bias") for k in missing)


def test_prn_partial_residual_splits_filters_not_tensors():
    g = model_graph("cspdensenet-ref-prn")
    names = {n.name: n for n in g.nodes}
    # the stride-16 transition (256 filters) is two convs of 128, concatenated for the main path
    assert names["s16.ta"].attrs.cout == 128 and names["s16.tb"].attrs.cout == 128
    assert names["s16.t"].op == "concat" and names["s16.t"].inputs == ["s16.ta", "s16.tb"]
    # the partial residual adds read the first 128 filters directly
    assert "s16.ta" in names["head.s16.add1"].inputs and "s16.ta" in names["head.s16.add3"].inputs
    # every tensor (every split output included) has a consumer, except the network outputs
    consumed = {i for n in g.nodes for i in n.inputs}
    produced = [n.name for n in g.nodes if n.op not in ("output", "split")]
    produced += [f"{n.name}:{j}" for n in g.nodes if n.op == "split" for j in range(len(n.attrs.sizes))]
    assert [t for t in produced if t not in consumed] == []


def test_darknet_pool_2x2_stride1_matches_darknet_semantics():
    """yolov3-tiny-prn layer 11: size=2 stride=1, output the input's size; darknet pads
    right/bottom and ignores out-of-range cells (equal to zero padding for ReLU outputs)."""
    net = create_model("darknet-ref-prn", size=64, width=0.25, quant=False).eval()
    pool = net.layers["tail0_pool"]
    x = torch.rand(1, 5, 7, 9)
    y = pool(x).numpy()
    xn = x.numpy()
    ref = np.empty_like(xn)
    for i in range(7):
        for j in range(9):
            ref[0, :, i, j] = xn[0, :, i : i + 2, j : j + 2].reshape(5, -1).max(axis=1)
    assert y.shape == xn.shape
    np.testing.assert_array_equal(y, ref)


def _stage_graph(fusion: str, gamma: float = 0.5) -> Graph:
    arch = Arch(stem=16, stages=(CSPDenseStage(64, 2, 16, gamma, fusion),), head=ClassifierHead(10))
    return build_graph(arch)


@pytest.mark.parametrize(
    "fusion, has_pt, has_t",
    [("csp", True, True), ("first", False, True), ("last", True, False), ("none", False, True)],
)
def test_csp_fusion_strategies(fusion, has_pt, has_t):
    g = _stage_graph(fusion)
    names = {n.name for n in g.nodes}
    assert ("s2.pt" in names) == has_pt
    assert ("s2.t" in names) == has_t
    assert ("s2.split" in names) == (fusion != "none")
    ch = check_graph(g)
    out = "s2.t" if has_t else "s2.fuse"
    assert ch[out] == 64
    net = CSPNet(g, QuantConfig()).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("gamma, part1", [(0.25, 4), (0.5, 8), (0.75, 12)])
def test_split_ratio_gamma_is_the_bypass_share(gamma, part1):
    g = _stage_graph("csp", gamma)
    split = next(n for n in g.nodes if n.op == "split")
    assert split.attrs.sizes == (part1, 16 - part1)


def test_cspdensenetb_last_stage_is_one_1x1_conv():
    g = model_graph("cspdensenetb-ref")
    s32 = [n for n in g.nodes if n.name.startswith("s32")]
    assert [(n.name, n.attrs.k, n.attrs.cout) for n in s32] == [("s32.t", 1, 512)]


def _tiny(conv: Conv, extra=None) -> Graph:
    g = Graph()
    g.add("input", "input")
    g.conv("c0", "input", Conv(8, 3, group="a", role="first"))
    g.conv("c1", "c0", conv)
    if extra:
        extra(g)
    return g


def test_depthwise_convolution_is_refused_naming_the_layer():
    with pytest.raises(ArchitectureError, match=r"'c1'.*depthwise"):
        check_graph(_tiny(Conv(8, 3, groups=8, group="b")))


def test_grouped_convolution_is_allowed():
    check_graph(_tiny(Conv(8, 3, groups=2, group="b")))


@pytest.mark.parametrize("act", ["leaky", "swish", "sigmoid"])
def test_non_relu_activation_is_refused_naming_the_layer(act):
    with pytest.raises(ArchitectureError, match=rf"'c1'.*{act}"):
        check_graph(_tiny(Conv(8, 3, act=act, group="b")))


def test_heads_ops_check_their_inputs():
    """SAM's mul reads features and one sigmoid gate of as many channels, and gets its own
    quantizer; Maxout's max joins codes of one quantizer and one channel count."""

    def sam(g):
        g.add("m", "mul", ["c0", "c1"])

    groups = tensor_groups(_tiny(Conv(8, 1, act="sigmoid"), sam))
    assert groups["c1"] == "gate:c1" and groups["m"] == "m"
    with pytest.raises(ArchitectureError, match=r"'m': mul takes features and one sigmoid gate"):
        check_graph(_tiny(Conv(8, 1, group="a"), sam))  # no gate
    with pytest.raises(ArchitectureError, match=r"'m': mul takes features and one sigmoid gate"):
        check_graph(_tiny(Conv(4, 1, act="sigmoid"), sam))  # 8 features, a 4-channel gate

    def maxout(g):
        g.add("s", "split", "c1", Split((4, 4)))
        g.add("mx", "max", ["s:0", "s:1"])

    def uneven(g):
        g.add("s", "split", "c1", Split((4, 4)))
        g.add("mx", "max", ["c0", "s:0"])  # 8 channels and 4

    assert check_graph(_tiny(Conv(8, 3, group="a"), maxout))["mx"] == 4
    with pytest.raises(ArchitectureError, match=r"'mx': max of different channel counts"):
        check_graph(_tiny(Conv(8, 3, group="a"), uneven))


@pytest.mark.parametrize("op", ["concat", "add"])
def test_join_with_different_quantizers_is_refused_naming_the_layer(op):
    def join(g):
        g.add("j", op, ["c0", "c1"])

    with pytest.raises(ArchitectureError, match=r"'j'.*different activation quantizers"):
        check_graph(_tiny(Conv(8, 3, group="b"), join))
    check_graph(_tiny(Conv(8, 3, group="a"), join))  # shared quantizer: fine


def test_join_of_a_linear_output_is_refused():
    def join(g):
        g.conv("lin", "c0", Conv(8, 1, act="linear", bn=False, role="head"))
        g.add("j", "add", ["c0", "lin"])

    with pytest.raises(ArchitectureError, match="'j'"):
        check_graph(_tiny(Conv(8, 3, group="a"), join))


def test_quantizer_widths_first_hidden_head_and_overrides():
    net = create_model("cspdensenetb-ref-prn", size=64, width=0.25)
    bits = {k: int(m.conv.quant_weight().bit_width) for k, m in net.layers.items() if hasattr(m, "conv")}
    assert bits["stem"] == 8 and bits["head_y32"] == 8 and bits["head_s16_y"] == 8
    assert bits["s2_d0"] == 4 and bits["head_h15"] == 4
    w8 = create_model("cspdensenetb-ref-prn", size=64, width=0.25, wbits=8, abits=8)
    assert int(w8.layers["s2_d0"].conv.quant_weight().bit_width) == 8
    assert all(int(a.act_quant.bit_width()) == 8 for a in w8.acts.values())
    ov = create_model(
        "cspdensenetb-ref-prn", size=64, width=0.25, wbits_overrides={"s2.d0": 2}, abits_overrides={"s16": 6}
    )
    assert int(ov.layers["s2_d0"].conv.quant_weight().bit_width) == 2
    assert int(ov.acts["s16"].act_quant.bit_width()) == 6 and int(ov.acts["s8"].act_quant.bit_width()) == 4


def test_pooling_architecture_records_are_plain_data():
    arch = Arch(stem=16, stages=(PlainStage(32),), head=ClassifierHead(3))
    g = build_graph(arch)
    assert isinstance(g.node("pool2").attrs, MaxPool)
    assert [n.op for n in g.nodes] == ["input", "conv", "maxpool", "conv", "gap", "conv", "output"]
