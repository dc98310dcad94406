"""The lstm engine inside PyTorch models: ``lstm.torch.LSTM``, ``GRU`` and ``RNN`` are
drop-ins for ``torch.nn.LSTM``, ``GRU`` and ``RNN`` (subclasses of them) on the CPU in float32,
with the same arguments, the same ``state_dict`` and the same results, computed by the engine
through a ``torch.autograd.Function``::

    import torch
    import lstm.torch

    model = torch.nn.Sequential(...)          # any model
    rnn = lstm.torch.LSTM(64, 256, num_layers=2, batch_first=True)
    rnn.load_state_dict(torch.nn.LSTM(64, 256, num_layers=2, batch_first=True).state_dict())
    out, (h_n, c_n) = rnn(x)                  # x: (B, T, 64) float32 CPU tensor
    out.sum().backward()                      # rnn.weight_ih_l0.grad, x.grad, ... as nn.LSTM

This module imports torch; ``import lstm`` alone does not. The parameters are ordinary
``nn.Parameter``s (any optimizer, ``clip_grad_norm_``, ``state_dict`` work as usual); each
forward pass gives the engine the values they hold then (a copy), however they were changed (a
fused optimizer step, ``.data``, a parametrization), and its backward pass the values it ran
with. Initialisation is ``nn.LSTM``'s (``torch.manual_seed`` then gives the same weights);
dropout masks are drawn from torch's generator (one number per training pass with dropout), so
``torch.manual_seed`` repeats them and checkpointing's replay draws the same ones.

Beyond ``nn.LSTM``: ``forward(x, hx, lengths=...)`` takes a padded batch's true lengths
directly (same results as packing it), and a ``PackedSequence`` works as with ``nn.LSTM``.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Tuple, Union

import numpy as np

try:
    import torch
except ModuleNotFoundError as _missing:  # pragma: no cover - depends on the environment
    if _missing.name != "torch":
        raise
    raise ModuleNotFoundError(
        "lstm.torch needs PyTorch, which is not installed in this environment: "
        "install it (pip install torch; the CPU wheel is enough) or use lstm.layers, "
        "which needs only numpy",
        name="torch",
    ) from None
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import layers as _layers
from ._lstm import Tape

__all__ = ["LSTM", "GRU", "RNN", "RecurrentFunction"]


def _params(names: list[str], weights: Tuple[Tensor, ...]) -> dict[str, np.ndarray]:
    """The module's parameters as the engine takes them, by name."""
    return {
        n: _numpy(w, n, "call module.float(): the module computes in float32")
        for n, w in zip(names, weights)
    }


def _amp_forward(f: Any) -> Any:
    # under torch.autocast the engine still computes in float32: inputs of a lower precision
    # (a bf16 Linear's output) are cast up, as torch.amp.custom_fwd does for such functions
    custom_fwd = getattr(getattr(torch, "amp", None), "custom_fwd", None)
    if custom_fwd is None:  # pragma: no cover - torch before 2.4
        return f
    return custom_fwd(device_type="cpu", cast_inputs=torch.float32)(f)


def _numpy(t: Optional[Tensor], what: str, fix: Optional[str] = None) -> Optional[np.ndarray]:
    """A float32 CPU tensor's values as a numpy array (a view when contiguous)."""
    if t is None:
        return None
    if t.device.type != "cpu":
        raise ValueError(f"{what} is on {t.device}: lstm computes on the CPU")
    if t.dtype != torch.float32:
        raise ValueError(f"{what} must be float32, got {t.dtype}: {fix or f'pass {what}.float()'}")
    return t.detach().contiguous().numpy()


