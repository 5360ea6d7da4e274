"""Recurrent models written the way users write them (not the zoo): small, built in the tests, our own code.

Each class is one *form* a user's model takes; tests/test_wild_export.py converts each one (or checks the
refusal). Sizes are tiny so that every export takes well under a second."""

from __future__ import annotations

import torch
from torch import nn


class StepAttentionForecaster(nn.Module):
    """A spatial attention applied step by step in a Python loop, then an nn.LSTM. Traced at one length the loop
    is unrolled: the attention is applied to the traced steps only. `out_scale` makes the output's spread small
    (the regime where an absolute tolerance is fooled)."""

    def __init__(self, n_features=4, hidden=8, out_scale=1e-3):
        super().__init__()
        self.score = nn.Linear(n_features, n_features)
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)
        with torch.no_grad():
            self.head.weight.mul_(out_scale)
            self.head.bias.fill_(0.5)

    def forward(self, x):
        attended = torch.zeros_like(x)
        for t in range(x.shape[1]):
            step = x[:, t, :]
            attended[:, t, :] = step * torch.softmax(self.score(step), dim=-1)
        out, _ = self.lstm(attended)
        return self.head(out[:, -1])


class NormLinearFrontEnd(nn.Module):
    """BatchNorm1d(5) -> Linear(5, 32) -> LSTM(32): the input size is the BatchNorm's, not the LSTM's."""

    def __init__(self, n_features=5, width=32, hidden=8):
        super().__init__()
        self.norm = nn.BatchNorm1d(n_features)
        self.embed = nn.Linear(n_features, width)
        self.lstm = nn.LSTM(width, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 2)
        with torch.no_grad():  # a trained-looking BatchNorm, not the identity
            self.norm.running_mean.uniform_(-1, 1)
            self.norm.running_var.uniform_(0.5, 2)

    def forward(self, x):
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        out, _ = self.lstm(torch.relu(self.embed(x)))
        return self.out(out[:, -1])


class ConvFrontEnd(nn.Module):
    """A Conv1d feature extractor over [batch, seq, channels] before a GRU."""

    def __init__(self, channels=3, width=6, hidden=8):
        super().__init__()
        self.conv = nn.Conv1d(channels, width, kernel_size=3, padding=1)
        self.gru = nn.GRU(width, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        feats = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        out, _ = self.gru(feats)
        return self.out(out)


class ProjectedLSTM(nn.Module):
    """nn.LSTM with proj_size (an LSTMP): hidden state projected to a smaller size every step."""

    def __init__(self, n_features=3, hidden=8, proj=4, layers=2, bidirectional=False):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, num_layers=layers, proj_size=proj, batch_first=True,
                            bidirectional=bidirectional)
        self.out = nn.Linear(proj * (2 if bidirectional else 1), 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.out(out)


class SplitLinearCell(nn.Module):
    """The tutorial cell: separate input-to-hidden and hidden-to-hidden Linears, gates chunked i, f, g, o."""

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        self.hidden_size = hidden_size
        self.x2h = nn.Linear(input_size, 4 * hidden_size, bias=bias)
        self.h2h = nn.Linear(hidden_size, 4 * hidden_size, bias=bias)

    def forward(self, x, hidden):
        hx, cx = hidden
        gates = self.x2h(x) + self.h2h(hx)
        ingate, forgetgate, cellgate, outgate = gates.chunk(4, 1)
        cy = torch.sigmoid(forgetgate) * cx + torch.sigmoid(ingate) * torch.tanh(cellgate)
        hy = torch.sigmoid(outgate) * torch.tanh(cy)
        return hy, cy


class StackedCellModel(nn.Module):
    """Split-Linear cells stacked in a ModuleList, unrolled over time in Python, a head on the last step."""

    def __init__(self, n_features=3, hidden=6, layers=2, n_out=2):
        super().__init__()
        self.hidden = hidden
        self.cells = nn.ModuleList(
            [SplitLinearCell(n_features if k == 0 else hidden, hidden) for k in range(layers)])
        self.fc = nn.Linear(hidden, n_out)

    def forward(self, x):
        states = [(x.new_zeros(x.size(0), self.hidden), x.new_zeros(x.size(0), self.hidden)) for _ in self.cells]
        for t in range(x.size(1)):
            inp = x[:, t, :]
            for k, cell in enumerate(self.cells):
                states[k] = cell(inp, states[k])
                inp = states[k][0]
        return self.fc(inp)


class LayerNormSplitCell(SplitLinearCell):
    """A split-Linear cell that is not a plain LSTM (a LayerNorm on the cell state): cannot lift."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.ln = nn.LayerNorm(hidden_size)

    def forward(self, x, hidden):
        hx, cx = hidden
        i, f, g, o = (self.x2h(x) + self.h2h(hx)).chunk(4, 1)
        cy = torch.sigmoid(f) * cx + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(self.ln(cy)), cy


class LayerNormCellModel(StackedCellModel):
    def __init__(self, n_features=3, hidden=6):
        super().__init__(n_features, hidden, layers=1)
        self.cells = nn.ModuleList([LayerNormSplitCell(n_features, hidden)])


class HeldStateLSTM(nn.Module):
    """Keeps its (h, c) on the module between calls (a streaming model written for torch)."""

    def __init__(self, n_features=3, hidden=8):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)
        self.hidden = None

    def forward(self, x):
        out, hidden = self.lstm(x, self.hidden)
        self.hidden = (hidden[0].detach(), hidden[1].detach())
        return self.fc(out[:, -1])


class RunningMeanModel(nn.Module):
    """Keeps a running mean of its outputs on the module: state that is not a recurrent layer's."""

    def __init__(self, n_features=3, hidden=8):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)
        self.register_buffer("running", torch.zeros(1))

    def forward(self, x):
        out, _ = self.lstm(x)
        y = self.fc(out[:, -1])
        self.running = 0.9 * self.running + 0.1 * y.mean().detach().reshape(1)
        return y - self.running


