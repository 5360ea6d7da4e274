"""Hand-written LSTM cells in a torch module, found by their structure (inspection only; lifting a cell to
``nn.LSTM`` is a model transformation and lives in ``converters.cell_lifting``)."""

from __future__ import annotations

from edgelstm.errors import require_torch


def cell_candidates(model):
    """(path, module, linears) of submodules that look like an LSTM cell."""
    torch = require_torch()
    nn = torch.nn
    found = []
    for path, mod in model.named_modules():
        if not path or isinstance(mod, nn.RNNBase):
            continue
        linears = [m for m in mod.children() if isinstance(m, nn.Linear)]
        if len(linears) == 1 and linears[0].out_features % 4 == 0:
            h = linears[0].out_features // 4
            if linears[0].in_features > h:
                found.append((path, mod, linears, h, linears[0].in_features - h))
        elif len(linears) == 4 and len({(m.in_features, m.out_features) for m in linears}) == 1:
            h = linears[0].out_features
            if linears[0].in_features > h:
                found.append((path, mod, linears, h, linears[0].in_features - h))
    return found


__all__ = ["cell_candidates"]
