"""Recurrent models written the way users write them, for the input contract (token ids, a hidden argument,
seq-first layouts, packed sequences, extra forward arguments, a fixed shape). Small sizes; our own code.

Each entry: ``build()`` -> an eval-mode nn.Module (seeded), and the ``convert`` options it needs (most need none:
their inputs are inferred). Used by tests/test_wild_inputs.py and benchmarks/model_coverage.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class WordLanguageModel(nn.Module):
    """Embedding -> 2-layer seq-first LSTM -> decoder tied to the embedding; forward(input, hidden)."""

    def __init__(self, vocab: int = 40, dim: int = 16, layers: int = 2):
        super().__init__()
        self.encoder = nn.Embedding(vocab, dim)
        self.rnn = nn.LSTM(dim, dim, layers, dropout=0.1)
        self.drop = nn.Dropout(0.1)
        self.decoder = nn.Linear(dim, vocab)
        self.decoder.weight = self.encoder.weight  # tied

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        return self.decoder(self.drop(output)), hidden

    def init_hidden(self, batch: int):
        w = next(self.parameters())
        return (w.new_zeros(self.rnn.num_layers, batch, self.rnn.hidden_size),
                w.new_zeros(self.rnn.num_layers, batch, self.rnn.hidden_size))


class CRNNHead(nn.Module):
    """Conv1d front end over [batch, channels, time], then a seq-first BiLSTM: log-probs [T, batch, classes]."""

    def __init__(self, channels: int = 6, classes: int = 7):
        super().__init__()
        self.cnn = nn.Sequential(nn.Conv1d(channels, 12, 3, padding=1), nn.BatchNorm1d(12), nn.ReLU(),
                                 nn.Conv1d(12, 16, 3, padding=1), nn.ReLU())
        self.rnn = nn.LSTM(16, 8, bidirectional=True)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        feats = self.cnn(x).permute(2, 0, 1)  # [T, b, C]
        out, _ = self.rnn(feats)
        return self.fc(out).log_softmax(2)


class BiLSTMTagger(nn.Module):
    """Token ids [batch, seq] -> embedding -> BiLSTM -> tag scores [batch, seq, tags]."""

    def __init__(self, vocab: int = 30, dim: int = 8, hidden: int = 8, tags: int = 5):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.lstm = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.hidden2tag = nn.Linear(2 * hidden, tags)

    def forward(self, sentence):
        out, _ = self.lstm(self.embed(sentence))
        return self.hidden2tag(out)


class AttnDecoderGRU(nn.Module):
    """One decoding step per call: forward(token [batch], hidden [1, batch, H], encoder_outputs [batch, src, H])
    -> (log-probs [batch, vocab], hidden, attention weights [batch, src])."""

    def __init__(self, vocab: int = 20, hidden: int = 16):
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        self.attn_q = nn.Linear(hidden, hidden)
        self.combine = nn.Linear(2 * hidden, hidden)
        self.gru = nn.GRU(hidden, hidden)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, token, hidden, encoder_outputs):
        emb = self.embedding(token)                                   # [b, H]
        query = self.attn_q(hidden[-1]).unsqueeze(2)                  # [b, H, 1]
        weights = torch.softmax(torch.bmm(encoder_outputs, query).squeeze(2), dim=1)  # [b, src]
        context = torch.bmm(weights.unsqueeze(1), encoder_outputs).squeeze(1)       # [b, H]
        x = torch.relu(self.combine(torch.cat([emb, context], 1))).unsqueeze(0)   # [1, b, H]
        output, hidden = self.gru(x, hidden)
        return torch.log_softmax(self.out(output[0]), dim=1), hidden, weights


class PackedClassifier(nn.Module):
    """Padded sensor windows + their lengths -> pack_padded_sequence -> GRU -> class scores from the last state."""

    def __init__(self, features: int = 4, hidden: int = 8, classes: int = 3):
        super().__init__()
        self.gru = nn.GRU(features, hidden, num_layers=2, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)
        return self.fc(h[-1])


class PackedTagger(nn.Module):
    """Packed LSTM whose per-step output is unpacked again: [batch, seq, tags] (pads to the longest length)."""

    def __init__(self, features: int = 4, hidden: int = 8, tags: int = 3):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, tags)

    def forward(self, x, lengths):
        out, _ = self.lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        padded, _ = pad_packed_sequence(out, batch_first=True)
        return self.fc(padded)


class SeqFirstAutoencoder(nn.Module):
    """Seq-first LSTM autoencoder: [T, b, F] -> encoder -> last hidden repeated over T -> decoder -> [T, b, F]."""

    def __init__(self, features: int = 5, hidden: int = 8):
        super().__init__()
        self.encoder = nn.LSTM(features, hidden)
        self.decoder = nn.LSTM(hidden, hidden)
        self.out = nn.Linear(hidden, features)

    def forward(self, x):
        _, (h, _) = self.encoder(x)
        rep = h[-1].unsqueeze(0).expand(x.shape[0], -1, -1)
        dec, _ = self.decoder(rep)
        return self.out(dec)


class FixedShapeAutoencoder(nn.Module):
    """Takes exactly batch 1 x seq 100 x 3 features: the bottleneck flattens the whole window."""

    def __init__(self, seq: int = 100, features: int = 3, hidden: int = 4, code: int = 8):
        super().__init__()
        self.seq, self.features = seq, features
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.enc = nn.Linear(seq * hidden, code)
        self.dec = nn.Linear(code, seq * features)

    def forward(self, x):
        out, _ = self.lstm(x)
        code = torch.tanh(self.enc(out.reshape(1, -1)))
        return self.dec(code).reshape(1, self.seq, self.features)


@dataclass(frozen=True)
class WildModel:
    name: str
    build: Callable[[], nn.Module]
    convert: dict[str, Any] = field(default_factory=dict)   # ExportOptions fields it needs
    cli: tuple[str, ...] = ()                               # the same as convert's command-line options
    what: str = ""


def _seeded(cls, **kw) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        torch.manual_seed(0)
        return cls(**kw).eval()

    build.__name__ = f"build_{cls.__name__}"
    return build


def _dec_inputs():
    from edgelstm.models.inputs import parse_input

    return (parse_input("token:int64[batch]"), parse_input("encoder_outputs:float32[batch,src,16]"))


WILD_INPUT_MODELS: dict[str, WildModel] = {m.name: m for m in (
    WildModel("word_lm", _seeded(WordLanguageModel), what="embedding + seq-first LSTM, hidden argument, tied decoder"),
    WildModel("crnn_head", _seeded(CRNNHead), what="Conv1d front end + seq-first BiLSTM, [T, b, C] out"),
    WildModel("bilstm_tagger", _seeded(BiLSTMTagger), what="BiLSTM tagger over token ids"),
    WildModel("attn_decoder", _seeded(AttnDecoderGRU), {"inputs": "dec"},
              ("--input", "token:int64[batch]", "--input", "encoder_outputs:float32[batch,src,16]"),
              what="GRU decoder with attention, one step per call, encoder outputs as an input"),
    WildModel("packed_classifier", _seeded(PackedClassifier), what="pack_padded_sequence(x, lengths) GRU classifier"),
    WildModel("packed_tagger", _seeded(PackedTagger), what="packed BiLSTM, output unpacked again"),
    WildModel("seqfirst_autoencoder", _seeded(SeqFirstAutoencoder), what="seq-first LSTM autoencoder"),
    WildModel("fixed_autoencoder", _seeded(FixedShapeAutoencoder), {"static": True, "batch": 1, "seq_len": 100},
              ("--static", "--batch", "1", "--seq-len", "100"), what="fixed-shape autoencoder (batch 1 x seq 100)"),
)}


def export_options(model: WildModel, **extra: Any):
    """The ExportOptions a wild model converts with."""
    from edgelstm.converters.export.torch_to_onnx import ExportOptions

    kw = dict(model.convert)
    if kw.get("inputs") == "dec":
        kw["inputs"] = _dec_inputs()
    return ExportOptions(**{**kw, **extra})


# factories for `--factory tests/wild_models_inputs.py:NAME` (a state_dict plus the code that builds the model)
def word_lm() -> nn.Module:
    return WordLanguageModel()


def fixed_autoencoder() -> nn.Module:
    return FixedShapeAutoencoder()


def bilstm_tagger() -> nn.Module:
    return BiLSTMTagger()