class RandomInitLSTM(nn.Module):
    """Draws a random initial state on every call."""

    def __init__(self, n_features=3, hidden=8):
        super().__init__()
        self.hidden = hidden
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x):
        h0 = torch.rand(1, x.size(0), self.hidden)
        c0 = torch.rand(1, x.size(0), self.hidden)
        out, _ = self.lstm(x, (h0, c0))
        return self.fc(out[:, -1])


class NoisyOutputLSTM(RandomInitLSTM):
    """Random beyond the initial state: noise added to the output on every call."""

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1]) + 0.01 * torch.randn(x.size(0), 1)


class SqueezedHead(nn.Module):
    """`fc(h).squeeze()`: [batch] at batch > 1, 0-d at batch 1."""

    def __init__(self, n_features=3, hidden=8):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1]).squeeze()


class ReshapedHead(nn.Module):
    """Per-step outputs reshaped into [batch, seq, 3, 2]: constant trailing dims behind a Reshape."""

    def __init__(self, n_features=3, hidden=8):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 6)

    def forward(self, x):
        out, _ = self.lstm(x)
        y = self.fc(out)
        return y.reshape(y.shape[0], y.shape[1], 3, -1)


class TokenTagger(nn.Module):
    """Token ids through an nn.Embedding, a BiLSTM, a tag head."""

    def __init__(self, vocab=20, dim=6, hidden=5, tags=3):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.tags = nn.Linear(2 * hidden, tags)

    def forward(self, tokens):
        out, _ = self.lstm(self.emb(tokens))
        return self.tags(out)


class MaskedLSTM(nn.Module):
    """forward(x, mask): a second argument that is neither a recurrent state nor lengths."""

    def __init__(self, n_features=3, hidden=8):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x, mask):
        out, _ = self.lstm(x * mask)
        return self.fc(out[:, -1])


class UnsupportedOpLSTM(nn.Module):
    """An op neither ONNX exporter writes (the inverse error function)."""

    def __init__(self, n_features=3, hidden=4):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)

    def forward(self, x):
        out, _ = self.lstm(x)
        return torch.erfinv(0.5 * out[:, -1])
