"""The zoo's nn.Module classes (imports torch; load lazily through edgelstm.models.zoo)."""

import torch
from torch import nn


class LSTMRegressor(nn.Module):
    """LSTM over the sequence, a linear head on the last step (the classic sine-wave forecaster)."""

    def __init__(self, input_size=1, hidden_size=64, num_layers=1, output_size=1):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])

class GRURegressor(nn.Module):
    def __init__(self, input_size=4, hidden_size=64, num_layers=2, output_size=1):
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])

class BiLSTMAttentionClassifier(nn.Module):
    """Bidirectional LSTM, additive (Bahdanau-style) attention pooling over time, a class head."""

    def __init__(self, input_size=20, hidden_size=128, num_layers=1, num_classes=2, attention_size=64):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=True)
        self.attn_proj = nn.Linear(2 * hidden_size, attention_size)
        self.attn_score = nn.Linear(attention_size, 1, bias=False)
        self.head = nn.Linear(2 * hidden_size, num_classes)

    def forward(self, x):
        out, _ = self.rnn(x)                                   # [b, T, 2H]
        scores = self.attn_score(torch.tanh(self.attn_proj(out)))  # [b, T, 1]
        weights = torch.softmax(scores, dim=1)
        pooled = (weights * out).sum(dim=1)                    # [b, 2H]
        return self.head(pooled)

class HandLSTMCell(nn.Module):
    """An LSTM cell the way tutorials write it: one Linear on cat([x, h]), gates chunked f, i, o, g."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(input_size + hidden_size, 4 * hidden_size)

    def forward(self, x, hc):
        h, c = hc
        gates = self.linear(torch.cat([x, h], dim=1))
        f, i, o, g = gates.chunk(4, dim=1)
        f = torch.sigmoid(f)
        i = torch.sigmoid(i)
        o = torch.sigmoid(o)
        g = torch.tanh(g)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, c

class HandLSTMRegressor(nn.Module):
    """The hand-written cell unrolled over time in Python, a linear head on the last hidden state."""

    def __init__(self, input_size=1, hidden_size=32, output_size=1):
        super().__init__()
        self.hidden_size = hidden_size
        self.cell = HandLSTMCell(input_size, hidden_size)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], self.hidden_size)
        c = x.new_zeros(x.shape[0], self.hidden_size)
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
        return self.head(h)
