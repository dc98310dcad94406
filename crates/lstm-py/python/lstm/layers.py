"""Recurrent layers shaped like ``torch.nn.LSTM``, ``torch.nn.GRU`` and ``torch.nn.RNN``.

The layers compute on the CPU in the lstm engine (Rust), on float32 numpy arrays, with
PyTorch's arguments, parameter names, shapes and results::

    import numpy as np
    import lstm

    layer = lstm.LSTM(10, 20, num_layers=2, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 3, 10), dtype=np.float32)  # (T, B, I)
    output, (h_n, c_n) = layer(x)            # (5, 3, 20), (2, 3, 20), (2, 3, 20)
    d_x = layer.backward(np.ones_like(output))   # dLoss/dx for loss = output.sum()
    grads = layer.grad_dict()                # {"weight_ih_l0": (80, 10), ...}, accumulated

Unlike a ``torch.nn.Module``, the parameters live inside the engine: read them with
``state_dict()`` (copies), write them with ``load_state_dict()``; gradients are added by every
``backward()`` until ``zero_grad()``, and read with ``grad_dict()``. A training step with any
optimizer is then::

    params = layer.state_dict()
    for name, g in layer.grad_dict().items():
        params[name] -= 0.1 * g
    layer.load_state_dict(params)

Shape letters: ``T`` steps, ``B`` sequences, ``I`` input size, ``L`` layers, ``D`` directions
(2 if bidirectional), ``H`` hidden size, ``H_out`` the hidden output (``proj_size`` if set,
else ``H``).

dtypes: inputs and gradients must be float32 numpy arrays (or torch CPU tensors, lists);
a numpy array of another dtype (float64 included) raises ``ValueError`` instead of being
converted silently, since the engine computes in float32 and a silent cast would hide a copy
and a loss of precision. ``load_state_dict`` converts any real array to float32, as
``torch.nn.Module.load_state_dict`` copies into the parameters' dtype.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Optional, Tuple, Union

import numpy as np

from ._lstm import Recurrent as _Recurrent
from ._lstm import Tape

__all__ = ["LSTM", "GRU", "RNN", "Tape"]

ArrayLike = Union[np.ndarray, Sequence[Any]]
"""A float32 numpy array, or anything ``numpy.asarray`` turns into one (a list, a CPU tensor)."""


def _as_f32(a: Any, what: str) -> np.ndarray:
    """``a`` as a C-contiguous float32 array; ``ValueError`` for a numpy array of another dtype."""
    if a is None:
        raise TypeError(f"{what} must be an array, got None")
    if np.ndim(a) == 0:
        raise ValueError(f"{what} must be an array, got a scalar {a!r}")
    if isinstance(a, np.ndarray):
        if a.dtype != np.float32:
            raise ValueError(
                f"{what} must be float32, got {a.dtype}: the engine computes in float32; "
                f"pass {what}.astype(numpy.float32)"
            )
        return np.ascontiguousarray(a)
    if hasattr(a, "dtype") and hasattr(a, "__array__"):  # a torch tensor or similar
        arr = np.asarray(a)
        if arr.dtype != np.float32:
            raise ValueError(f"{what} must be float32, got {a.dtype}")
        return np.ascontiguousarray(arr)
    try:
        return np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} cannot be read as a float32 array: {e}") from None


def _lengths(lengths: Any) -> Optional[list[int]]:
    if lengths is None:
        return None
    arr = np.asarray(lengths)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ValueError(f"lengths must be a 1-D sequence of integers, got {lengths!r}")
    return [int(v) for v in arr]


class _RecurrentLayer:
    """What LSTM, GRU and RNN share: the native stack, its training flag and the shapes."""

    _mode: str = "LSTM"

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        seed: Optional[int] = None,
        variant: str = "standard",
    ) -> None:
        for name, v in [
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
            ("proj_size", proj_size),
        ]:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                # as torch.nn.LSTM: the wrong kind of value is a TypeError
                raise TypeError(f"{name} must be an integer, got {type(v).__name__} {v!r}")
            if v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if (
            isinstance(dropout, (bool, np.bool_))
            or not isinstance(dropout, (int, float, np.integer, np.floating))
            or not 0.0 <= dropout < 1.0
        ):
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        if seed is None:
            seed = secrets.randbits(64)
        elif not isinstance(seed, (int, np.integer)) or seed < 0 or seed >= 2**64:
            raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
        self._native = _Recurrent(
            mode,
            int(input_size),
            int(hidden_size),
            int(num_layers),
            bool(bias),
            bool(batch_first),
            float(dropout),
            bool(bidirectional),
            int(proj_size),
            int(seed),
            variant,
        )
        self.mode: str = mode
        """The cell: ``LSTM``, ``GRU``, ``RNN_TANH`` or ``RNN_RELU``."""
        self.input_size: int = int(input_size)
        """``I``: features per step."""
        self.hidden_size: int = int(hidden_size)
        """``H``: units per layer and direction."""
        self.num_layers: int = int(num_layers)
        """``L``: stacked layers."""
        self.bias: bool = bool(bias)
        """Whether the layers have ``bias_ih`` and ``bias_hh``."""
        self.batch_first: bool = bool(batch_first)
        """Input and output are ``(B, T, ·)`` instead of ``(T, B, ·)``."""
        self.dropout: float = float(dropout)
        """Dropout on each layer's output except the last's, in training mode only."""
        self.bidirectional: bool = bool(bidirectional)
        """Two directions, outputs concatenated forward then reverse."""
        self.proj_size: int = int(proj_size)
        """LSTM projection size, 0 for none."""
        self.variant: str = variant
        """LSTM variant: ``standard``, ``peephole``, ``coupled`` or ``peephole+coupled``."""
        self.training: bool = True
        """Training mode (dropout on), as after ``torch.nn.Module.train()``; the default."""
        self._unbatched: bool = False
        self._hx_grad: Optional[Tuple[np.ndarray, Optional[np.ndarray]]] = None
        self._seed: int = int(seed)

    # ---- shapes

    @property
    def num_directions(self) -> int:
        """``D``: 2 if bidirectional, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def hidden_out(self) -> int:
        """``H_out``: the size of the hidden state, ``proj_size`` if set, else ``hidden_size``."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def __repr__(self) -> str:
        args = [str(self.input_size), str(self.hidden_size)]
        defaults = [
            ("num_layers", self.num_layers, 1),
            ("bias", self.bias, True),
            ("batch_first", self.batch_first, False),
            ("dropout", self.dropout, 0.0),
            ("bidirectional", self.bidirectional, False),
            ("proj_size", self.proj_size, 0),
        ]
        args += [f"{k}={v!r}" for k, v, d in defaults if v != d]
        return f"{type(self).__name__}({', '.join(args)})"

    # ---- pickling

    def __getstate__(self) -> dict[str, Any]:
        # pickle, copy.deepcopy and joblib keep the configuration, the parameters and the
        # training flag; in the copy the gradients start at zero (as in a module torch.save
        # wrote; torch's deepcopy keeps them), backward() needs a forward() of its own first,
        # and dropout draws its masks from the layer's seed again, as the original did first
        state = {k: v for k, v in self.__dict__.items() if k not in ("_native", "_hx_grad")}
        state["_params"] = self.state_dict()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        params = state.pop("_params")
        _RecurrentLayer.__init__(
            self,
            state["mode"],
            state["input_size"],
            state["hidden_size"],
            state["num_layers"],
            state["bias"],
            state["batch_first"],
            state["dropout"],
            state["bidirectional"],
            state["proj_size"],
            seed=state["_seed"],
            variant=state["variant"],
        )
        self.__dict__.update(state)
        self._native.set_tensors(params, True)

    # ---- mode

    def train(self, mode: bool = True) -> "_RecurrentLayer":
        """Sets training mode (dropout between layers on) or, with ``mode=False``, evaluation.

        Returns:
            The layer itself, as ``torch.nn.Module.train`` does.
        """
        self.training = bool(mode)
        return self

    def eval(self) -> "_RecurrentLayer":
        """Sets evaluation mode (no dropout); same as ``train(False)``.

        Returns:
            The layer itself.
        """
        return self.train(False)

    # ---- parameters

    def state_dict(self) -> dict[str, np.ndarray]:
        """The parameters under PyTorch's names and shapes, as new float32 arrays.

        Keys and order are those of ``torch.nn.LSTM(...).state_dict()``: ``weight_ih_l0``
        ``(G·H, I)``, ``weight_hh_l0`` ``(G·H, H_out)``, ``bias_ih_l0``, ``bias_hh_l0``
        ``(G·H)``, ``weight_hr_l0`` ``(P, H)`` with a projection, suffix ``_reverse`` for the
        backward direction; ``G`` = 4 (LSTM, gates i, f, g, o), 3 (GRU, r, z, n) or 1 (RNN).

        Returns:
            A dict of copies: changing them does not change the layer (see ``load_state_dict``).
        """
        return dict(self._native.tensors(False))

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """Overwrites the parameters, e.g. with ``torch.nn.LSTM(...).state_dict()``.

        Args:
            state_dict: name -> array (numpy arrays of any real dtype, torch tensors,
                nested lists), converted to float32.
            strict: the names must be exactly the layer's (``True``), or a subset.

        Raises:
            ValueError: a missing or unexpected name, or a shape that differs from the
                layer's; nothing is written then.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"load_state_dict() takes a mapping of names to arrays (a dict, a "
                f"state_dict()), got {type(state_dict).__name__}"
            )
        if not isinstance(strict, (bool, np.bool_)):
            raise TypeError(f"strict must be True or False, got {strict!r}")
        params: dict[str, np.ndarray] = {}
        for name, value in state_dict.items():
            if hasattr(value, "detach"):  # a torch tensor
                value = value.detach().cpu().numpy()
            if np.iscomplexobj(value):
                raise ValueError(f"parameter {name} holds complex numbers; give real numbers")
            try:
                arr = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
            except (TypeError, ValueError) as e:
                raise ValueError(f"parameter {name} cannot be read as an array: {e}") from None
            params[str(name)] = arr
        self._native.set_tensors(params, strict)

    def grad_dict(self) -> dict[str, np.ndarray]:
        """Each parameter's gradient, accumulated over the ``backward`` calls since the last
        ``zero_grad()``, under the ``state_dict()`` names (new float32 arrays)."""
        return dict(self._native.tensors(True))

    def zero_grad(self) -> None:
        """Sets every parameter gradient to zero."""
        self._native.zero_grad()

    def named_parameters(self) -> Iterator[Tuple[str, np.ndarray]]:
        """``(name, value)`` for each parameter, in PyTorch's order; the values are copies."""
        return iter(self.state_dict().items())

    def parameters(self) -> Iterator[np.ndarray]:
        """Each parameter's value (a copy), in PyTorch's order."""
        return iter(self.state_dict().values())

    def param_shapes(self) -> list[Tuple[str, Tuple[int, ...]]]:
        """``(name, shape)`` of each parameter, in PyTorch's order, without copying values."""
        return [(n, tuple(s)) for n, s in self._native.param_shapes()]

    def num_params(self) -> int:
        """The number of parameters."""
        return int(sum(np.prod(s) for _, s in self.param_shapes()))

    # ---- forward and backward

    def _run(
        self,
        x: ArrayLike,
        h0: Optional[ArrayLike],
        c0: Optional[ArrayLike],
        lengths: Optional[Sequence[int]],
        tape: Optional[Tape],
    ) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        xa = _as_f32(x, "input")
        h0a = None if h0 is None else _as_f32(h0, "h0")
        c0a = None if c0 is None else _as_f32(c0, "c0")
        unbatched = xa.ndim == 2
        if unbatched:
            if lengths is not None:
                raise ValueError("lengths needs a batch: the input is 2-D (unbatched)")
            xa = xa[None] if self.batch_first else xa[:, None]
            for what, s in (("h0", h0a), ("c0", c0a)):
                if s is not None and s.ndim != 2:
                    raise ValueError(f"{what} must be 2-D for an unbatched input, got {s.shape}")
            h0a = None if h0a is None else h0a[:, None]
            c0a = None if c0a is None else c0a[:, None]
        elif xa.ndim != 3:
            layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
            raise ValueError(f"input must be 3-D {layout} or 2-D (T, I), got shape {xa.shape}")
        out, h_n, c_n = self._native.forward(
            xa, h0a, c0a, _lengths(lengths), self.training, tape
        )
        if tape is None:
            self._unbatched = unbatched
            self._hx_grad = None
        if unbatched:
            out = out[0] if self.batch_first else out[:, 0]
            h_n = h_n[:, 0]
            c_n = None if c_n is None else c_n[:, 0]
        return out, h_n, c_n

    def _run_backward(
        self,
        d_output: ArrayLike,
        d_h_n: Optional[ArrayLike],
        d_c_n: Optional[ArrayLike],
        tape: Optional[Tape],
        unbatched: bool,
    ) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        do = _as_f32(d_output, "d_output")
        dh = None if d_h_n is None else _as_f32(d_h_n, "d_h_n")
        dc = None if d_c_n is None else _as_f32(d_c_n, "d_c_n")
        if unbatched:
            if do.ndim != 2:
                raise ValueError(
                    f"d_output must be 2-D like the unbatched output, got shape {do.shape}"
                )
            do = do[None] if self.batch_first else do[:, None]
            # the unbatched final states are 2-D: anything else is an error, not dropped
            for name, a in (("d_h_n", dh), ("d_c_n", dc)):
                if a is not None and a.ndim != 2:
                    raise ValueError(
                        f"{name} must be 2-D (layers, size) like the unbatched final state, "
                        f"got shape {a.shape}"
                    )
            dh = None if dh is None else dh[:, None]
            dc = None if dc is None else dc[:, None]
        d_x, d_h0, d_c0, _ = self._native.backward(do, dh, dc, tape)
        if unbatched:
            d_x = d_x[0] if self.batch_first else d_x[:, 0]
            d_h0 = d_h0[:, 0]
            d_c0 = None if d_c0 is None else d_c0[:, 0]
        return d_x, d_h0, d_c0


