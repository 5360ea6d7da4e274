"""Model loading: TorchScript, torch.export programs (.pt2), edgelstm checkpoints, a state_dict plus a
factory, and a whole pickled module only with trust_pickle=True (refused otherwise, with the reason)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgelstm.errors import BadInput, UntrustedFile, require_torch, opt


@dataclass
class LoadedModel:
    module: Any                      # an nn.Module (eval mode) or ScriptModule
    source: str                      # torchscript | exported-program | checkpoint | state-dict | pickle | in-memory
    path: Path | None = None
    arch: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    exported_program: Any = None     # the ExportedProgram for .pt2 sources
    origin: dict[str, Any] | None = None  # how a model from another framework was imported (Keras: layers, check)

    @property
    def name(self) -> str:
        return self.arch or (self.path.stem if self.path else type(self.module).__name__)


def _zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return []


def _import_factory(spec: str):
    if ":" not in spec:
        raise BadInput(f"{opt('factory')} must look like pkg.module:function or path/to/file.py:function, got {spec!r}")
    mod_name, func_name = spec.rsplit(":", 1)
    try:
        if mod_name.endswith(".py"):
            file = Path(mod_name)
            if not file.exists():
                raise BadInput(f"factory file {file} does not exist")
            s = importlib.util.spec_from_file_location(f"_edgelstm_factory_{file.stem}", file)
            module = importlib.util.module_from_spec(s)
            import sys

            sys.modules[s.name] = module  # dataclasses (and pickling) look the module up while it executes
            with factory_path(spec):  # `from model_def import Net` beside the file
                s.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            module = importlib.import_module(mod_name)
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - any import failure of user code is bad input
        raise BadInput(f"cannot import factory module {mod_name!r}: {type(exc).__name__}: {exc}") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise BadInput(f"factory {spec!r}: {mod_name} has no callable {func_name!r}")
    return func


@contextlib.contextmanager
def factory_path(spec: str | None):
    """While a ``file.py:function`` factory loads and runs, its folder is first on ``sys.path`` (the file imports
    its siblings as a script would)."""
    import sys

    folder = str(Path(spec.rsplit(":", 1)[0]).resolve().parent) if spec and spec.rsplit(":", 1)[0].endswith(".py") \
        else None
    if folder is None:
        yield
        return
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass


def from_module(module, *, arch: str | None = None, config: dict | None = None) -> LoadedModel:
    """Wrap an in-memory nn.Module (library use)."""
    module.eval()
    remembered = getattr(module, "_edgelstm_arch", None)
    if remembered and arch is None:
        arch, config = remembered
    return LoadedModel(module, "in-memory", None, arch, dict(config or {}))


@contextlib.contextmanager
def _quiet_torch_logs():
    """torch's loaders log a traceback (at WARNING) before they raise; the raise is ours to report, in one line."""
    before = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(before)


def load_model(path: str | Path, *, factory: str | None = None, trust_pickle: bool = False,
               keras_reference: str | Path | None = None) -> LoadedModel:
    """A torch model from a file; a Keras file (``.keras``, legacy ``.h5``) becomes its equivalent torch module,
    proved against Keras' predictions where possible (``edgelstm.models.keras``; ``keras_reference``: a .npz of
    Keras' own predictions)."""
    from edgelstm.models.keras import is_keras_file

    path = Path(path)
    if path.is_file() and is_keras_file(path):
        return _load_keras(path, keras_reference)
    if keras_reference is not None:
        raise BadInput(f"{opt('keras_reference')} applies to Keras models (.keras, .h5); {path.name} is not one")
    with _quiet_torch_logs():
        return _load_model(path, factory=factory, trust_pickle=trust_pickle)


def _load_keras(path: Path, reference: str | Path | None) -> LoadedModel:
    from edgelstm.models.keras import import_keras

    if reference is not None and not Path(reference).is_file():
        raise BadInput(f"Keras reference file {reference} does not exist")
    imp = import_keras(path, reference=reference)
    return LoadedModel(imp.module, "keras", path, origin=imp.report())


