"""lstm: LSTM, GRU and RNN layers and trained models, on the lstm engine (Rust)."""

from ._lstm import LstmError, __version__

__all__ = ["LstmError", "__version__"]
