"""Golden vectors for RTL: every node's input and output streams of N frames, and its memories.

`write_vectors(hw_dir, out_dir)` runs golden on `hw_dir/model.hw.onnx` and writes `out_dir`
(atomically: built in a temporary sibling, renamed at the end):

    manifest.json          graph hash, node order, per node: tensors, shapes, datatypes, folding,
                           packing (bits, elements per beat, widths, beat counts), files, cycles;
                           the accumulator table; the input seed
    io_spec.json           copied from hw_dir (the software side)
    tensors/<t>.npy        every tensor, all frames back to back on axis 0 (narrowest integer dtype)
    heads/<output>.npy     the float head outputs, NCHW float32: (int + bias) * scale
    nodes/<NNN>_<node>/    in<k>.hex, out<k>.hex: each stream one beat per line, frames back to back,
                           in the node's stream order; weights.hex / thresholds.hex: one word per line

With `edges_only=True` only the graph's inputs and outputs get tensors/*.npy and stream files (the
stitched network, sim.network, needs nothing else; per-tensor vectors of the paper-size detector
are hundreds of MB a frame): every other port is listed with its geometry but `"npy"`/`"hex"` null,
the memories are written as always, and the manifest says `"edges_only": true`.

Packing and memory layouts are golden/README.md's ("Streams and beats", "Memory layouts").  The
same hw_dir, frame count and seed give a byte-identical directory.

`python -m golden.vectors HW_DIR [--out DIR] [--n N] [--seed S] [--edges-only]` is the standalone command.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from golden.cycles import rtl_cycles
from golden.datatypes import DType, encode, graph_dtype_names, parse_dtype, storage_dtype
from golden.errors import GoldenError
from golden.execute import Program, load_model
from golden.fsutil import atomic_dir
from golden.memlayout import mvau_weight_layout, mvau_weight_words, threshold_layout, threshold_words
from golden.node import NodeView
from golden.packing import hex_lines, padded_width, write_hex
from golden.software import IoSpec, check_against_graph, heads_to_float, load_io_spec
from golden.streams import (
    folded_in_shape,
    folded_out_shape,
    in_dtype,
    in_elems_per_beat,
    in_width,
    n_in_beats,
    n_out_beats,
    out_dtype,
    out_elems_per_beat,
    out_width,
    to_beats,
)

FORMAT = "hwcsp-golden-vectors"
VERSION = 2  # 2: exp_cycles_per_frame is golden.cycles.rtl_cycles (the hwcsp RTL), no longer FINN's
FOLDING_KEYS = (
    "PE",
    "SIMD",
    "TH",
    "MW",
    "MH",
    "mem_mode",
    "ram_style",
    "resType",
    "parallel_window",
    "depthwise",
    "inWidth",
    "outWidth",
    "depth",
    "impl_style",
)
PACKING = (
    "one beat per line, lower-case hex, padded_width = stream width rounded up to 8 bits; element 0 "
    "of a beat in the least significant bits, element j in bits [j*bits, (j+1)*bits), signed values "
    "as bits-wide two's complement, BIPOLAR as 0/1, zero padding above (never sign-extended); beats "
    "in the node's stream order (golden.streams.to_beats); frames back to back"
)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class _Files:
    """Unique, filesystem-safe file names under the vectors directory."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def name(self, stem: str, suffix: str) -> str:
        base, i = _safe(stem), 1
        cand = base + suffix
        while cand.lower() in self.used:
            i += 1
            cand = f"{base}~{i}{suffix}"
        self.used.add(cand.lower())
        return cand


def _npy_header(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    with open(path, "wb") as f:
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)


