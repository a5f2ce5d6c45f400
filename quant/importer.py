"""``hwcsp import darknet FILE.cfg [--weights FILE.weights] [--name NAME] [--calib DIR]``.

Reads the cfg with the one cfg reader (``hwcsp.darknet_cfg``), checks the weights against it
(``hwcsp.darknet_weights``), turns them into a float hwcsp checkpoint and writes the store entry
(``hwcsp.user_models``) whole or not at all (``golden.fsutil.atomic_dir``): a refused import leaves
nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict
from pathlib import Path

from hwcsp.user_models import (
    CFG,
    CHECKPOINT,
    NAME_RE,
    RECORD,
    ImportRecord,
    ModelImportError,
    converted_activations,
    models_dir,
)


def import_darknet(
    cfg: Path,
    weights: Path | None = None,
    name: str | None = None,
    strict: bool = False,
    known: tuple[str, ...] = (),
    log=print,
    calib: Path | None = None,
) -> ImportRecord:
    """Read, check and store a Darknet network; ``known`` are names taken by the zoo."""
    from golden.fsutil import atomic_dir, sha256_file
    from hwcsp.darknet_cfg import cfg_graph, parse_cfg
    from hwcsp.darknet_weights import read_weights

    cfg = Path(cfg)
    try:
        text = cfg.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ModelImportError(f"cannot read the cfg '{cfg}': {getattr(e, 'strerror', None) or e}") from e
    name = name or re.sub(r"[^a-z0-9._-]+", "-", cfg.stem.lower()).strip("-._")
    if not NAME_RE.match(name):
        raise ModelImportError(
            f"model name '{name}': 1-64 characters of a-z, 0-9, '.', '_', '-', not starting with a symbol"
        )
    if name in known:
        raise ModelImportError(f"model name '{name}' is a zoo model; choose another with --name")
    graph = cfg_graph(text)  # every refusal names the section and its line
    converted = converted_activations(text)
    if converted:
        listing = "; ".join(f"{a}: layers {', '.join(map(str, ls))}" for a, ls in sorted(converted.items()))
        if strict:
            raise ModelImportError(f"--strict: activations that are not ReLU or linear ({listing})")
        hint = f": hwcsp train {name} --init {models_dir() / name / CHECKPOINT}" if weights else ""
        log(
            f"import: warning: these activations become ReLU (the hardware rule) — {listing}. "
            f"Trained weights need fine-tuning after that{hint}"
        )
    net = parse_cfg(text)[0]
    size = net.int("width", 0)
    if size < 1 or net.int("height", size) != size:
        raise ModelImportError(
            f"[net] at line {net.line}: width={net.get('width')}, height={net.get('height')}: "
            "a square input size is needed (it is the model's default size)"
        )
    outs = graph.outputs()
    task = "detect" if any(o.attrs.kind == "yolo" for o in outs) else "classify"
    classes = _classes(text, graph, task)
    data = None
    if weights is not None:
        try:
            data = Path(weights).read_bytes()
        except OSError as e:
            raise ModelImportError(f"cannot read the weights '{weights}': {e.strerror}") from e
        read_weights(data, text)  # refuses a file of another cfg before anything is written
    calib_sha = ""
    if calib is not None:
        from quant.data.folder import folder_digest

        calib_sha = folder_digest(calib)  # refuses a missing or empty folder
    record = ImportRecord(
        name=name,
        source="darknet",
        cfg_file=str(cfg.resolve()),
        cfg_sha256=hashlib.sha256(text.encode()).hexdigest(),
        weights_sha256=hashlib.sha256(data).hexdigest() if data is not None else "",
        size=size,
        task=task,
        classes=classes,
        converted=converted,
        calib=str(Path(calib).resolve()) if calib is not None else "",
        calib_sha256=calib_sha,
    )
    target = models_dir() / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        log(f"import: replacing the imported model {target}")
    with atomic_dir(target) as tmp:
        (tmp / CFG).write_text(text)
        if data is not None:
            state, meta = darknet_state_dict(text, data, record)
            from quant.checkpoint import save_checkpoint

            save_checkpoint(tmp / CHECKPOINT, state, meta)
        (tmp / RECORD).write_text(json.dumps(asdict(record), indent=1, sort_keys=True) + "\n")
    log(f"import: {name} ({task}, {size}x{size}, {len(graph.nodes)} layers) in {target}")
    if data is not None:
        log(f"import: weights -> {target / CHECKPOINT} (sha256 {sha256_file(target / CHECKPOINT)[:8]})")
    return record


def _classes(text: str, graph, task: str) -> int:
    from hwcsp.darknet_cfg import parse_cfg

    if task == "detect":
        return next(s.int("classes", 80) for s in parse_cfg(text) if s.kind == "yolo")
    head = next(n for n in graph.nodes if n.op == "conv" and n.attrs.role == "head")
    return head.attrs.cout


def darknet_state_dict(text: str, data: bytes, record: ImportRecord) -> tuple[dict, dict]:
    """The float model's state dict with Darknet's parameters in place, and checkpoint metadata.

    Layer i's convolution is the module ``conv<i>``; one the reader computes as two (``conv<i>a``,
    ``conv<i>b``: a partial residual's tap or a shortcut onto fewer channels) takes its first and
    remaining filters. A [connected] layer is a 1x1 convolution."""
    import numpy as np
    import torch

    from hwcsp.darknet_cfg import cfg_graph
    from hwcsp.darknet_weights import read_weights, torch_batchnorm
    from hwcsp.net import CSPNet, layer_key

    _, layers = read_weights(data, text)
    net = CSPNet(cfg_graph(text), None)
    state = net.state_dict()
    convs = {n.name: n for n in net.graph.nodes if n.op == "conv"}
    for p in layers:
        base = f"conv{p.index}"
        parts = [base] if base in convs else [f"{base}a", f"{base}b"]
        lo = 0
        for part in parts:
            if part not in convs:
                raise ModelImportError(f"layer {p.index} (line {p.line}): no convolution '{part}'")
            hi = lo + convs[part].attrs.cout
            k = layer_key(part)
            w = p.weights[lo:hi].reshape(state[f"layers.{k}.conv.weight"].shape)
            state[f"layers.{k}.conv.weight"] = torch.from_numpy(np.ascontiguousarray(w))
            if p.bn is not None:
                eps = net.layers[k].bn.eps
                weight, mean, var = torch_batchnorm(tuple(a[lo:hi] for a in p.bn), eps)
                for key, arr in (
                    ("weight", weight),
                    ("bias", p.biases[lo:hi]),
                    ("running_mean", mean),
                    ("running_var", var),
                ):
                    state[f"layers.{k}.bn.{key}"] = torch.from_numpy(np.ascontiguousarray(arr))
            else:
                state[f"layers.{k}.conv.bias"] = torch.from_numpy(np.ascontiguousarray(p.biases[lo:hi]))
            lo = hi
    meta = {
        "model": record.name,
        "size": record.size,
        "width": 1.0,
        "wbits": None,
        "abits": None,
        "num_classes": record.classes,
        "quant": False,
        "source": f"darknet weights sha256 {record.weights_sha256}",
    }
    return state, meta
