"""FIFO depths for full throughput: a pixel-level schedule of the folded graph, no RTL simulation.

Every node is a server that emits its output pixels one after the other, each a pixel time
``tau = rtl_cycles / output pixels`` after the previous one, and not before the input pixels it
needs (``hls.fifo``'s exact index maps) have arrived plus its latency (one pixel time: a node
completes a pixel before it emits it, plus ``EXTRA_LATENCY`` cycles of registers). Frames enter at
the bottleneck pace, one every ``T = max rtl_cycles`` cycles, their pixels spread evenly over it, and
no stream ever blocks (unbounded buffers). That is a max-plus recurrence per node, solved for all
pixels of all frames at once:

    out(p) = max(ready(p) + lambda, out(p-1) + tau) = p*tau + cummax(ready(p) + lambda - p*tau)

The schedule runs at exactly the bottleneck interval, so a stream whose buffer holds, at every
instant, everything that has arrived on it and that its consumer has not yet taken, never blocks its
producer: the network then keeps the bottleneck's pace. A consumer takes input pixel q when it
starts the first output pixel that needs q; a sliding-window generator takes it earlier, as soon as
its window buffer has room. The peak of (arrived - taken) over the schedule, plus one pixel, in the
stream's beats, is the throughput depth of that stream. It covers both causes of lost throughput:
the skew in time between the branches of reconvergent paths (the PRN residual's long branch) and
bursts of a producer against the pace of its consumer. Measured in stitched RTL: sim/README.md.

Why the input is spread over the period: any schedule at period T whose buffers stay within the FIFO
depths shows that T is reachable, and self-timed execution with back-pressure -- what the RTL does --
reaches the best period the depths allow (timed dataflow graphs). So the schedule may be the one
that needs the least buffering. With the whole frame offered at once, every node ahead of a slower
one runs ahead and the schedule buffers the difference -- at 320, 86 % of the FIFO bits sat on the
first three streams, where back-pressure costs nothing. The first frame's latency (the estimate
`hwcsp verify` sizes its run by) is taken from a schedule with the frame offered at once, as the
testbench offers it.

Every fork and join type is modelled explicitly; anything else with several inputs or outputs is
refused naming the node, so a new fork or join type must be added here (and to ``hls.fifo``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from golden.cycles import rtl_cycles, swg_buffer_min, swg_impl_style, swg_ring_depth
from golden.node import NodeView, decode_attr, split_op_type
from hls.fifo import FORKS, JOINS, PixelMaps

# Frames scheduled: the first frame's latency L in bottleneck intervals (from a one-frame schedule),
# plus STEADY_FRAMES, at least MIN_FRAMES. A skip branch holds up to L frames of skew, so the
# schedule must run past the moment the long branch's first frame arrives.
STEADY_FRAMES = 4
MIN_FRAMES = 6
EXTRA_LATENCY = 2.0  # cycles of registers on top of a node's pixel time (declared latencies: 1-3)
MARGIN_PIXELS = 1  # a join or consumer may have started reading one more pixel
# A join's inputs get this factor on the schedule's peak. The schedule spaces a node's output pixels
# evenly, the RTL emits them in bursts (a window row, a fold of PE outputs), and at a join the bursts
# of both branches add up. Measured, not derived: at full width, size 64 (cspdensenet-ref-prn) the
# peaks alone left one interval in six at 1.65x the bottleneck, 1.5x on the joins' FIFOs runs every
# interval within 1.03x (sim/README.md). More buffering never slows a dataflow graph down.
JOIN_SLACK = 1.5
SKID_BEATS = 2  # what every stream holds without a FIFO (the consumer's input register and skid)
# Consumers whose input order is tied to their producer's (a depthwise window and its Pool): no
# FIFO may sit between them (hls.folding treats the pair as one unit).
NO_FIFO_BEFORE = ("Pool",)


class ScheduleError(ValueError):
    pass


@dataclass
class StreamDepth:
    consumer: str
    input_index: int
    tensor: str
    peak_pixels: int  # most pixels the stream holds in the schedule (x JOIN_SLACK at a join)
    beats_per_pixel: int
    depth: int  # beats: (peak + MARGIN_PIXELS) * beats_per_pixel
    frames_held: float = 0.0  # the schedule's peak in frames of this stream (>= 1: a frame buffer)
    # a join input that waits for a global pool on another input (CEM's context): that pool emits
    # once per frame, after its frame's last pixel, so this input buffers the whole frame
    waits_for: str = ""


def _window_buffer(attrs: dict) -> int:
    """Pixels a sliding-window generator takes ahead of the first window that needs its oldest one.

    The schedule frees input pixel q - buf when the first window needing pixel q - buf starts; the
    RTL (sim/rtl/swg_window.sv) frees a beat only once the last window touching it is under way,
    up to buffer_min_size beats later. Its ring of golden.cycles.swg_ring_depth beats is therefore
    credited less one buffer_min_size."""
    kh, kw = attrs["ConvKernelDim"]
    if kh == kw == 1:
        return 1
    view = NodeView.make("ConvolutionInputGenerator_rtl", attrs)
    return (swg_ring_depth(view) - swg_buffer_min(view)) // (int(attrs["IFMChannels"]) // int(attrs["SIMD"]))


@dataclass
class Schedule:
    depths: list[StreamDepth]  # the streams that need more than SKID_BEATS
    latency: float  # cycles from frame 0's input to its last output pixel (an estimate of the RTL's)
    period: float  # the bottleneck's cycles per frame
    frames: int  # frames scheduled

    @property
    def latency_intervals(self) -> int:
        """L of the steady-state rule (at least 2L + 4 frames back to back): latency in periods."""
        return int(np.ceil(self.latency / self.period))


def throughput_depths(
    graph: onnx.GraphProto, shapes: dict[str, tuple[int, ...]], beats_per_pixel, frames: int | None = None
) -> Schedule:
    """Depth (beats) for every stream that needs more than ``SKID_BEATS`` to keep the bottleneck's
    pace, keyed by the consumer's input, and the schedule's first-frame latency.
    ``beats_per_pixel(node, input_index)`` as in ``hls.fifo``. ``graph`` may already hold
    StreamingFIFOs: they count as part of the stream they sit on."""
    if frames is None:
        times, _, period = _schedule(graph, shapes, 1, paced=True)
        latency = max(float(times[o.name][-1]) for o in graph.output)
        frames = max(MIN_FRAMES, int(np.ceil(latency / period)) + STEADY_FRAMES)
    times, taken, period = _schedule(graph, shapes, frames, paced=True)
    # The first frame's latency as the RTL sees it: the whole frame offered at once.
    first, _, _ = _schedule(graph, shapes, 1, paced=False)
    latency = max(float(first[o.name][-1]) for o in graph.output)
    source = _fifo_sources(graph)
    producer = {o: n for n in graph.node for o in n.output}
    out_depths = []
    for n, index, t_in, take in taken:
        if split_op_type(n.op_type)[0] in NO_FIFO_BEFORE:
            continue
        arrived = times[t_in]
        held = np.searchsorted(arrived, take, side="right") - np.arange(take.size)
        peak = int(held.max())
        bpp = int(beats_per_pixel(n, index))
        if peak * bpp <= SKID_BEATS:
            continue
        if split_op_type(n.op_type)[0] in JOINS:
            peak = int(np.ceil(peak * JOIN_SLACK))
        depth = (peak + MARGIN_PIXELS) * bpp
        held = float(held.max()) / _pixels(shapes[t_in])
        pools = []
        if split_op_type(n.op_type)[0] in JOINS:
            pools = _global_pools_behind(producer, [t for j, t in enumerate(n.input) if j != index])
        out_depths.append(
            StreamDepth(n.name, index, source.get(t_in, t_in), peak, bpp, depth, held, ", ".join(pools))
        )
    return Schedule(out_depths, latency, period, frames)


def _global_pools_behind(producer: dict[str, onnx.NodeProto], tensors: list[str]) -> list[str]:
    """The GlobalAccPool nodes upstream of ``tensors`` up to the joins before them: what makes a
    join input wait until a whole frame has passed through that pool."""
    found: list[str] = []
    todo, seen = list(tensors), set()
    while todo:
        n = producer.get(todo.pop())
        if n is None or n.name in seen:
            continue
        seen.add(n.name)
        base = split_op_type(n.op_type)[0]
        if base == "GlobalAccPool":
            found.append(n.name)
        elif base not in JOINS:
            todo.extend(n.input)
    return sorted(found)


def _fifo_sources(graph: onnx.GraphProto) -> dict[str, str]:
    """Tensor behind a StreamingFIFO (or a chain of them) -> the tensor the first one reads."""
    source: dict[str, str] = {}
    for n in graph.node:
        if _is_fifo(n):
            source[n.output[0]] = source.get(n.input[0], n.input[0])
    return source


def _schedule(graph: onnx.GraphProto, shapes: dict[str, tuple[int, ...]], frames: int, paced: bool):
    """(emission time of every pixel of every tensor, when each consumer input takes each pixel,
    the bottleneck period) for ``frames`` frames entering one per period: their pixels spread
    evenly over it (``paced``) or all at its start."""
    maps = PixelMaps(graph, shapes)
    nodes = list(graph.node)
    views = {n.name: NodeView.from_onnx(n, graph) for n in nodes if not _is_fifo(n)}
    cycles = {name: rtl_cycles(v) for name, v in views.items()}
    period = float(max(cycles.values()))
    times: dict[str, np.ndarray] = {}
    for x in graph.input:
        n_px = _pixels(shapes[x.name])
        offset = np.arange(n_px) * (period / n_px) if paced else np.zeros(n_px)
        times[x.name] = (np.arange(frames)[:, None] * period + offset[None, :]).ravel()
    taken: list[tuple[onnx.NodeProto, int, str, np.ndarray]] = []
    for n in nodes:
        if _is_fifo(n):
            times[n.output[0]] = times[n.input[0]]
            continue
        base = split_op_type(n.op_type)[0]
        _check_arity(n, base, sum(t in times for t in n.input))
        out = n.output[0]
        n_out = _pixels(shapes[out])
        tau = _pixel_time(views[n.name], cycles[n.name], n_out)
        pix = np.arange(n_out)
        ready = np.zeros(n_out * frames)
        needs = {}
        for t_in in n.input:
            if t_in not in times:
                continue  # a weight or threshold initializer
            n_in = _pixels(shapes[t_in])
            need = maps.need(n, pix, t_in, out)
            frame = np.repeat(np.arange(frames) * n_in, n_out)
            idx = np.where(np.tile(need, frames) < 0, -1, np.tile(need, frames) + frame)
            needs[t_in] = idx
            ready = np.maximum(ready, np.where(idx < 0, 0.0, times[t_in][np.maximum(idx, 0)]))
        latency = tau + EXTRA_LATENCY
        k = np.arange(ready.size)
        emitted = k * tau + np.maximum.accumulate(ready + latency - k * tau)
        started = emitted - latency
        for t_out in n.output:
            times[t_out] = emitted
        attrs = {a.name: decode_attr(a) for a in n.attribute}
        for index, t_in in enumerate(n.input):
            if t_in not in needs:
                continue
            arrived = times[t_in]
            q = np.arange(arrived.size)
            first = np.searchsorted(np.maximum.accumulate(needs[t_in]), q, side="left")
            by_window = started[np.minimum(first, started.size - 1)]
            if base == "ConvolutionInputGenerator":
                buf = _window_buffer(attrs)
                take = arrived.copy()  # a buffer larger than what is scheduled never fills
                if buf < arrived.size:
                    take[buf:] = np.maximum(arrived[buf:], by_window[: arrived.size - buf])
            else:
                take = np.maximum(arrived, by_window)
            taken.append((n, index, t_in, np.maximum.accumulate(take)))
    return times, taken, period


def _pixel_time(view: NodeView, cycles: int, n_out: int) -> float:
    """Cycles between output pixels. A "parallel" sliding window (sim/rtl/swg_parallel.sv,
    swg_pointwise.sv) has no window buffer: it emits a window in the cycle its last pixel arrives,
    so its windows come at the input's pace, in bursts (a row of windows, then the rows a stride
    or the padding skips), not spread over the frame; their consumer's FIFO absorbs the burst."""
    if split_op_type(view.op_type)[0] == "ConvolutionInputGenerator" and swg_impl_style(view) == "parallel":
        return float(int(view.attrs["IFMChannels"]) // int(view.attrs["SIMD"]))
    return cycles / n_out


def _is_fifo(node: onnx.NodeProto) -> bool:
    return split_op_type(node.op_type)[0] == "StreamingFIFO"


def _pixels(shape: tuple[int, ...]) -> int:
    return int(shape[1]) * int(shape[2]) if len(shape) == 4 else 1


def _check_arity(node: onnx.NodeProto, base: str, streams_in: int) -> None:
    if len(node.output) > 1 and base not in FORKS:
        raise ScheduleError(
            f"{node.name} ({node.op_type}): a fork type the FIFO analysis does not model "
            f"(known forks: {', '.join(FORKS)}); add it to hls/schedule.py and hls/fifo.py"
        )
    if streams_in > 1 and base not in JOINS:
        raise ScheduleError(
            f"{node.name} ({node.op_type}): a join type the FIFO analysis does not model "
            f"(known joins: {', '.join(JOINS)}); add it to hls/schedule.py and hls/fifo.py"
        )
