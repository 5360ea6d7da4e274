"""Recurrent models written the way public examples and libraries write them, one per failure class seen on unseen
models (issue 20): folded outputs with a hidden argument, state arguments shaped unlike the RNN's, keyword-only and
multi-input signatures, nn.LSTMCell/nn.GRUCell loops, hand-written cells (a constant forget bias, the textbook GRU,
raw nn.Parameters), float64 models, relative lengths. Small sizes; our own code in those styles.

``UNSEEN_MODELS``: name -> WildModel (tests/wild_models_inputs.py) with the options a user passes (most need none)."""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from wild_models_inputs import WildModel, _seeded


# ---------------------------------------------------------------- 1. a hidden argument and an output folding time

class FoldedWordLM(nn.Module):
    """The word-language-model example: forward(input, hidden) -> (log_softmax(decoded.view(-1, ntoken)), hidden),
    the output [seq*batch, vocab] folds time and batch."""

    def __init__(self, ntoken: int = 30, ninp: int = 8, nhid: int = 8, nlayers: int = 2):
        super().__init__()
        self.ntoken = ntoken
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=0.2)
        self.decoder = nn.Linear(nhid, ntoken)

    def forward(self, input, hidden):
        emb = self.encoder(input)
        output, hidden = self.rnn(emb, hidden)
        decoded = self.decoder(output).view(-1, self.ntoken)
        return torch.log_softmax(decoded, dim=1), hidden


# ------------------------------------------------------------------ 2. state arguments not shaped like the RNN's

class OneTokenEncoder(nn.Module):
    """The seq2seq tutorial's encoder: one token per call, batch 1, hidden [1, 1, H]."""

    def __init__(self, vocab: int = 20, hidden: int = 8):
        super().__init__()
        self.hidden_size = hidden
        self.embedding = nn.Embedding(vocab, hidden)
        self.gru = nn.GRU(hidden, hidden)

    def forward(self, input, hidden):
        embedded = self.embedding(input).view(1, 1, -1)
        output, hidden = self.gru(embedded, hidden)
        return output, hidden

    def initHidden(self):
        return torch.zeros(1, 1, self.hidden_size)


class BatchMajorStateDecoder(nn.Module):
    """A decoder step whose state is [batch, H]: it unsqueezes for the GRU and squeezes the new state back."""

    def __init__(self, vocab: int = 16, hidden: int = 8):
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, token, h):
        x = self.emb(token).unsqueeze(1)              # [b, 1, H]
        out, h_new = self.gru(x, h.unsqueeze(0))
        return self.out(out[:, 0]), h_new.squeeze(0)


class PerLayerStateLSTM(nn.Module):
    """Single-layer nn.LSTMs in a ModuleList, each with its own (h, c): forward(x, states) with a list of pairs."""

    def __init__(self, n_features: int = 3, hidden: int = 6, layers: int = 2):
        super().__init__()
        self.layers = nn.ModuleList([nn.LSTM(n_features if k == 0 else hidden, hidden, batch_first=True)
                                     for k in range(layers)])
        self.fc = nn.Linear(hidden, 2)

    def forward(self, x, states):
        new_states = []
        for lstm, (h, c) in zip(self.layers, states):
            x, (h, c) = lstm(x, (h, c))
            new_states.append((h, c))
        return self.fc(x), new_states


class OptionalStateCellLSTM(nn.Module):
    """An nn.LSTMCell loop with forward(x, hx=None): no nn.LSTM to size the state from."""

    def __init__(self, n_features: int = 3, hidden: int = 7):
        super().__init__()
        self.hidden = hidden
        self.cell = nn.LSTMCell(n_features, hidden)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x, hx: Optional[Tuple[Tensor, Tensor]] = None):
        if hx is None:
            hx = (x.new_zeros(x.size(0), self.hidden), x.new_zeros(x.size(0), self.hidden))
        h, c = hx
        outs: List[Tensor] = []
        for t in range(x.size(1)):
            h, c = self.cell(x[:, t], (h, c))
            outs.append(self.fc(h))
        return torch.stack(outs, 1), (h, c)


# ------------------------------------------------------------------------- 3. keyword-only and multi-input forwards

class KeywordLengthsGRU(nn.Module):
    """forward(x, *, lengths): the lengths are keyword-only."""

    def __init__(self, n_features: int = 4, hidden: int = 6):
        super().__init__()
        self.gru = nn.GRU(n_features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 2)

    def forward(self, x, *, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)
        return self.fc(h[-1])