def _make_inputs(spec: IoSpec, n: int, seed: int, inputs: np.ndarray | None) -> tuple[np.ndarray, str]:
    lead, *rest = spec.input.shape
    dt = spec.input.dtype
    if inputs is None:
        if n < 1:
            raise GoldenError(f"the number of frames must be at least 1, got {n}")
        rng = np.random.default_rng(seed)
        x = rng.integers(dt.min, dt.max + 1, size=(n * lead, *rest), dtype=np.int64)
        return x, f"uniform random {dt.name} codes, numpy default_rng({seed}).integers"
    x = np.asarray(inputs)
    if x.ndim != len(spec.input.shape) or list(x.shape[1:]) != rest or x.shape[0] % lead or not x.shape[0]:
        raise GoldenError(
            f"inputs of shape {list(x.shape)}: expected (N*{lead}, {', '.join(map(str, rest))}) NHWC "
            "integer codes (golden.software.images_to_input converts NCHW images)"
        )
    frames = x.shape[0] // lead
    if n not in (1, frames):
        raise GoldenError(f"n={n} but the given inputs hold {frames} frames")
    return x, "given by the caller"


def _tensor_dtypes(prog: Program) -> dict[str, DType]:
    """Datatype of every tensor: the graph annotation, else what its producer declares."""
    names = graph_dtype_names(prog.model.graph)
    out: dict[str, DType] = {k: parse_dtype(v) for k, v in names.items() if not v.startswith("FLOAT")}
    for view in prog.nodes:
        for i, t in enumerate(view.outputs):
            out.setdefault(t, out_dtype(view, i))
    return out


def _stream(view: NodeView, ind: int, output: bool, dt: DType, frames: int) -> dict[str, Any]:
    folded = folded_out_shape(view, ind) if output else folded_in_shape(view, ind)
    width = out_width(view, ind) if output else in_width(view, ind)
    epb = out_elems_per_beat(view, ind) if output else in_elems_per_beat(view, ind)
    beats = n_out_beats(view, ind) if output else n_in_beats(view, ind)
    return {
        "dtype": dt.name,
        "elem_bits": dt.bits,
        "signed": dt.signed,
        "folded_shape": list(folded),
        "elems_per_beat": epb,
        "stream_width": width,
        "padded_width": padded_width(width),
        "beats_per_frame": beats,
        "beats": beats * frames,
    }


def _memory(path: Path, rel: str, words: np.ndarray, lay: Any, layout: str) -> dict[str, Any]:
    write_hex(path, [int(w) for w in words], lay.word_bits)
    return {
        "file": rel,
        "depth": lay.depth,
        "lanes": lay.lanes,
        "elem_bits": lay.elem_bits,
        "dtype": lay.dtype.name,
        "word_bits": lay.word_bits,
        "padded_width": padded_width(lay.word_bits),
        "layout": layout,
    }


def _memories(view: NodeView, graph_dtypes: dict[str, str], node_dir: Path, rel: str) -> dict[str, Any]:
    mems: dict[str, Any] = {}
    if view.op_type == "MVAU" and 1 in view.inits:
        mems["weights"] = _memory(
            node_dir / "weights.hex",
            f"{rel}/weights.hex",
            mvau_weight_words(view),
            mvau_weight_layout(view),
            "address nf*SF + sf; lane p*SIMD + s (from the LSB) = W[sf*SIMD + s, nf*PE + p]",
        )
    has_thr = (view.op_type == "MVAU" and not int(view.attrs.get("noActivation", 0)) and 2 in view.inits) or (
        view.op_type == "Thresholding" and 1 in view.inits
    )
    if has_thr:
        # an MVAU's thresholds in its accumulator type (one bit wider where one is acc max + 1)
        mems["thresholds"] = _memory(
            node_dir / "thresholds.hex",
            f"{rel}/thresholds.hex",
            threshold_words(view),
            threshold_layout(view),
            "address t; lane p*steps + i (from the LSB) = T[t*PE + p, i], ascending thresholds",
        )
        if view.op_type == "MVAU":
            ann = graph_dtypes.get(view.inputs[2])
            mems["thresholds"]["graph_annotation"] = ann
    return mems


