"""lstm: LSTM, GRU and RNN layers and trained models, on the lstm engine (Rust)."""

from ._lstm import LstmError, __version__
from .layers import GRU, LSTM, RNN

__all__ = ["LstmError", "__version__", "LSTM", "GRU", "RNN"]
