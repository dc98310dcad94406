"""Type stubs of the native module ``lstm._lstm`` (PyO3). Use the classes of ``lstm``
(``lstm.LSTM``, ``lstm.TextModel``, ...), which wrap these."""

from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

__version__: str

class LstmError(Exception):
    """An error of the lstm library that is not a bad argument or a missing file."""

# ---------------------------------------------------------------- layers

class Tape:
    """One forward pass kept for its backward pass (several may wait at once)."""

    def __init__(self) -> None: ...
    def nbytes(self) -> int: ...

class Recurrent:
    """A recurrent stack (LSTM, GRU, RNN) with PyTorch's parameter names and layout."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        proj_size: int,
        seed: int,
        variant: str = "standard",
    ) -> None: ...
    def config(self) -> Dict[str, Any]: ...
    def param_shapes(self) -> List[Tuple[str, List[int]]]: ...
    def tensors(self, grads: bool = False) -> Dict[str, npt.NDArray[np.float32]]: ...
    def set_tensors(self, params: Dict[str, Any], strict: bool = True) -> None: ...
    def zero_grad(self) -> None: ...
    def forward(
        self,
        x: Any,
        h0: Optional[Any] = None,
        c0: Optional[Any] = None,
        lengths: Optional[Sequence[int]] = None,
        train: bool = False,
        tape: Optional[Tape] = None,
        params: Optional[Dict[str, Any]] = None,
        seed: Optional[int] = None,
    ) -> Tuple[
        npt.NDArray[np.float32], npt.NDArray[np.float32], Optional[npt.NDArray[np.float32]]
    ]: ...
    def backward(
        self,
        d_output: Any,
        d_h_n: Optional[Any] = None,
        d_c_n: Optional[Any] = None,
        tape: Optional[Tape] = None,
        params: Optional[Dict[str, Any]] = None,
        fresh: bool = False,
    ) -> Tuple[
        npt.NDArray[np.float32],
        npt.NDArray[np.float32],
        Optional[npt.NDArray[np.float32]],
        Optional[Dict[str, npt.NDArray[np.float32]]],
    ]: ...
    def last_compute_seconds(self) -> Tuple[float, float]: ...
    def time_forward_backward(self, x: Any, d_output: Any, reps: int) -> List[float]: ...

# ---------------------------------------------------------------- jobs

def default_settings(task: str) -> str:
    """The binary's default settings of a job, as JSON."""

def check_settings(task: str, overrides: str) -> str:
    """The defaults with the JSON object ``overrides`` laid over them, checked; as JSON. A size
    the job chooses by rule given as ``null`` takes its default here (left to the job)."""

def settings_read_by(task: str) -> List[str]:
    """The names of the settings the job reads."""

class TrainResult:
    model: "Model"
    train_loss: List[Tuple[int, float]]
    val_loss: List[Tuple[int, float]]
    notes: List[str]
    stopped: str
    ensemble_val: Optional[Tuple[float, float]]

class TextStream(Iterator[str]):
    def __iter__(self) -> "TextStream": ...
    def __next__(self) -> str: ...

class Model:
    """A trained model of one of the three jobs (a loaded model directory)."""

    @staticmethod
    def load(dir: str) -> "Model": ...
    @staticmethod
    def train(
        task: str,
        settings_json: str,
        out: str,
        callback: Optional[Callable[[int, float, Optional[float], float, float], Any]] = None,
        label_values: Optional[str] = None,
    ) -> TrainResult: ...
    def save(self, dir: str, label_values: Optional[str] = None) -> None: ...
    @property
    def task(self) -> str: ...
    @property
    def settings_json(self) -> str: ...
    @property
    def labels(self) -> List[str]: ...
    @property
    def label_values(self) -> Optional[str]: ...
    @property
    def num_params(self) -> int: ...
    @property
    def is_global(self) -> bool: ...
    def generate(
        self, prime: str, length: int, temperature: float, top_k: int, seed: int, bf16: bool = False
    ) -> str: ...
    def generate_stream(
        self, prime: str, length: int, temperature: float, top_k: int, seed: int, bf16: bool = False
    ) -> TextStream: ...
    def forecast(
        self, data: str, steps: Optional[int] = None, levels: Sequence[float] = ...
    ) -> str: ...
    def classify(
        self, texts: Sequence[str]
    ) -> Tuple[List[str], npt.NDArray[np.float32], int]: ...
    def evaluate(
        self,
        data: str,
        tail: Optional[float] = None,
        stream: bool = False,
        holdout: Optional[int] = None,
        windows: Optional[int] = None,
        per_series: bool = False,
        forecasts: bool = False,
    ) -> str: ...
