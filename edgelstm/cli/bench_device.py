"""`edgelstm bench`'s trtexec-style GPU options (edgelstm/latency/trt_options.py says what each does) and the tables
of what they measured."""

from __future__ import annotations

from typing import Any, Optional

import typer

from edgelstm import console

CudaGraphOpt = typer.Option(False, "--cuda-graph", help="GPU: replay a captured CUDA graph (TensorRT: once per shape; "
                            "onnxruntime CUDA: enable_cuda_graph with fixed device buffers; torch on CUDA).")
ShapesOpt = typer.Option(None, "--shapes", metavar="NAME:DIMS,...", show_default=False,
                         help="The shape of named inputs, trtexec's way: x:1x60x1,h0:1x1x64 (the others follow "
                              "--batch/--seq); the row's batch and seq are read from them.")
SplitOpt = typer.Option(False, "--split-transfers", help="GPU: time host-to-device, compute and device-to-host apart, "
                        "and the host latency of all three (a separate run after the timed one).")
SpinOpt = typer.Option(False, "--spin-wait", help="TensorRT: wait for the GPU by polling (cudaEventQuery) instead of "
                       "blocking (trtexec's default); affects --split-transfers' host latency.")
StreamsOpt = typer.Option(1, "--streams", metavar="N", help="TensorRT: N execution contexts on N streams enqueued "
                          "together (trtexec's --infStreams): throughput in the row's extras.")
ProfileOpt = typer.Option(False, "--profile-layers", help="TensorRT: per-layer times from IProfiler, in a separate "
                          "run (trtexec's --dumpProfile --separateProfileRun).")


def device_options(cuda_graph: bool, shapes: Optional[str], split_transfers: bool, spin_wait: bool, streams: int,
                   profile_layers: bool) -> Any:
    from edgelstm.latency.trt_options import DeviceOptions, parse_shapes

    options = DeviceOptions(cuda_graph=cuda_graph, shapes=parse_shapes(shapes), split_transfers=split_transfers,
                            spin_wait=spin_wait, streams=streams, profile_layers=profile_layers)
    return options if options.any else None


def _ms(stats: dict) -> str:
    return "" if not stats else f"{stats['p50']:.4f}"


def print_tables(payload: dict) -> None:
    rows = payload.get("results", [])
    split = [(r, r["extras"]["split_ms"]) for r in rows if "split_ms" in (r.get("extras") or {})]
    if split:
        console.table("transfers and compute, p50 ms (--split-transfers)",
                      ["artifact", "batch", "seq", "H2D", "compute", "D2H", "host latency", "clock"],
                      [[r["artifact"], r["batch"], r["seq"], _ms(s["h2d"]), _ms(s["compute"]), _ms(s["d2h"]),
                        _ms(s["host_latency"]), s.get("clock", "")] for r, s in split])
    streams = [(r, r["extras"]["streams"]) for r in rows if "streams" in (r.get("extras") or {})]
    if streams:
        console.table("throughput over several streams (--streams)",
                      ["artifact", "batch", "seq", "streams", "seq/s (host clock)", "seq/s (device)"],
                      [[r["artifact"], r["batch"], r["seq"], s["streams"],
                        f"{s['throughput_seq_per_s_host']:.0f}" if s["throughput_seq_per_s_host"] else "",
                        f"{s['throughput_seq_per_s_device']:.0f}" if s["throughput_seq_per_s_device"] else ""]
                       for r, s in streams])
    for r in rows:
        profile = (r.get("extras") or {}).get("layer_profile")
        if profile:
            console.table(f"layers of {r['artifact']} (batch {r['batch']}, seq {r['seq']}; --profile-layers)",
                          ["layer", "mean ms", "share"],
                          [[p["layer"], f"{p['mean_ms']:.4f}", f"{100 * p['share']:.1f}%"] for p in profile[:15]])


__all__ = ["CudaGraphOpt", "ShapesOpt", "SplitOpt", "SpinOpt", "StreamsOpt", "ProfileOpt", "device_options",
           "print_tables"]