class RecurrentFunction(torch.autograd.Function):
    """The engine's forward and backward pass as an autograd function.

    ``apply(module, lengths, x, h0, c0, *weights)`` -> ``(output, h_n, c_n)`` for LSTM,
    ``(output, h_n)`` otherwise; ``x`` 3-D in the module's layout, ``h0``/``c0`` ``None`` for
    zeros, ``weights`` the module's parameters in ``state_dict`` order (already copied into
    the engine by the module). Each call keeps its forward pass in a tape of its own, so
    several calls may be in one graph and several threads may run at once.
    """

    @staticmethod
    @_amp_forward
    def forward(  # type: ignore[override]
        ctx: Any,
        module: "_Recurrent",
        lengths: Optional[list[int]],
        x: Tensor,
        h0: Optional[Tensor],
        c0: Optional[Tensor],
        *weights: Tensor,
    ) -> Tuple[Tensor, ...]:
        native = module._layer._native
        train = module.training
        seed = module._dropout_seed()
        params = _params(module._names, weights)
        tape = Tape()
        out, h_n, c_n = native.forward(
            _numpy(x, "input"), _numpy(h0, "h0"), _numpy(c0, "c0"), lengths, train, tape,
            params, seed,
        )
        ctx.module, ctx.native, ctx.names, ctx.tape = module, native, module._names, tape
        ctx.lengths, ctx.train, ctx.seed = lengths, train, seed
        ctx.has_h0, ctx.has_c0 = h0 is not None, c0 is not None
        # what a second backward through a retained graph runs the pass again from; torch
        # frees them after a backward that does not retain the graph, and refuses a second
        # one as nn.LSTM's (and checks that none was changed in place since)
        ctx.save_for_backward(x, h0, c0, *weights)
        result = [torch.from_numpy(out), torch.from_numpy(h_n)]
        if c_n is not None:
            result.append(torch.from_numpy(c_n))
        return tuple(result)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, d_out: Tensor, d_h_n: Tensor, *d_c_n: Tensor) -> Tuple[Any, ...]:
        x, h0, c0, *weights = ctx.saved_tensors
        native = ctx.native
        # the weights this pass ran with (another pass in the graph may have run with others:
        # torch.func.functional_call)
        params = _params(ctx.names, tuple(weights))
        d_c = _numpy(d_c_n[0], "d_c_n") if d_c_n else None
        tape = ctx.tape
        if tape is None:
            # a second backward (retain_graph=True): the pass again, with its dropout masks
            tape = Tape()
            native.forward(
                _numpy(x, "input"), _numpy(h0, "h0"), _numpy(c0, "c0"), ctx.lengths,
                ctx.train, tape, params, ctx.seed,
            )
        # this pass's gradients alone, from one call (another thread's pass on the same engine
        # layer, a copy.copy of the module's, cannot mix in)
        d_x, d_h0, d_c0, grads = native.backward(
            _numpy(d_out, "d_output"), _numpy(d_h_n, "d_h_n"), d_c, tape, params, True
        )
        ctx.tape = None  # frees the forward pass's buffers
        weight_grads = [
            torch.from_numpy(grads[name]) if need else None
            for name, need in zip(ctx.names, ctx.needs_input_grad[5:])
        ]
        return (
            None,
            None,
            torch.from_numpy(d_x) if ctx.needs_input_grad[2] else None,
            torch.from_numpy(d_h0) if ctx.has_h0 else None,
            torch.from_numpy(d_c0) if ctx.has_c0 and d_c0 is not None else None,
            *weight_grads,
        )