def write_vectors(
    hw_dir: Path,
    out_dir: Path,
    n: int = 1,
    seed: int = 0,
    inputs: np.ndarray | None = None,
    edges_only: bool = False,
) -> Path:
    """Write the golden vectors of `hw_dir` (an hls variant directory) into `out_dir`; returns it.

    `inputs`: NHWC integer codes of the graph input, N frames stacked on axis 0 (then `n` must be
    1 or N); by default `n` frames of uniform random codes from `seed`. `edges_only`: tensors and
    stream files of the graph's inputs and outputs only (module docstring); the files written are
    byte-identical to the same files of full vectors.
    """
    hw_dir, out_dir = Path(hw_dir), Path(out_dir)
    model_path, spec_path = hw_dir / "model.hw.onnx", hw_dir / "io_spec.json"
    for f in (model_path, spec_path):
        if not f.is_file():
            raise GoldenError(f"{hw_dir}: no {f.name}; run the hls stage for this configuration first")
    raw = model_path.read_bytes()
    prog = Program(load_model(model_path))
    spec = load_io_spec(spec_path)
    check_against_graph(spec, prog.model.graph)
    x, source = _make_inputs(spec, n, seed, inputs)
    frames = x.shape[0] // spec.input.shape[0]

    with atomic_dir(out_dir) as tmp:
        _write(
            tmp, prog, spec, spec_path, raw, x, frames, seed if inputs is None else None, source, edges_only
        )
    return out_dir


