"""`edgelstm validate --localize`: where the drift enters (the options, and running + rendering the localisation).

Localisation lives in `validate` rather than in a command of its own: it answers the question validate raises
("rel_l2 is 7e-3; from where?") on the same reference, candidate and data, in the same vocabulary (--data,
--synthetic, --batch, --threads, --report/--json gain a "localization" section), and a CI job that fails a gate can
say where in the same run. The library stage is edgelstm.validation.localize.localize_drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from edgelstm import console

LocalizeOpt = typer.Option(False, "--localize", help="Also find where the drift enters: read every intermediate "
                           "tensor of the FP32 ONNX reference and of the candidate (ONNX or TensorRT engine) on the same "
                           "data and name the first layer, tensor and time step whose error jumps (the hidden state "
                           "of each LSTM/GRU step by step). A torch reference is replaced by the FP32 ONNX the "
                           "candidate was made from (found by its manifest).")
LocalizeOutOpt = typer.Option(None, "--localize-out", metavar="DIR", show_default=False,
                              help="Write localize.md, localize.html, localize.json and plots of the error along the "
                                   "graph and along time into DIR (implies --localize).")
MarkOpt = typer.Option("all", "--mark", metavar="all|recurrent|NAMES",
                       help="Which tensors --localize reads: every node output (all), the outputs of the LSTM/GRU/RNN "
                            "and loops (recurrent), or node names, globs, op types and tensor names, comma-separated.")
JumpOpt = typer.Option(0.1, "--jump", metavar="FRACTION",
                       help="--localize: a tensor adds drift when its error exceeds its inputs' by this fraction "
                            "of the worst output's.")


def localization_reference(reference: Path, candidate: Path) -> Path:
    """The FP32 ONNX to localise against: the reference itself when it is ONNX, else the candidate's FP32 ancestor."""
    from edgelstm.errors import BadInput
    from edgelstm.validation.localize import fp32_ancestor

    if reference.suffix.lower() == ".onnx":
        return reference
    found = fp32_ancestor(candidate, near=(reference,))
    if found is None:
        raise BadInput(f"--localize compares tensors of an FP32 ONNX with the candidate's; {reference.name} is not "
                       f"ONNX and no FP32 ONNX that {candidate.name} was made from lies beside it",
                       hint="pass the FP32 ONNX as --reference (e.g. -r model.onnx)")
    console.info(f"  localising against {found.name} (the FP32 ONNX {candidate.name} was made from)")
    return found


def check_localization(reference: Path, candidate: Path, mark: str, jump: float) -> Path:
    """Before anything runs: the FP32 ONNX to localise against, --jump, and --mark against its tensors."""
    from edgelstm.artifacts.onnx_graph import load_onnx
    from edgelstm.validation.localize import LocalizeOptions
    from edgelstm.validation.localize_graph import choose_sites, graph_sites, prepared

    LocalizeOptions(mark=mark, jump=jump)
    ref = localization_reference(reference, candidate)
    if ref.suffix.lower() == ".onnx" and ref.is_file():
        model = prepared(load_onnx(ref, what="reference"))
        choose_sites(graph_sites(model), model, mark)
    return ref


def run_localization(ref: Path, candidate: Path, request: Any, *, mark: str, jump: float, batch_size: int,
                     threads: Optional[int], out: Optional[Path]) -> Any:
    """Run the stage against the FP32 ONNX ``ref`` (check_localization) and write its reports (`render` prints
    it); returns the Localization."""
    from edgelstm.stages import localize_drift
    from edgelstm.validation.localize import LocalizeOptions

    options = LocalizeOptions(mark=mark, jump=jump, batch_size=batch_size, threads=threads, on_step=console.step)
    console.step(f"localising the drift of {candidate.name} against {ref.name}")
    result = localize_drift(ref, candidate, request, options)
    if out is not None:
        from edgelstm.validation.localize_report import write_localization

        result.notes.append("wrote " + ", ".join(str(p) for p in write_localization(result, out)))
    return result


def render(result: Any) -> None:
    from edgelstm.validation.localize_report import COLUMNS, _rows

    rows = _rows(result)
    shown = rows if len(rows) <= 30 else [r for r in rows if r[-1] or r[4] not in ("0", "")][:30]
    shown = [r[:5] + r[6:] for r in shown] if all(r[5] == "" for r in shown) else shown   # engines: no isolated
    columns = COLUMNS[:-1] + ["⟵"]
    console.table(f"where the drift comes from ({result.samples} samples, {result.backend})",
                  columns if not shown or len(shown[0]) == len(columns) else columns[:5] + columns[6:], shown)
    for r in result.analysis.get("recurrent", []):
        if r.get("peak_step") is not None:
            console.info(f"  {r['node']} hidden state along time: step 0 {r['first']:.3g}, enters at step "
                         f"{r['entry_step']}, peak {r['peak']:.3g} at step {r['peak_step']}, last {r['last']:.3g}")
    for note in result.notes:
        console.info(f"  [dim]{console.literal(note)}[/]")
    console.info(f"[bold]{console.literal(result.verdict())}[/]")


__all__ = ["LocalizeOpt", "LocalizeOutOpt", "MarkOpt", "JumpOpt", "check_localization", "run_localization",
           "localization_reference"]