class _Recurrent:
    """What the three modules share: the engine's layer beside ``nn.RNNBase``'s parameters
    (the modules are ``nn.LSTM``, ``nn.GRU`` and ``nn.RNN``: ``isinstance``, ``all_weights``,
    ``_flat_weights``, ``extra_repr``, ``flatten_parameters`` and the initialisation are
    theirs; the forward pass is the engine's)."""

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
        device: Any = None,
        dtype: Any = None,
        *,
        seed: Optional[int] = None,
    ) -> None:
        # (the meta device builds a module without memory, nn.utils.skip_init's; a forward
        # there is refused)
        if device is not None and torch.device(device).type not in ("cpu", "meta"):
            raise ValueError(f"lstm computes on the CPU, not on {device}")
        if dtype is not None and dtype != torch.float32:
            raise ValueError(f"lstm computes in float32, not {dtype}")
        # the engine's layer first: its checks and messages, before torch's
        layer = _layers._RecurrentLayer(
            mode,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            seed=0,
        )
        # nn.RNNBase's parameters, in its order, initialised as nn.LSTM's from torch's generator
        nn.RNNBase.__init__(
            self,  # type: ignore[arg-type]
            mode,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            float(dropout),
            bidirectional,
            proj_size,
            device=device,
            dtype=dtype,
        )
        self._layer = layer
        self._names = list(self._flat_weights_names)  # type: ignore[attr-defined]
        if sorted(self._names) != sorted(n for n, _ in layer.param_shapes()):
            raise AssertionError("the engine's parameters are not torch's")  # pragma: no cover
        self._seed = seed

    def __getstate__(self) -> dict[str, Any]:
        # copy.deepcopy and torch.save(module): the parameters are torch's own, which every
        # pass gives the engine; its layer is made again, not pickled with a copy of them
        state = nn.RNNBase.__getstate__(self)  # type: ignore[arg-type]
        state.pop("_layer", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state.pop("_synced", None)  # (pickled by the package of e625d09)
        state.setdefault("_seed", None)
        nn.RNNBase.__setstate__(self, state)  # type: ignore[arg-type]
        if "_layer" not in self.__dict__:
            self._layer = self._new_layer()

    def _dropout_seed(self) -> Optional[int]:
        """The seed of this pass's dropout masks, drawn from torch's generator (``None``: no
        dropout, and no draw, as ``nn.LSTM`` draws none then); the constructor's ``seed`` is
        added to it."""
        if not (self.training and self.dropout > 0 and self.num_layers > 1):
            return None
        draw = int(torch.randint(0, 2**62, (1,)).item())
        return (draw + (self._seed or 0)) % 2**64

    def _engine(self) -> None:
        """Makes the engine's layer again when ``dropout`` or ``batch_first`` was set on the
        module since (``nn.LSTM`` reads them at each call); its parameters come with every
        pass."""
        layer = self._layer
        if layer.dropout == float(self.dropout) and layer.batch_first == bool(self.batch_first):
            return
        # (a pass running in another thread keeps the layer it began on)
        self._layer = self._new_layer()

    def _new_layer(self) -> "_layers._RecurrentLayer":
        """The engine's layer for the module's configuration of now (its parameters come with
        each pass)."""
        return _layers._RecurrentLayer(
            self.mode,
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.bias,
            bool(self.batch_first),
            float(self.dropout),
            self.bidirectional,
            self.proj_size,
            seed=0,
        )

    def _forward(
        self,
        input: Union[Tensor, PackedSequence],
        h0: Optional[Tensor],
        c0: Optional[Tensor],
        lengths: Optional[Any],
    ) -> Tuple[Any, Tensor, Optional[Tensor]]:
        packed = isinstance(input, PackedSequence)
        if packed:
            if lengths is not None:
                raise ValueError("lengths come with the PackedSequence; do not pass both")
            x, lens = pad_packed_sequence(input, batch_first=self.batch_first)
            lengths = lens.tolist()
        else:
            x = input
            if lengths is not None:
                lengths = [int(v) for v in (lengths.tolist() if hasattr(lengths, "tolist") else lengths)]
        unbatched = x.dim() == 2
        if unbatched:
            if lengths is not None:
                raise ValueError("lengths needs a batch: the input is 2-D (unbatched)")
            x = x.unsqueeze(0 if self.batch_first else 1)
            h0 = None if h0 is None else h0.unsqueeze(1)
            c0 = None if c0 is None else c0.unsqueeze(1)
        elif x.dim() != 3:
            raise ValueError(f"input must be 3-D or 2-D (unbatched), got shape {tuple(x.shape)}")
        self._engine()
        # nn.LSTM's forward keeps _flat_weights current (a parametrized weight's value)
        update = getattr(self, "_update_flat_weights", None)
        if update is not None:
            update()
        weights = [getattr(self, n) for n in self._names]
        res = RecurrentFunction.apply(self, lengths, x, h0, c0, *weights)
        out, h_n = res[0], res[1]
        c_n = res[2] if len(res) > 2 else None
        if unbatched:
            out = out.squeeze(0 if self.batch_first else 1)
            h_n = h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        if packed:
            # in the input's order of sequences, with its indices, as nn.LSTM gives it back
            # (sorting again could order sequences of equal length otherwise)
            order = input.sorted_indices
            if order is not None:
                out = out.index_select(0 if self.batch_first else 1, order)
                lens = lens.index_select(0, order.to(lens.device))
            packed = pack_padded_sequence(out, lens, batch_first=self.batch_first)
            out = PackedSequence(
                packed.data, packed.batch_sizes, input.sorted_indices, input.unsorted_indices
            )
        return out, h_n, c_n


class LSTM(_Recurrent, nn.LSTM):
    """``torch.nn.LSTM`` computed by the lstm engine (CPU, float32): same arguments, same
    parameters and ``state_dict``, same ``forward``.

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
        proj_size, device, dtype: as ``torch.nn.LSTM`` (``device`` the CPU, ``dtype``
            float32 only).
        seed: added to the seed of each training pass's dropout masks, which is drawn from
            torch's generator (``torch.manual_seed`` repeats the masks).
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
        device: Any = None,
        dtype: Any = None,
        *,
        seed: Optional[int] = None,
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
            device,
            dtype,
            seed=seed,
        )

    def forward(
        self,
        input: Union[Tensor, PackedSequence],
        hx: Optional[Tuple[Tensor, Tensor]] = None,
        lengths: Optional[Any] = None,
    ) -> Tuple[Any, Tuple[Tensor, Tensor]]:
        """As ``torch.nn.LSTM.forward``: ``input`` ``(T, B, I)`` (``(B, T, I)`` batch-first,
        ``(T, I)`` unbatched) or a ``PackedSequence``, ``hx = (h_0, c_0)`` or ``None``.
        ``lengths`` ``(B)``: true lengths of a padded batch (as if packed; the output stays
        padded, zero past each length). Returns ``(output, (h_n, c_n))``.

        Raises:
            ValueError: a tensor not on the CPU or not float32, or a shape that does not fit.
        """
        h0, c0 = (None, None) if hx is None else hx
        out, h_n, c_n = self._forward(input, h0, c0, lengths)
        assert c_n is not None
        return out, (h_n, c_n)


class GRU(_Recurrent, nn.GRU):
    """``torch.nn.GRU`` computed by the lstm engine (CPU, float32).

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
        device, dtype: as ``torch.nn.GRU``.
        seed: as for ``LSTM``.
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
        device: Any = None,
        dtype: Any = None,
        *,
        seed: Optional[int] = None,
    ) -> None:
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
            device,
            dtype,
            seed=seed,
        )

    def forward(
        self,
        input: Union[Tensor, PackedSequence],
        hx: Optional[Tensor] = None,
        lengths: Optional[Any] = None,
    ) -> Tuple[Any, Tensor]:
        """As ``torch.nn.GRU.forward``; ``lengths`` as for ``LSTM.forward``. Returns
        ``(output, h_n)``."""
        out, h_n, _ = self._forward(input, hx, None, lengths)
        return out, h_n


class RNN(_Recurrent, nn.RNN):
    """``torch.nn.RNN`` computed by the lstm engine (CPU, float32).

    Args:
        input_size, hidden_size, num_layers, nonlinearity, bias, batch_first, dropout,
        bidirectional, device, dtype: as ``torch.nn.RNN`` (``nonlinearity`` ``'tanh'`` or
            ``'relu'``).
        seed: as for ``LSTM``.
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
        device: Any = None,
        dtype: Any = None,
        *,
        seed: Optional[int] = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        _Recurrent.__init__(
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
            device,
            dtype,
            seed=seed,
        )
        self.nonlinearity = nonlinearity

    def forward(  # type: ignore[override]
        self,
        input: Union[Tensor, PackedSequence],
        hx: Optional[Tensor] = None,
        lengths: Optional[Any] = None,
    ) -> Tuple[Any, Tensor]:
        """As ``torch.nn.RNN.forward``; ``lengths`` as for ``LSTM.forward``. Returns
        ``(output, h_n)``."""
        out, h_n, _ = self._forward(input, hx, None, lengths)
        return out, h_n