class ContextLoopLSTM(nn.Module):
    """Two typed inputs and a Python loop over time (a gate mixing a context vector into every step), then an
    LSTM: tracing unrolls the loop, so only torch.jit.script exports it, which needs a typed wrapper."""

    def __init__(self, n_features: int = 3, context: int = 4, hidden: int = 6):
        super().__init__()
        self.gate = nn.Linear(context, n_features)
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        steps: List[Tensor] = []
        g = torch.sigmoid(self.gate(context))
        for t in range(x.size(1)):
            steps.append(x[:, t] * g)
            g = 0.9 * g + 0.1 * torch.sigmoid(x[:, t])
        out, _ = self.lstm(torch.stack(steps, 1))
        return self.fc(out[:, -1])


# ------------------------------------------------------------------------------------------- 4. cell loops

class TimeSequencePredictor(nn.Module):
    """The time-sequence-prediction example: two stacked nn.LSTMCell over input.split(1, dim=1), a Linear on every
    step, an optional number of `future` steps fed back, trained in float64 (.double())."""

    def __init__(self, hidden: int = 12):
        super().__init__()
        self.hidden = hidden
        self.lstm1 = nn.LSTMCell(1, hidden)
        self.lstm2 = nn.LSTMCell(hidden, hidden)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, input, future=0):
        outputs = []
        h_t = torch.zeros(input.size(0), self.hidden, dtype=input.dtype)
        c_t = torch.zeros(input.size(0), self.hidden, dtype=input.dtype)
        h_t2 = torch.zeros(input.size(0), self.hidden, dtype=input.dtype)
        c_t2 = torch.zeros(input.size(0), self.hidden, dtype=input.dtype)
        output = None
        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for _ in range(future):
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        return torch.cat(outputs, dim=1)


def _double_predictor() -> nn.Module:
    torch.manual_seed(0)
    return TimeSequencePredictor().double().eval()


class SeqFirstGRUCellClassifier(nn.Module):
    """An nn.GRUCell over a seq-first input (`for x_t in x`), a head on the last state."""

    def __init__(self, n_features: int = 5, hidden: int = 6, classes: int = 3):
        super().__init__()
        self.hidden = hidden
        self.cell = nn.GRUCell(n_features, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        h = x.new_zeros(x.size(1), self.hidden)
        for x_t in x:
            h = self.cell(x_t, h)
        return self.head(h)


class ForgetBiasCell(nn.Module):
    """A hand-written LSTM cell with a constant forget bias (sigmoid(f + 1.0)), as several papers' code does."""

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 1.0):
        super().__init__()
        self.linear = nn.Linear(input_size + hidden_size, 4 * hidden_size)
        self.forget_bias = forget_bias

    def forward(self, x, state):
        h, c = state
        i, j, f, o = self.linear(torch.cat([x, h], 1)).chunk(4, 1)
        c = torch.sigmoid(f + self.forget_bias) * c + torch.sigmoid(i) * torch.tanh(j)
        return torch.sigmoid(o) * torch.tanh(c), c


class LayerMajorStack(nn.Module):
    """Two hand-written cells unrolled layer-major: all steps of layer 1, then all steps of layer 2."""

    def __init__(self, n_features: int = 3, hidden: int = 6):
        super().__init__()
        self.hidden = hidden
        self.cells = nn.ModuleList([ForgetBiasCell(n_features, hidden), ForgetBiasCell(hidden, hidden)])
        self.fc = nn.Linear(hidden, 2)

    def forward(self, x):
        inp = x
        for cell in self.cells:
            h = x.new_zeros(x.size(0), self.hidden)
            c = x.new_zeros(x.size(0), self.hidden)
            outs = []
            for t in range(inp.size(1)):
                h, c = cell(inp[:, t], (h, c))
                outs.append(h)
            inp = torch.stack(outs, 1)
        return self.fc(inp)


