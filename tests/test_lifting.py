"""Hand-written cells in other gate orders, concatenation orders and layouts lift to nn.LSTM exactly;
cells that are not plain LSTMs fall back to a verified ONNX Loop."""

from __future__ import annotations

import itertools
from collections import Counter

import onnx
import pytest
import torch

from edgelstm.converters.export.cell_lifting import LiftError, lift_cells
from edgelstm.converters.export.torch_to_onnx import ExportOptions, export_onnx
from edgelstm.options import ExportRoute


class FourLinearCell(torch.nn.Module):
    def __init__(self, n, h, order, concat):
        super().__init__()
        self.order, self.concat = order, concat
        self.l0, self.l1, self.l2, self.l3 = (torch.nn.Linear(n + h, h) for _ in range(4))

    def forward(self, x, state):
        h, c = state
        z = torch.cat([x, h], 1) if self.concat == "xh" else torch.cat([h, x], 1)
        pre = dict(zip(self.order, (self.l0(z), self.l1(z), self.l2(z), self.l3(z))))
        i, f, o, g = torch.sigmoid(pre["i"]), torch.sigmoid(pre["f"]), torch.sigmoid(pre["o"]), torch.tanh(pre["g"])
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, (h, c)  # the (output, (h, c)) convention


class OneLinearCell(torch.nn.Module):
    def __init__(self, n, h, order, concat):
        super().__init__()
        self.order, self.concat = order, concat
        self.lin = torch.nn.Linear(n + h, 4 * h)

    def forward(self, x, hc):
        h, c = hc
        z = torch.cat([x, h], 1) if self.concat == "xh" else torch.cat([h, x], 1)
        pre = dict(zip(self.order, self.lin(z).chunk(4, 1)))
        c = torch.sigmoid(pre["f"]) * c + torch.sigmoid(pre["i"]) * torch.tanh(pre["g"])
        return torch.sigmoid(pre["o"]) * torch.tanh(c), c


class Unrolled(torch.nn.Module):
    def __init__(self, cell, h, n_out=2):
        super().__init__()
        self.h = h
        self.cell = cell
        self.fc = torch.nn.Linear(h, n_out)

    def forward(self, x):
        h = torch.zeros(x.shape[0], self.h)
        c = torch.zeros(x.shape[0], self.h)
        for t in range(x.shape[1]):
            out = self.cell(x[:, t], (h, c))
            h, c = out[1] if isinstance(out[1], tuple) else out
        return self.fc(h)


ORDERS = ["".join(p) for p in itertools.permutations("ifgo")]


@pytest.mark.parametrize("order,concat,kind", [(o, c, k) for o in ORDERS[::5] for c in ("xh", "hx")
                                               for k in ("one", "four")])
def test_any_gate_and_concat_order_lifts_exactly(order, concat, kind):
    torch.manual_seed(0)
    cell = (OneLinearCell if kind == "one" else FourLinearCell)(3, 6, order, concat)
    model = Unrolled(cell, 6).eval()
    r = lift_cells(model, 3)
    assert r.cell.gate_order == order and r.cell.concat == concat and r.cell.linears == kind
    assert r.max_error < 1e-5
    x = torch.randn(2, 11, 3)
    with torch.no_grad():
        torch.testing.assert_close(r.model(x), model(x), atol=1e-5, rtol=1e-5)


def test_lifted_model_exports_a_native_lstm(tmp_path):
    torch.manual_seed(1)
    model = Unrolled(FourLinearCell(3, 6, "gofi", "hx"), 6).eval()
    r = export_onnx(model, tmp_path / "m.onnx", ExportOptions(input_size=3))
    assert r.route == ExportRoute.lifted
    assert Counter(n.op_type for n in onnx.load(str(r.path)).graph.node)["LSTM"] == 1


class PeepholeCell(torch.nn.Module):
    """Not a plain LSTM: a layer-norm on c. Scriptable (annotated), so the Loop fallback applies."""

    def __init__(self, n: int, h: int):
        super().__init__()
        self.lin = torch.nn.Linear(n + h, 4 * h)
        self.ln = torch.nn.LayerNorm(h)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        i, f, g, o = self.lin(torch.cat([x, h], 1)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(self.ln(c)), c


class PeepholeModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = PeepholeCell(3, 6)
        self.fc = torch.nn.Linear(6, 1)

    def forward(self, x):
        h = torch.zeros(x.shape[0], 6)
        c = torch.zeros(x.shape[0], 6)
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], h, c)
        return self.fc(h)


def test_unliftable_cell_falls_back_to_a_verified_loop(tmp_path):
    torch.manual_seed(2)
    model = PeepholeModel().eval()
    with pytest.raises(LiftError):
        lift_cells(model, 3)
    r = export_onnx(model, tmp_path / "loop.onnx", ExportOptions(input_size=3))
    assert r.route == ExportRoute.scripted
    assert any(route == "lifted" for route, _ in r.attempts)
    assert Counter(n.op_type for n in onnx.load(str(r.path)).graph.node)["Loop"] == 1


class SplitOrderCell(torch.nn.Module):
    """x2h + h2h Linears, gates in any order, the (x, (h, c)) convention; bias on x2h only when asked."""

    def __init__(self, n, h, order, h_bias=True):
        super().__init__()
        self.order = order
        self.x2h = torch.nn.Linear(n, 4 * h)
        self.h2h = torch.nn.Linear(h, 4 * h, bias=h_bias)

    def forward(self, x, hidden):
        h, c = hidden
        pre = dict(zip(self.order, (self.x2h(x) + self.h2h(h)).chunk(4, 1)))
        c = torch.sigmoid(pre["f"]) * c + torch.sigmoid(pre["i"]) * torch.tanh(pre["g"])
        return torch.sigmoid(pre["o"]) * torch.tanh(c), c


@pytest.mark.parametrize("order,h_bias", [(o, b) for o in ORDERS[::7] for b in (True, False)])
def test_split_linear_cells_lift_in_any_gate_order(order, h_bias):
    torch.manual_seed(4)
    model = Unrolled(SplitOrderCell(3, 5, order, h_bias), 5).eval()
    r = lift_cells(model, 3)
    assert r.cell.gate_order == order and r.cell.linears == "split" and r.max_error < 1e-5
    x = torch.randn(2, 9, 3)
    with torch.no_grad():
        torch.testing.assert_close(r.model(x), model(x), atol=1e-5, rtol=1e-5)


def test_cell_nested_below_the_top_level_is_not_lifted_and_says_why():
    torch.manual_seed(5)

    class Outer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = torch.nn.Module()
            self.inner.cell = FourLinearCell(3, 4, "ifgo", "xh")
            self.fc = torch.nn.Linear(4, 1)

        def forward(self, x):
            h = c = torch.zeros(x.shape[0], 4)
            for t in range(x.shape[1]):
                h, (h, c) = self.inner.cell(x[:, t], (h, c))
            return self.fc(h)

    with pytest.raises(LiftError, match="inner.cell: only cells owned by the top-level model"):
        lift_cells(Outer().eval(), 3)