def _load_model(path: str | Path, *, factory: str | None = None, trust_pickle: bool = False) -> LoadedModel:
    torch = require_torch()
    from edgelstm.models import zoo

    path = Path(path)
    if not path.exists():
        from edgelstm.fileio import link_problem

        raise BadInput(f"model file {path} {link_problem(path) or 'does not exist'}")
    if path.is_dir():
        raise BadInput(f"{path} is a directory, not a model file")
    names = _zip_names(path)
    if not names:
        head = path.read_bytes()[:8]
        if head[:2] != b"\x80\x02" and head[:1] != b"\x80":
            raise BadInput(f"{path} is not a PyTorch model (not a TorchScript, .pt2 or torch.save file)")
    # torch.export programs
    if any(n.endswith("archive_format") or "/serialized_exported_program" in n or n.endswith("models/model.json")
           for n in names) or path.suffix == ".pt2":
        try:
            ep = torch.export.load(str(path))
        except Exception as exc:  # noqa: BLE001
            raise BadInput(f"{path} looks like a torch.export program but does not load: {exc}") from None
        mod = ep.module()
        return LoadedModel(mod, "exported-program", path, exported_program=ep)
    # TorchScript archives hold code/ and constants.pkl
    if any(n.endswith("constants.pkl") for n in names) and any("/code/" in n for n in names):
        try:
            mod = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # noqa: BLE001
            raise BadInput(f"{path} looks like TorchScript but does not load: {exc}") from None
        mod.eval()
        return LoadedModel(mod, "torchscript", path)
    # torch.save files: weights only unless the user trusts the pickle
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        text = str(exc)
        if "weights_only" in text or "Unsupported global" in text or "WeightsUnpickler" in text:
            if not trust_pickle:
                raise UntrustedFile(
                    f"{path.name} is a pickled Python object (a whole module?); loading it would run arbitrary code",
                    hint=f"save a state_dict and pass {opt('factory')} pkg.module:function, save an edgelstm checkpoint, "
                         f"TorchScript or torch.export (.pt2); or pass {opt('trust_pickle')} if you trust this file",
                ) from None
            try:
                obj = torch.load(str(path), map_location="cpu", weights_only=False)
            except Exception as exc2:  # noqa: BLE001
                raise BadInput(f"{path} does not unpickle: {type(exc2).__name__}: {exc2}") from None
        else:
            raise BadInput(f"{path} is not a PyTorch model: {type(exc).__name__}: {text.splitlines()[0][:200]}") from None
    if isinstance(obj, torch.nn.Module):
        obj.eval()
        return LoadedModel(obj, "pickle", path)
    if zoo.is_checkpoint(obj):
        mod = zoo.from_checkpoint(obj)
        return LoadedModel(mod, "checkpoint", path, obj["arch"], dict(obj.get("config", {})))
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        if not factory:
            raise BadInput(f"{path.name} is a state_dict (weights without architecture)",
                           hint=f"pass {opt('factory')} pkg.module:function that builds the model")
        with factory_path(factory):
            mod = _import_factory(factory)()
        if not isinstance(mod, torch.nn.Module):
            raise BadInput(f"factory {factory} returned {type(mod).__name__}, not an nn.Module")
        try:
            mod.load_state_dict(obj, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()
            raise BadInput(f"state_dict does not fit the factory's model: {' '.join(first[:3])[:300]}") from None
        mod.eval()
        return LoadedModel(mod, "state-dict", path)
    raise BadInput(f"{path.name} holds a {type(obj).__name__}, not a model, checkpoint or state_dict")


def recurrent_modules(module) -> list[tuple[str, Any]]:
    """nn.LSTM/GRU/RNN layers and the modules that act as one (``edgelstm.models.native_rnn.is_rnn_like``)."""
    from edgelstm.models.native_rnn import is_rnn_like

    return [(n, m) for n, m in module.named_modules() if is_rnn_like(m)]


#: layer kinds that can consume a model's input, and the feature size each takes
_INPUT_LAYERS = ("LSTM", "GRU", "RNN", "Linear", "Conv1d", "BatchNorm1d", "LayerNorm", "Embedding", "EmbeddingBag")


def _kind(m) -> str:
    return getattr(m, "original_name", None) or type(m).__name__  # TorchScript keeps the class name


def _layer_size(m, kind: str) -> int | None:
    """Features per step a layer of this kind consumes (None for token layers: they take integer ids)."""
    if kind in ("LSTM", "GRU", "RNN"):
        w = getattr(m, "weight_ih_l0", None)
        return int(w.shape[1]) if w is not None else None
    if kind == "Linear":
        return int(m.weight.shape[1])
    if kind == "Conv1d":
        return int(m.weight.shape[1]) * int(getattr(m, "groups", 1))
    if kind == "BatchNorm1d":
        rm = getattr(m, "running_mean", None)
        w = rm if rm is not None else getattr(m, "weight", None)
        return int(w.shape[0]) if w is not None else None
    if kind == "LayerNorm":
        w = getattr(m, "weight", None)
        return int(w.shape[-1]) if w is not None and w.dim() == 1 else None
    return None


def input_layers(module) -> list[tuple[str, str, int | None]]:
    """(path, kind, features) of the layers that could consume the model's input, in registration order:
    recurrent layers, Linear, Conv1d, BatchNorm1d, LayerNorm, Embedding and hand-written cells (whose inner
    Linears are skipped). The first is the model's first layer when modules are registered in call order."""
    from edgelstm.models.cells import cell_candidates

    cells: dict[str, Any] = {}
    for c in cell_candidates(module):
        cells.setdefault(c.path, c)  # a Linear(in + h, 12) fits an LSTM and a GRU cell: the LSTM reading first
    out: list[tuple[str, str, int | None]] = []
    inside: list[str] = []
    for path, m in module.named_modules():
        if any(path.startswith(p + ".") for p in inside):
            continue
        if path in cells:
            out.append((path, "cell", cells[path].input_size))
            inside.append(path)
            continue
        kind = _kind(m)
        if kind in _INPUT_LAYERS:
            out.append((path, kind, _layer_size(m, kind)))
            if kind in ("LSTM", "GRU", "RNN"):
                inside.append(path)
    return out


def infer_input_size(module) -> int | None:
    """Features per time step of the model's input, from the first layer that consumes the input (not the first
    recurrent layer: a BatchNorm1d(5) -> Linear(5, 32) -> LSTM(32) model takes 5). When layers of different sizes
    are registered, or the model computes with raw nn.Parameters (``X @ W_xh``), the first size the model actually
    runs on wins (registration order need not be call order; a raw-parameter head's size is tried after the
    weights registered before it). None when the first layer takes token ids (an nn.Embedding) or nothing tells."""
    layers = input_layers(module)
    loose = _loose_sizes(module)
    if not layers and not loose:
        return None
    if layers and layers[0][1] in ("Embedding", "EmbeddingBag"):
        return None
    first_size = layers[0][2] if layers else None
    from edgelstm.models.cells import cell_candidates

    sizes = list(dict.fromkeys(s for _, k, s in layers if s is not None and k not in ("Embedding", "EmbeddingBag")))
    first_cells = {p for p, k, _ in layers if k == "cell"}
    sizes += [c.input_size for c in cell_candidates(module) if c.path in first_cells and c.input_size not in sizes]
    if len(sizes) <= 1 and not loose:
        return sizes[0] if sizes else None
    for size in dict.fromkeys([*loose, *sizes]):
        if _runs_on(module, size):
            return size
    if first_size is not None:
        return first_size
    return sizes[0] if sizes else None  # a raw parameter's dim is only taken when the model runs on it


def _loose_sizes(module) -> list[int]:
    """Both dims of the 2-D nn.Parameters a module owns directly outside torch's layers (a cell written with raw
    weights: ``X @ W_xi`` with W_xi [in, h], or ``W_ih @ x`` with [h, in]), in registration order."""
    torch = require_torch()
    known = (torch.nn.Linear, torch.nn.RNNBase, torch.nn.RNNCellBase, torch.nn.Embedding, torch.nn.EmbeddingBag,
             torch.nn.modules.conv._ConvNd, torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm)
    if isinstance(module, torch.jit.ScriptModule):
        return []
    out: list[int] = []
    for m in module.modules():
        if isinstance(m, known):
            continue
        for p in m._parameters.values():
            if p is not None and p.dim() == 2:
                out += [int(p.shape[0]), int(p.shape[1])]
    return list(dict.fromkeys(out))


def float_dtype(module):
    """The floating dtype the model computes in (its first floating parameter or buffer; float32 when none)."""
    torch = require_torch()
    for t in (*module.parameters(), *module.buffers()) if hasattr(module, "parameters") else ():
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def _runs_on(module, size: int) -> bool:
    torch = require_torch()
    from edgelstm.models.probing import module_state_guard

    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    try:
        with module_state_guard(module), torch.no_grad():
            module(torch.zeros(2, 3, size, device=device, dtype=float_dtype(module)))
        return True
    except Exception:  # noqa: BLE001 - this size does not fit; the caller tries the next
        return False