class LSTM(_RecurrentLayer):
    """A multi-layer LSTM, the equivalent of ``torch.nn.LSTM`` on the CPU, in float32.

    Gates i, f, g, o: ``i = σ(W_ii x + b_ii + W_hi h + b_hi)``, likewise ``f``, ``o``;
    ``g = tanh(W_ig x + b_ig + W_hg h + b_hg)``; ``c' = f ⊙ c + i ⊙ g``; ``h' = o ⊙ tanh(c')``
    (then ``h' = W_hr h'`` with a projection).

    Args:
        input_size: ``I``, features per step.
        hidden_size: ``H``, units per layer and direction.
        num_layers: ``L``, stacked layers.
        bias: whether the layers have ``bias_ih`` and ``bias_hh``.
        batch_first: input and output ``(B, T, ·)`` instead of ``(T, B, ·)`` (not the states).
        dropout: dropout on each layer's output except the last's, in training mode.
        bidirectional: two directions, the output ``D·H_out`` wide (forward, then reverse).
        proj_size: ``P``, a projection of the hidden state to ``P < H`` (0 = none).
        seed: seeds the initialisation (PyTorch's scheme, uniform in ``±1/sqrt(H)``, from
            the engine's own generator: the same seed gives the same weights, not torch's)
            and the dropout masks; ``None`` draws one.
        variant: beyond PyTorch: ``peephole`` (ONNX's peephole convention, extra parameters
            ``peephole_{i,f,o}_l{k}``), ``coupled`` (``i = 1 - f``) or ``peephole+coupled``.

    Raises:
        ValueError: an invalid size or combination (e.g. ``proj_size >= hidden_size``).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        seed: Optional[int] = None,
        variant: str = "standard",
    ) -> None:
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            seed=seed,
            variant=variant,
        )

    def forward(
        self,
        x: ArrayLike,
        hx: Optional[Tuple[ArrayLike, ArrayLike]] = None,
        lengths: Optional[Sequence[int]] = None,
    ) -> Tuple[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
        """Runs the layer, as ``torch.nn.LSTM.forward``.

        Args:
            x: ``(T, B, I)``, ``(B, T, I)`` when ``batch_first``, or ``(T, I)`` unbatched;
                float32.
            hx: ``(h_0, c_0)``, ``h_0`` ``(D·L, B, H_out)`` and ``c_0`` ``(D·L, B, H)``
                (``(D·L, H_out)``, ``(D·L, H)`` unbatched); ``None`` = zeros.
            lengths: ``(B)``, each sequence's true length in ``1..=T`` (any order): the
                batch then runs as ``pack_padded_sequence(x, lengths, enforce_sorted=False)``
                would, the output padded back to ``T`` steps with zeros
                (``pad_packed_sequence(..., total_length=T)``) and ``h_n``, ``c_n`` taken
                at each sequence's last real step.

        Returns:
            ``(output, (h_n, c_n))``: ``output`` ``(T, B, D·H_out)`` (``batch_first``:
            ``(B, T, D·H_out)``; unbatched ``(T, D·H_out)``), the final states shaped as
            ``h_0``, ``c_0``. New float32 arrays.

        Raises:
            ValueError: a wrong shape, a dtype other than float32, a length out of range.
        """
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(
                f"hx must be a pair (h_0, c_0) or None, got {type(hx).__name__}"
            )
        h0, c0 = (None, None) if hx is None else hx
        out, h_n, c_n = self._run(x, h0, c0, lengths, None)
        assert c_n is not None
        return out, (h_n, c_n)

    __call__ = forward

    def backward(
        self,
        d_output: ArrayLike,
        d_h_n: Optional[ArrayLike] = None,
        d_c_n: Optional[ArrayLike] = None,
    ) -> np.ndarray:
        """Backpropagation through time for the last ``forward``.

        Args:
            d_output: the loss's gradient w.r.t. ``output``, the same shape (its padded
                positions are not read).
            d_h_n: the gradient w.r.t. ``h_n`` (``None`` = zero).
            d_c_n: the gradient w.r.t. ``c_n`` (``None`` = zero).

        Returns:
            The gradient w.r.t. the input ``x``, its shape. Each parameter's gradient is added
            into ``grad_dict()``; the initial states' gradients are in ``hx_grad``.

        Raises:
            ValueError: no ``forward`` before, or a shape or dtype that does not fit it.
        """
        d_x, d_h0, d_c0 = self._run_backward(d_output, d_h_n, d_c_n, None, self._unbatched)
        self._hx_grad = (d_h0, d_c0)
        return d_x

    @property
    def hx_grad(self) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """``(d_h_0, d_c_0)``, the gradients w.r.t. the initial states of the last
        ``backward`` (``None`` before one)."""
        return self._hx_grad  # type: ignore[return-value]


def _no_projection(proj_size: Any) -> None:
    """``proj_size`` of a GRU or RNN: 0 only, as PyTorch's (code written for any of the three
    layers passes it)."""
    if proj_size != 0:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")


class GRU(_RecurrentLayer):
    """A multi-layer GRU, the equivalent of ``torch.nn.GRU`` (PyTorch's equations, gates r, z,
    n: ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``, ``h' = (1 - z) ⊙ n + z ⊙ h``).

    Args:
        input_size: ``I``, features per step.
        hidden_size: ``H``, units per layer and direction.
        num_layers: ``L``, stacked layers.
        bias: whether the layers have ``bias_ih`` and ``bias_hh``.
        batch_first: input and output ``(B, T, ·)`` instead of ``(T, B, ·)``.
        dropout: dropout on each layer's output except the last's, in training mode.
        bidirectional: two directions, the output ``2·H`` wide.
        proj_size: 0 (accepted as PyTorch accepts it; a projection is the LSTM's only).
        seed: seeds the initialisation (PyTorch's scheme) and dropout; ``None`` draws one.

    Raises:
        ValueError: an invalid size, or a ``proj_size`` other than 0.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        proj_size: int = 0,
        seed: Optional[int] = None,
    ) -> None:
        _no_projection(proj_size)
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            seed=seed,
        )

    def forward(
        self,
        x: ArrayLike,
        hx: Optional[ArrayLike] = None,
        lengths: Optional[Sequence[int]] = None,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Runs the layer, as ``torch.nn.GRU.forward``.

        Args:
            x: ``(T, B, I)``, ``(B, T, I)`` when ``batch_first``, or ``(T, I)`` unbatched.
            hx: ``h_0`` ``(D·L, B, H)`` (``(D·L, H)`` unbatched); ``None`` = zeros.
            lengths: ``(B)`` true lengths, as for ``LSTM.forward``.

        Returns:
            ``(output, h_n)``: ``output`` ``(T, B, D·H)`` (or batch-first), zero past each
            sequence's length; ``h_n`` ``(D·L, B, H)``.

        Raises:
            ValueError: a wrong shape, a dtype other than float32, a length out of range.
        """
        out, h_n, _ = self._run(x, hx, None, lengths, None)
        return out, h_n

    __call__ = forward

    def backward(self, d_output: ArrayLike, d_h_n: Optional[ArrayLike] = None) -> np.ndarray:
        """Backpropagation through time for the last ``forward``.

        Args:
            d_output: the gradient w.r.t. ``output``, the same shape.
            d_h_n: the gradient w.r.t. ``h_n`` (``None`` = zero).

        Returns:
            The gradient w.r.t. ``x``; parameter gradients are added into ``grad_dict()``, the
            initial state's is ``hx_grad``.

        Raises:
            ValueError: no ``forward`` before, or a shape or dtype that does not fit it.
        """
        d_x, d_h0, _ = self._run_backward(d_output, d_h_n, None, None, self._unbatched)
        self._hx_grad = (d_h0, None)
        return d_x

    @property
    def hx_grad(self) -> Optional[np.ndarray]:
        """``d_h_0``, the gradient w.r.t. the initial state of the last ``backward``."""
        return None if self._hx_grad is None else self._hx_grad[0]


class RNN(GRU):
    """A multi-layer Elman RNN, the equivalent of ``torch.nn.RNN``:
    ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or ReLU).

    Args:
        input_size: ``I``, features per step.
        hidden_size: ``H``, units per layer and direction.
        num_layers: ``L``, stacked layers.
        nonlinearity: ``'tanh'`` or ``'relu'``.
        bias: whether the layers have ``bias_ih`` and ``bias_hh``.
        batch_first: input and output ``(B, T, ·)`` instead of ``(T, B, ·)``.
        dropout: dropout on each layer's output except the last's, in training mode.
        bidirectional: two directions, the output ``2·H`` wide.
        proj_size: 0 (accepted as PyTorch accepts it; a projection is the LSTM's only).
        seed: seeds the initialisation (PyTorch's scheme) and dropout; ``None`` draws one.

    Raises:
        ValueError: an invalid size or nonlinearity, or a ``proj_size`` other than 0.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        proj_size: int = 0,
        seed: Optional[int] = None,
    ) -> None:
        _no_projection(proj_size)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity: str = nonlinearity
        """``'tanh'`` or ``'relu'``."""
        _RecurrentLayer.__init__(
            self,
            "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            seed=seed,
        )