class TextbookGRUCell(nn.Module):
    """The GRU of the textbook equations: the reset gate scales h *before* the candidate's matmul."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.W_z = nn.Linear(input_size + hidden_size, hidden_size)
        self.W_r = nn.Linear(input_size + hidden_size, hidden_size)
        self.W_h = nn.Linear(input_size + hidden_size, hidden_size)

    def forward(self, x, h):
        xh = torch.cat([x, h], 1)
        z = torch.sigmoid(self.W_z(xh))
        r = torch.sigmoid(self.W_r(xh))
        h_tilde = torch.tanh(self.W_h(torch.cat([x, r * h], 1)))
        return (1 - z) * h + z * h_tilde


class TextbookGRU(nn.Module):
    def __init__(self, n_features: int = 4, hidden: int = 6):
        super().__init__()
        self.hidden = hidden
        self.cell = TextbookGRUCell(n_features, hidden)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x):
        h = x.new_zeros(x.size(0), self.hidden)
        for t in range(x.size(1)):
            h = self.cell(x[:, t], h)
        return self.fc(h)


class ScratchLSTM(nn.Module):
    """d2l-style LSTM from raw nn.Parameters (W_xi [in, h], W_hi, b_i, ...), a seq-first loop, and a raw-parameter
    head W_hq [h, out]: no Linear tells the input size, and the head's must not be taken for it."""

    def __init__(self, num_inputs: int = 5, num_hiddens: int = 7, num_outputs: int = 3, sigma: float = 0.3):
        super().__init__()
        self.num_hiddens = num_hiddens

        def w(*shape):
            return nn.Parameter(torch.randn(*shape) * sigma)

        def triple():
            return w(num_inputs, num_hiddens), w(num_hiddens, num_hiddens), nn.Parameter(torch.randn(num_hiddens) * 0.1)

        self.W_xi, self.W_hi, self.b_i = triple()
        self.W_xf, self.W_hf, self.b_f = triple()
        self.W_xo, self.W_ho, self.b_o = triple()
        self.W_xc, self.W_hc, self.b_c = triple()
        self.W_hq = w(num_hiddens, num_outputs)
        self.b_q = nn.Parameter(torch.zeros(num_outputs))

    def forward(self, inputs):
        H = inputs.new_zeros(inputs.shape[1], self.num_hiddens)
        C = inputs.new_zeros(inputs.shape[1], self.num_hiddens)
        outputs = []
        for X in inputs:
            I = torch.sigmoid(X @ self.W_xi + H @ self.W_hi + self.b_i)
            F = torch.sigmoid(X @ self.W_xf + H @ self.W_hf + self.b_f)
            O = torch.sigmoid(X @ self.W_xo + H @ self.W_ho + self.b_o)
            C_tilde = torch.tanh(X @ self.W_xc + H @ self.W_hc + self.b_c)
            C = F * C + I * C_tilde
            H = O * torch.tanh(C)
            outputs.append(H @ self.W_hq + self.b_q)
        return torch.stack(outputs, 0)


# -------------------------------------------------------------------------------------- 5. relative lengths

class RelativeLengthsEncoder(nn.Module):
    """SpeechBrain-style relative lengths: forward(x, wav_lens) with wav_lens in (0, 1], the longest 1.0."""

    def __init__(self, n_features: int = 4, hidden: int = 6):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 2)

    def forward(self, x, wav_lens):
        lengths = torch.round(wav_lens * x.shape[1]).long().clamp(min=1).cpu()
        _, (h, _) = self.lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        return self.fc(h[-1])


def _inputs(*texts):
    from edgelstm.models.inputs import parse_input

    return tuple(parse_input(t) for t in texts)


UNSEEN_MODELS: dict[str, WildModel] = {m.name: m for m in (
    WildModel("folded_word_lm", _seeded(FoldedWordLM), what="hidden argument; output [seq*batch, vocab] folds time"),
    WildModel("one_token_encoder", _seeded(OneTokenEncoder), what="one token per call, batch 1, hidden [1, 1, H]"),
    WildModel("batch_major_state", _seeded(BatchMajorStateDecoder), what="decoder step with state [batch, H]"),
    WildModel("per_layer_state", _seeded(PerLayerStateLSTM), what="list of per-layer (h, c) state argument"),
    WildModel("optional_state_cell", _seeded(OptionalStateCellLSTM), what="LSTMCell loop, forward(x, hx=None)"),
    WildModel("keyword_lengths", _seeded(KeywordLengthsGRU), what="forward(x, *, lengths) keyword-only"),
    WildModel("context_loop", _seeded(ContextLoopLSTM), {"inputs": ("x:float32[batch,seq,3]",
                                                                      "context:float32[batch,4]")},
              ("--input", "x:float32[batch,seq,3]", "--input", "context:float32[batch,4]"),
              what="two typed inputs and a Python loop (scripted route)"),
    WildModel("time_sequence_prediction", _double_predictor, what="stacked LSTMCell loop, future steps, float64"),
    WildModel("gru_cell_seq_first", _seeded(SeqFirstGRUCellClassifier), what="GRUCell loop over a seq-first input"),
    WildModel("layer_major_forget_bias", _seeded(LayerMajorStack),
              what="hand-written cells, layer-major, sigmoid(f + 1.0)"),
    WildModel("textbook_gru", _seeded(TextbookGRU), what="textbook GRU cell (reset before the matmul)"),
    WildModel("scratch_lstm", _seeded(ScratchLSTM), what="d2l-style raw-Parameter LSTM, seq-first"),
    WildModel("relative_lengths", _seeded(RelativeLengthsEncoder),
              {"inputs": ("x:float32[batch,seq,4]", "wav_lens:float32[batch]")},
              ("--input", "x:float32[batch,seq,4]", "--input", "wav_lens:float32[batch]"),
              what="relative (float) lengths in (0, 1]"),
)}


def unseen_export_options(model: WildModel, **extra):
    from edgelstm.converters.export.torch_to_onnx import ExportOptions

    kw = dict(model.convert)
    if "inputs" in kw:
        kw["inputs"] = _inputs(*kw["inputs"])
    return ExportOptions(**{**kw, **extra})