def _write(
    tmp: Path,
    prog: Program,
    spec: IoSpec,
    spec_path: Path,
    raw: bytes,
    x: np.ndarray,
    frames: int,
    seed: int | None,
    source: str,
    edges_only: bool = False,
) -> None:
    graph = prog.model.graph
    graph_dtypes = graph_dtype_names(graph)
    dtypes = _tensor_dtypes(prog)
    (tmp / "tensors").mkdir(parents=True)
    (tmp / "nodes").mkdir()
    (tmp / "heads").mkdir()
    shutil.copyfile(spec_path, tmp / "io_spec.json")

    # tensors: name -> (npy path, npy dtype, per-frame shape), in first-use order
    tensors: dict[str, dict[str, Any]] = {}
    tensor_files, head_names = _Files(), _Files()
    order: list[str] = [vi.name for vi in prog.inputs]
    for view in prog.nodes:
        order += [t for i, t in enumerate(view.inputs) if i not in view.inits] + list(view.outputs)
    edges = {vi.name for vi in prog.inputs} | set(prog.outputs)
    for t in dict.fromkeys(order):
        written = not edges_only or t in edges  # names drawn for every tensor: the same as full vectors
        name = f"tensors/{tensor_files.name(t, '.npy')}"
        tensors[t] = {"npy": name if written else None}

    node_dirs = [f"nodes/{i:03d}_{_safe(v.name)}" for i, v in enumerate(prog.nodes)]
    for d in node_dirs:
        (tmp / d).mkdir()

    heads: dict[str, list[np.ndarray]] = {o.name: [] for o in spec.outputs}
    for f, ctx in enumerate(prog.frames({spec.input.name: x})):
        for t, info in tensors.items():
            if t not in ctx:
                raise GoldenError(f"tensor {t!r} was not computed")
            value = ctx[t]
            if f == 0:
                dt = dtypes[t]
                info.update(
                    dtype=dt.name,
                    frame_shape=list(value.shape),
                    shape=[value.shape[0] * frames, *value.shape[1:]],
                    npy_dtype=storage_dtype(dt.min, dt.max).name,
                )
                if info["npy"] is not None:
                    _npy_header(tmp / info["npy"], np.dtype(info["npy_dtype"]), tuple(info["shape"]))
            if info["npy"] is None:
                continue
            with open(tmp / info["npy"], "ab") as fh:
                fh.write(np.ascontiguousarray(value, dtype=info["npy_dtype"]).tobytes())
        for view, d in zip(prog.nodes, node_dirs, strict=True):
            ports = [(i, t, False) for i, t in enumerate(view.inputs) if i not in view.inits]
            ports += [(i, t, True) for i, t in enumerate(view.outputs)]
            for ind, t, output in ports:
                if tensors[t]["npy"] is None:  # edges_only: not a graph input or output
                    continue
                dt = out_dtype(view, ind) if output else in_dtype(view, ind)
                epb = out_elems_per_beat(view, ind) if output else in_elems_per_beat(view, ind)
                width = out_width(view, ind) if output else in_width(view, ind)
                beats = to_beats(view, ctx[t], ind, output=output)
                with open(tmp / d / f"{'out' if output else 'in'}{ind}.hex", "ab") as fh:
                    fh.write(hex_lines(encode(beats, dt), dt.bits, epb, width))
        for o in spec.outputs:
            heads[o.name].append(ctx[o.name])

    head_files = {}
    floats = heads_to_float({k: np.concatenate(v, axis=0) for k, v in heads.items()}, spec)
    for name, value in floats.items():
        rel = f"heads/{head_names.name(name, '.npy')}"
        np.save(tmp / rel, value)
        head_files[name] = rel

    nodes = []
    for idx, (view, d) in enumerate(zip(prog.nodes, node_dirs, strict=True)):
        ins = []
        for i, t in enumerate(view.inputs):
            if i in view.inits:
                ins.append({"index": i, "tensor": t, "initializer": True, "shape": list(view.inits[i].shape)})
                continue
            info = tensors[t]
            port = {"index": i, "tensor": t, "npy": info["npy"], "frame_shape": info["frame_shape"]}
            port |= _stream(view, i, False, in_dtype(view, i), frames)
            port["hex"] = f"{d}/in{i}.hex" if info["npy"] is not None else None
            ins.append(port)
        outs = []
        for i, t in enumerate(view.outputs):
            info = tensors[t]
            port = {"index": i, "tensor": t, "npy": info["npy"], "frame_shape": info["frame_shape"]}
            port |= _stream(view, i, True, out_dtype(view, i), frames)
            port["hex"] = f"{d}/out{i}.hex" if info["npy"] is not None else None
            outs.append(port)
        nodes.append(
            {
                "index": idx,
                "name": view.name,
                "op_type": view.full_op_type,
                "generic_op_type": view.op_type,
                "dir": d,
                "folding": {k: _jsonable(view.attrs[k]) for k in FOLDING_KEYS if k in view.attrs},
                "attributes": {k: _jsonable(v) for k, v in sorted(view.attrs.items())},
                "exp_cycles_per_frame": int(rtl_cycles(view)),
                "inputs": ins,
                "outputs": outs,
                "memories": _memories(view, graph_dtypes, tmp / d, d),
            }
        )

    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "model": "model.hw.onnx",
        "graph_sha256": hashlib.sha256(raw).hexdigest(),
        "frames": frames,
        "edges_only": edges_only,
        "seed": seed,
        "input_source": source,
        "packing": PACKING,
        "io_spec": "io_spec.json",
        "graph_inputs": [{"tensor": vi.name, **tensors[vi.name]} for vi in prog.inputs],
        "graph_outputs": [{"tensor": t, **tensors[t], "float_nchw": head_files.get(t)} for t in prog.outputs],
        "node_order": [v.name for v in prog.nodes],
        "accumulators": [r.to_json() for r in prog.accumulators],
        "nodes": nodes,
        "tensors": tensors,
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    """`python -m golden.vectors HW_DIR`: 0 on success, 2 (with one line on stderr) on a GoldenError."""
    p = argparse.ArgumentParser(prog="python -m golden.vectors", description=__doc__.splitlines()[0])
    p.add_argument("hw_dir", type=Path, help="hls variant directory (model.hw.onnx, io_spec.json)")
    p.add_argument("--out", type=Path, help="output directory (default HW_DIR/vectors)")
    p.add_argument("--n", type=int, default=1, help="number of random input frames")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input frames")
    p.add_argument(
        "--edges-only", action="store_true", help="stream files of the graph's inputs and outputs only"
    )
    args = p.parse_args(argv)
    try:
        out = write_vectors(
            args.hw_dir,
            args.out or args.hw_dir / "vectors",
            n=args.n,
            seed=args.seed,
            edges_only=args.edges_only,
        )
    except GoldenError as e:
        print(f"golden: error: {e}", file=sys.stderr)
        return 2
    print(f"golden: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
