"""lstm: LSTM, GRU and RNN layers and the text, forecast and classify jobs, on the lstm engine
(Rust, on the CPU).

- ``lstm.LSTM``, ``lstm.GRU``, ``lstm.RNN``: layers shaped like ``torch.nn.LSTM``, on numpy
  arrays, with ``backward`` filling PyTorch-named gradients (``lstm.torch`` wraps them for
  PyTorch models).
- ``lstm.TextModel``, ``lstm.Forecaster``, ``lstm.Classifier``: ``fit``, ``generate`` /
  ``predict``, ``evaluate``, ``save``; ``lstm.load(dir)`` reads a model directory written by
  the ``lstm`` binary or ``save``.

Errors: bad shapes, dtypes, values and settings raise ``ValueError``; missing files
``FileNotFoundError``; data that cannot be used ``lstm.DataError`` (both a ``ValueError`` and an
``lstm.LstmError``); anything else ``lstm.LstmError``.
"""

from ._lstm import LstmError, __version__
from .layers import GRU, LSTM, RNN
from .jobs import Classifier, DataError, Forecaster, History, TextModel, load, settings

__all__ = [
    "LstmError",
    "DataError",
    "__version__",
    "LSTM",
    "GRU",
    "RNN",
    "TextModel",
    "Forecaster",
    "Classifier",
    "History",
    "load",
    "settings",
]
