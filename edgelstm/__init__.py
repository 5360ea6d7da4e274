"""edgelstm: recurrent models from PyTorch to the edge, verified and measured."""

__version__ = "0.1.0"
