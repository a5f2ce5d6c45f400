"""Imported networks: a user's Darknet cfg (and .weights) kept as a model every command accepts.

``hwcsp import darknet FILE.cfg [--weights FILE.weights] [--name NAME]`` reads the cfg with the one
cfg reader (``hwcsp.darknet_cfg``), checks the weights against it (``hwcsp.darknet_weights``) and
stores, in ``$HWCSP_MODELS/<name>/`` (default ``~/.hwcsp/models``; never the repository):

- ``model.cfg``: the cfg text as given;
- ``model.json``: the record below (hashes, input size, task, converted activations);
- ``weights.pt``: with ``--weights``, a float hwcsp checkpoint of the imported parameters (Darknet's
  BatchNorm converted), the model's default checkpoint: export calibrates its activation scales, on
  the images of ``--calib DIR`` if given (read where they are; their hash goes into the build
  directory names), else on the digits val images.

The registry lists these beside the zoo (``hwcsp.registry``); their build directories carry the
cfg's hash (``BuildConfig.dirname``) and, through the checkpoint's hash, the weights'. A directory
is written whole or not at all (``golden.fsutil.atomic_dir``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hwcsp.errors import UserError

MODELS_ENV = "HWCSP_MODELS"
RECORD = "model.json"
CFG = "model.cfg"
CHECKPOINT = "weights.pt"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class ModelImportError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class ImportRecord:
    name: str
    source: str  # "darknet"
    cfg_file: str  # the file imported (for the user's reference)
    cfg_sha256: str
    weights_sha256: str  # "" without --weights
    size: int  # the cfg's [net] input size: the model's default size
    task: str
    classes: int
    converted: dict[str, list[int]] = field(default_factory=dict)  # activation -> darknet layers
    calib: str = ""  # folder of calibration images (--calib), "" for the digits val images
    calib_sha256: str = ""  # of its images' names and bytes

    @property
    def tag(self) -> str:
        """What build directory names carry: the cfg's hash, and the calibration images' (the
        weights' hash is the checkpoint's, which the name carries too)."""
        return f"cfg{self.cfg_sha256[:8]}" + (f"-cal{self.calib_sha256[:8]}" if self.calib_sha256 else "")


def models_dir() -> Path:
    return Path(os.environ.get(MODELS_ENV) or Path.home() / ".hwcsp" / "models")


def load_records() -> list[tuple[ImportRecord, Path]]:
    """Every imported model (record, directory); unreadable entries are skipped with a reason
    on stderr rather than breaking every command."""
    import sys

    root = models_dir()
    out = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        f = d / RECORD
        if not f.is_file() or not (d / CFG).is_file():
            continue
        try:
            out.append((ImportRecord(**json.loads(f.read_text())), d))
        except (ValueError, TypeError) as e:
            print(f"hwcsp: skipping imported model {d}: unreadable {RECORD} ({e})", file=sys.stderr)
    return out


def converted_activations(cfg_text: str) -> dict[str, list[int]]:
    """Layers (darknet indices) whose activation the hardware rule turns into ReLU."""
    from hwcsp.darknet_cfg import CONVERTED, parse_cfg

    out: dict[str, list[int]] = {}
    for i, s in enumerate(parse_cfg(cfg_text)[1:]):
        default = "linear" if s.kind == "shortcut" else "logistic"
        if s.kind in ("convolutional", "connected", "shortcut") and s.get("activation", default) in CONVERTED:
            out.setdefault(s.get("activation", default), []).append(i)
    return out


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
