"""Dynamically quantized LSTM, GRU and their cells: float in, float out.

Mirrors ``torch.ao.nn.quantized.dynamic`` (``LSTM``, ``GRU``, ``LSTMCell``,
``GRUCell``, ``RNNCell``), with every eval-mode option of ``nn.LSTM`` /
``nn.GRU``: ``num_layers``, ``bidirectional``, ``batch_first``, ``bias``
(also ``bias=False``, which the classic modules reject), ``proj_size`` for
LSTM, initial states, unbatched and ``PackedSequence`` input.

Weights are int8 (one observer per weight matrix, per tensor or per channel,
as the classic ``from_float`` does) or float16, packed once into the GEMM
layout. Per layer:

- the input-to-hidden projection of every time step (and both directions: their
  weights are packed side by side) is one dynamic Linear call, the input
  quantized once from its min/max range (reduce_range, as the classic module);
- the recurrence is one op per direction (``torch.ops.qtorch.lstm_layer_dynamic``
  / ``gru_layer_dynamic``) that loops over the steps in C++: the hidden state is
  quantized per step and multiplied by the packed W_hh, and the gate kernel
  (csrc/kernels/rnn) applies the nonlinearities.

This is also what torch's classic CPU kernel computes (it too projects the
whole sequence at once), so results agree with it closely; see
tests/test_rnn.py for the measured bounds.
"""
from typing import Any, List, Optional, Tuple

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from qtorch._dtypes import _TORCH_QUANTIZED
from qtorch._ops import ops
from qtorch.nn.quantized.dynamic.linear import Linear, _default_dynamic_weight_observer
from qtorch.nn.quantized._weights import quantize_weight


class _RecurrentWeight(Linear):
    """A dynamic Linear whose packed weight the recurrent ops also take as a list."""

    def packed(self) -> List[Tensor]:
        if self.is_float16:
            return [self.packed_weight_fp16]
        return [self.packed_weight, self.col_sums, self.weight_scales, self.weight_zero_points]

    def set_float_weights(self, weights: List[Tensor], biases: List[Optional[Tensor]], observer_factory: Any) -> None:
        """Packs the float weights stacked along the output dimension, each quantized with its own observer."""
        bias = torch.cat([b.detach().float() for b in biases]) if all(b is not None for b in biases) else None
        if self.is_float16:
            self.set_weight_bias(torch.cat([w.detach().float() for w in weights]), bias)
            return
        data, scales, zero_points = [], [], []
        for w in weights:
            observer = observer_factory()
            observer(w)
            q, s, z = quantize_weight(w, observer)
            if len(weights) > 1 and s.numel() == 1:  # one scale per matrix becomes per-channel when stacked
                s, z = s.expand(w.shape[0]), z.expand(w.shape[0])
            data.append(q)
            scales.append(s)
            zero_points.append(z)
        self.set_weight_bias((torch.cat(data), torch.cat(scales), torch.cat(zero_points)), bias)


def _weight_dtype(dtype: Any, what: str) -> Any:
    """torch.int8 (given as torch.qint8, qtorch.qint8 or torch.int8) or torch.float16; ValueError otherwise."""
    dtype = _TORCH_QUANTIZED.get(dtype, dtype)
    if dtype not in (torch.int8, torch.float16):
        raise ValueError(f"{what} supports dtype torch.qint8 (torch.int8) or torch.float16, got {dtype}")
    return dtype


def _weight_observer_factory(mod: Any) -> Tuple[Any, Any]:
    """(observer factory, dtype) from ``mod.qconfig`` (the default dynamic qconfig without one)."""
    qconfig = getattr(mod, "qconfig", None)
    if qconfig is not None and qconfig.weight is not None:
        factory = qconfig.weight
    else:
        factory = _default_dynamic_weight_observer
    return factory, _weight_dtype(factory().dtype, "the weight observer")


class _Direction(torch.nn.Module):
    """One direction of one layer: W_hh (and W_hr for an LSTM with proj_size) and the recurrence op."""

    is_lstm: bool
    reverse: bool
    reduce_range: bool

    def __init__(self, is_lstm: bool, hidden_size: int, proj_size: int, bias: bool, reverse: bool, dtype: Any) -> None:
        super().__init__()
        self.is_lstm = is_lstm
        self.reverse = reverse
        self.reduce_range = True  # as the classic module's per-step quantization
        out = proj_size if proj_size > 0 else hidden_size
        self.hh = _RecurrentWeight(out, (4 if is_lstm else 3) * hidden_size, bias, dtype)
        if proj_size > 0:
            self.hr = _RecurrentWeight(hidden_size, proj_size, False, dtype)

    def forward(self, gates_x: Tensor, h0: Tensor, c0: Tensor,
                batch_sizes: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        if self.is_lstm:
            weight_hr: List[Tensor] = []
            if hasattr(self, "hr"):
                weight_hr = self.hr.packed()
            return ops.lstm_layer_dynamic(gates_x, h0, c0, self.hh.packed(), self.hh.bias_, weight_hr, batch_sizes,
                                          self.reverse, self.reduce_range)
        out, h = ops.gru_layer_dynamic(gates_x, h0, self.hh.packed(), self.hh.bias_, batch_sizes, self.reverse,
                                       self.reduce_range)
        return out, h, c0


class _Layer(torch.nn.Module):
    """One layer: the input projection of every step and direction in one call, then each direction's recurrence."""

    gate_width: int

    def __init__(self, is_lstm: bool, input_size: int, hidden_size: int, proj_size: int, bias: bool,
                 bidirectional: bool, dtype: Any) -> None:
        super().__init__()
        directions = 2 if bidirectional else 1
        self.gate_width = (4 if is_lstm else 3) * hidden_size
        self.ih = _RecurrentWeight(input_size, directions * self.gate_width, bias, dtype)
        self.directions = torch.nn.ModuleList(
            [_Direction(is_lstm, hidden_size, proj_size, bias, d == 1, dtype) for d in range(directions)])

    def forward(self, x: Tensor, h0: Tensor, c0: Tensor,
                batch_sizes: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        gates_x = self.ih(x)
        outputs: List[Tensor] = []
        hs: List[Tensor] = []
        cs: List[Tensor] = []
        d = 0
        for direction in self.directions:
            out, h, c = direction(gates_x[:, d * self.gate_width:(d + 1) * self.gate_width], h0[d], c0[d],
                                  batch_sizes)
            outputs.append(out)
            hs.append(h)
            cs.append(c)
            d += 1
        output = outputs[0] if len(outputs) == 1 else torch.cat(outputs, 1)
        return output, torch.stack(hs), torch.stack(cs)


class RNNBase(torch.nn.Module):
    _FLOAT_MODULE: Any = torch.nn.RNNBase

    mode: str
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    batch_first: bool
    dropout: float
    bidirectional: bool
    proj_size: int
    is_float16: bool

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = torch.qint8, proj_size: int = 0) -> None:
        super().__init__()
        if mode not in ("LSTM", "GRU"):
            raise ValueError(f"mode must be 'LSTM' or 'GRU', got {mode!r}")
        dtype = _weight_dtype(dtype, f"dynamic {mode}")
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError("input_size, hidden_size and num_layers must be positive, got "
                             f"{input_size}, {hidden_size}, {num_layers}")
        if proj_size < 0 or proj_size >= hidden_size or (proj_size > 0 and mode != "LSTM"):
            raise ValueError(f"proj_size must be 0, or (LSTM only) in [1, hidden_size), got {proj_size}")
        self.mode = mode
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)  # inference only: dropout never applies
        self.bidirectional = bool(bidirectional)
        self.proj_size = int(proj_size)
        self.is_float16 = dtype == torch.float16
        directions = 2 if bidirectional else 1
        out = proj_size if proj_size > 0 else hidden_size
        self.layers = torch.nn.ModuleList([
            _Layer(mode == "LSTM", input_size if layer == 0 else directions * out, hidden_size, proj_size, bias,
                   bidirectional, dtype) for layer in range(num_layers)])

    @property
    def dtype(self) -> Any:
        return torch.float16 if self.is_float16 else torch.qint8

    def _get_name(self) -> str:
        return "DynamicQuantized" + self.mode

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s + f", dtype={self.dtype}"

    # Shapes are checked here; dtypes by the ops (their messages read the same eagerly and scripted).
    def _check_input(self, x: Tensor, batch_sizes: Optional[Tensor]) -> None:
        expected_dim = 2 if batch_sizes is not None else 3
        if x.dim() != expected_dim:
            raise ValueError(f"{self.mode}: input must have {expected_dim} dimensions, got {x.dim()}")
        if x.size(-1) != self.input_size:
            raise ValueError(f"{self.mode}: input.size(-1) must be equal to input_size. "
                             f"Expected {self.input_size}, got {x.size(-1)}")

    def _check_hidden(self, hx: Tensor, expected: List[int], name: str) -> None:
        if list(hx.shape) != expected:
            raise ValueError(f"{self.mode}: expected {name} size {expected}, got {list(hx.shape)}")

    def _run(self, x: Tensor, batch_sizes: Optional[Tensor], hx: Tensor,
             cx: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """x: time-major rows [steps * batch (or packed), input_size]; hx, cx: [layers * directions, batch, *]."""
        directions = 2 if self.bidirectional else 1
        hs: List[Tensor] = []
        cs: List[Tensor] = []
        i = 0
        for layer in self.layers:
            x, h, c = layer(x, hx[i * directions:(i + 1) * directions], cx[i * directions:(i + 1) * directions],
                            batch_sizes)
            hs.append(h)
            cs.append(c)
            i += 1
        return x, torch.cat(hs), torch.cat(cs)

    def _zeros(self, batch: int, x: Tensor) -> Tuple[Tensor, Tensor]:
        directions = 2 if self.bidirectional else 1
        out = self.proj_size if self.proj_size > 0 else self.hidden_size
        h = torch.zeros(self.num_layers * directions, batch, out, dtype=x.dtype, device=x.device)
        if self.mode == "LSTM":
            return h, torch.zeros(self.num_layers * directions, batch, self.hidden_size, dtype=x.dtype,
                                  device=x.device)
        return h, h

    def _forward_tensor(self, input: Tensor, hx: Optional[Tensor],
                        cx: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        if input.dim() not in (2, 3):
            raise ValueError(f"{self.mode}: Expected input to be 2D or 3D, got {input.dim()}D instead")
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        self._check_input(x, None)
        steps, batch = x.size(0), x.size(1)
        directions = 2 if self.bidirectional else 1
        out = self.proj_size if self.proj_size > 0 else self.hidden_size
        if hx is None or cx is None:
            h0, c0 = self._zeros(batch, x)
        else:
            state_dim = 3 if batched else 2
            if hx.dim() != state_dim or cx.dim() != state_dim:
                raise ValueError(f"{self.mode}: for {input.dim()}-D input the hidden state must be {state_dim}-D, "
                                 f"got {hx.dim()}-D")
            h0 = hx if batched else hx.unsqueeze(1)
            c0 = cx if batched else cx.unsqueeze(1)
            self._check_hidden(h0, [self.num_layers * directions, batch, out], "hx")
            if self.mode == "LSTM":
                self._check_hidden(c0, [self.num_layers * directions, batch, self.hidden_size], "cx")
        y, h, c = self._run(x.reshape(steps * batch, self.input_size), None, h0, c0)
        y = y.reshape(steps, batch, directions * out)
        if not batched:
            return y.squeeze(1), h.squeeze(1), c.squeeze(1)
        if self.batch_first:
            y = y.transpose(0, 1)
        return y, h, c

    def _forward_packed(self, input: PackedSequence, hx: Optional[Tensor],
                        cx: Optional[Tensor]) -> Tuple[PackedSequence, Tensor, Tensor]:
        data, batch_sizes, sorted_indices, unsorted_indices = input
        self._check_input(data, batch_sizes)
        batch = int(batch_sizes[0])
        directions = 2 if self.bidirectional else 1
        out = self.proj_size if self.proj_size > 0 else self.hidden_size
        if hx is None or cx is None:
            h0, c0 = self._zeros(batch, data)
        else:
            self._check_hidden(hx, [self.num_layers * directions, batch, out], "hx")
            if self.mode == "LSTM":
                self._check_hidden(cx, [self.num_layers * directions, batch, self.hidden_size], "cx")
            h0, c0 = hx, cx
            if sorted_indices is not None:
                h0 = h0.index_select(1, sorted_indices)
                c0 = c0.index_select(1, sorted_indices)
        y, h, c = self._run(data, batch_sizes, h0, c0)
        if unsorted_indices is not None:
            h = h.index_select(1, unsorted_indices)
            c = c.index_select(1, unsorted_indices)
        return PackedSequence(y, batch_sizes, sorted_indices, unsorted_indices), h, c

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> "RNNBase":
        """A dynamic quantized LSTM/GRU from a float one (its ``qconfig`` names the weight observer)."""
        float_module = torch.nn.LSTM if cls is LSTM else torch.nn.GRU
        if type(mod) is not float_module:
            raise TypeError(f"{cls.__module__}.{cls.__name__}.from_float only works for "
                            f"{float_module.__name__}, got {type(mod)}")
        factory, dtype = _weight_observer_factory(mod)
        kwargs = dict(num_layers=mod.num_layers, bias=mod.bias, batch_first=mod.batch_first, dropout=mod.dropout,
                      bidirectional=mod.bidirectional, dtype=dtype)
        if cls is LSTM:
            kwargs["proj_size"] = mod.proj_size
        qmod = cls(mod.input_size, mod.hidden_size, **kwargs)
        directions = 2 if mod.bidirectional else 1
        suffixes = ["", "_reverse"][:directions]

        def param(name: str) -> Optional[Tensor]:
            return getattr(mod, name) if mod.bias or not name.startswith("bias") else None

        for index, layer in enumerate(qmod.layers):
            layer.ih.set_float_weights([param(f"weight_ih_l{index}{s}") for s in suffixes],
                                       [param(f"bias_ih_l{index}{s}") for s in suffixes], factory)
            for direction, s in zip(layer.directions, suffixes):
                direction.hh.set_float_weights([param(f"weight_hh_l{index}{s}")], [param(f"bias_hh_l{index}{s}")],
                                               factory)
                if hasattr(direction, "hr"):
                    direction.hr.set_float_weights([param(f"weight_hr_l{index}{s}")], [None], factory)
        return qmod


class LSTM(RNNBase):
    r"""A dynamic quantized LSTM: mirrors ``torch.ao.nn.quantized.dynamic.LSTM`` (plus ``proj_size``, ``bias=False``)."""

    _FLOAT_MODULE: Any = torch.nn.LSTM

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, dtype: Any = torch.qint8) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype, proj_size)

    @torch.jit.export
    def forward_tensor(self, input: Tensor,
                       hx: Optional[Tuple[Tensor, Tensor]] = None) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
        h0: Optional[Tensor] = None
        c0: Optional[Tensor] = None
        if hx is not None:
            h0, c0 = hx
        y, h, c = self._forward_tensor(input, h0, c0)
        return y, (h, c)

    @torch.jit.export
    def forward_packed(self, input: PackedSequence, hx: Optional[Tuple[Tensor, Tensor]] = None
                       ) -> Tuple[PackedSequence, Tuple[Tensor, Tensor]]:
        h0: Optional[Tensor] = None
        c0: Optional[Tensor] = None
        if hx is not None:
            h0, c0 = hx
        y, h, c = self._forward_packed(input, h0, c0)
        return y, (h, c)

    def forward(self, input: Tensor, hx: Optional[Tuple[Tensor, Tensor]] = None
                ) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
        """input: a Tensor, or (eagerly) a PackedSequence; scripted modules take one through forward_packed."""
        if not torch.jit.is_scripting():
            if isinstance(input, PackedSequence):
                return self.forward_packed(input, hx)  # type: ignore[return-value]
        return self.forward_tensor(input, hx)


class GRU(RNNBase):
    r"""A dynamic quantized GRU: mirrors ``torch.ao.nn.quantized.dynamic.GRU`` (plus ``bias=False``)."""

    _FLOAT_MODULE: Any = torch.nn.GRU

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = torch.qint8) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype)

    @torch.jit.export
    def forward_tensor(self, input: Tensor, hx: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        y, h, _ = self._forward_tensor(input, hx, hx)
        return y, h

    @torch.jit.export
    def forward_packed(self, input: PackedSequence, hx: Optional[Tensor] = None) -> Tuple[PackedSequence, Tensor]:
        y, h, _ = self._forward_packed(input, hx, hx)
        return y, h

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """input: a Tensor, or (eagerly) a PackedSequence; scripted modules take one through forward_packed."""
        if not torch.jit.is_scripting():
            if isinstance(input, PackedSequence):
                return self.forward_packed(input, hx)  # type: ignore[return-value]
        return self.forward_tensor(input, hx)


# ---------- cells ----------

class RNNCellBase(torch.nn.Module):
    _FLOAT_MODULE: Any = torch.nn.RNNCellBase

    input_size: int
    hidden_size: int
    bias: bool
    is_float16: bool
    gates: int
    cell_name: str

    def __init__(self, input_size: int, hidden_size: int, bias: bool, gates: int, dtype: Any) -> None:
        super().__init__()
        dtype = _weight_dtype(dtype, f"dynamic {type(self).__name__}")
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"input_size and hidden_size must be positive, got {input_size}, {hidden_size}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.bias = bool(bias)
        self.is_float16 = dtype == torch.float16
        self.gates = gates
        self.cell_name = type(self).__name__  # for error messages (TorchScript has no type(self))
        self.ih = _RecurrentWeight(input_size, gates * hidden_size, bias, dtype)
        self.hh = _RecurrentWeight(hidden_size, gates * hidden_size, bias, dtype)

    @property
    def dtype(self) -> Any:
        return torch.float16 if self.is_float16 else torch.qint8

    def _get_name(self) -> str:
        return "DynamicQuantized" + type(self).__name__

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s + f", dtype={self.dtype}"

    def _check(self, input: Tensor, hx: Optional[Tensor], name: str) -> Tuple[Tensor, bool]:
        name_of_cell = self.cell_name
        if input.dim() not in (1, 2):
            raise ValueError(f"{name_of_cell}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if input.size(-1) != self.input_size:
            raise ValueError(f"{name_of_cell}: input has inconsistent input_size: got {input.size(-1)} "
                             f"expected {self.input_size}")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        if hx is not None:
            shape = [x.size(0), self.hidden_size] if batched else [self.hidden_size]
            if list(hx.shape) != shape:
                raise ValueError(f"{name_of_cell}: expected {name} of shape {shape}, got {list(hx.shape)}")
        return x, batched

    def _init_weights_from(self, mod: Any, factory: Any) -> None:
        bias_ih = mod.bias_ih if mod.bias else None
        bias_hh = mod.bias_hh if mod.bias else None
        self.ih.set_float_weights([mod.weight_ih], [bias_ih], factory)
        self.hh.set_float_weights([mod.weight_hh], [bias_hh], factory)

    @classmethod
    def from_float(cls, mod: Any, use_precomputed_fake_quant: bool = False) -> "RNNCellBase":
        """A dynamic quantized cell from a float one (its ``qconfig`` names the weight observer)."""
        float_module = cls._FLOAT_MODULE
        if type(mod) is not float_module:
            raise TypeError(f"{cls.__module__}.{cls.__name__}.from_float only works for "
                            f"{float_module.__name__}, got {type(mod)}")
        factory, dtype = _weight_observer_factory(mod)
        if cls is RNNCell:
            qmod = cls(mod.input_size, mod.hidden_size, bias=mod.bias, nonlinearity=mod.nonlinearity, dtype=dtype)
        else:
            qmod = cls(mod.input_size, mod.hidden_size, bias=mod.bias, dtype=dtype)
        qmod._init_weights_from(mod, factory)
        return qmod


class LSTMCell(RNNCellBase):
    r"""A dynamic quantized LSTM cell: mirrors ``torch.ao.nn.quantized.dynamic.LSTMCell``."""

    _FLOAT_MODULE: Any = torch.nn.LSTMCell

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = torch.qint8) -> None:
        super().__init__(input_size, hidden_size, bias, 4, dtype)

    def forward(self, input: Tensor, hx: Optional[Tuple[Tensor, Tensor]] = None) -> Tuple[Tensor, Tensor]:
        h0: Optional[Tensor] = None
        c0: Optional[Tensor] = None
        if hx is not None:
            h0, c0 = hx
        x, batched = self._check(input, h0, "hx[0]")
        self._check(input, c0, "hx[1]")
        if h0 is None or c0 is None:
            h0 = torch.zeros(x.size(0), self.hidden_size, dtype=x.dtype, device=x.device)
            c0 = h0
        elif not batched:
            h0, c0 = h0.unsqueeze(0), c0.unsqueeze(0)
        _, h, c = ops.lstm_layer_dynamic(self.ih(x), h0, c0, self.hh.packed(), self.hh.bias_, [], None, False,
                                         self.hh.reduce_range)
        if not batched:
            return h.squeeze(0), c.squeeze(0)
        return h, c


class GRUCell(RNNCellBase):
    r"""A dynamic quantized GRU cell: mirrors ``torch.ao.nn.quantized.dynamic.GRUCell``."""

    _FLOAT_MODULE: Any = torch.nn.GRUCell

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = torch.qint8) -> None:
        super().__init__(input_size, hidden_size, bias, 3, dtype)

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        x, batched = self._check(input, hx, "hx")
        if hx is None:
            h0 = torch.zeros(x.size(0), self.hidden_size, dtype=x.dtype, device=x.device)
        else:
            h0 = hx if batched else hx.unsqueeze(0)
        _, h = ops.gru_layer_dynamic(self.ih(x), h0, self.hh.packed(), self.hh.bias_, None, False,
                                     self.hh.reduce_range)
        return h if batched else h.squeeze(0)


class RNNCell(RNNCellBase):
    r"""A dynamic quantized Elman cell (tanh or relu): mirrors ``torch.ao.nn.quantized.dynamic.RNNCell``.

    Two dynamic Linear calls (input and hidden state each quantized per call),
    summed, then the nonlinearity: what the classic cell computes.
    """

    _FLOAT_MODULE: Any = torch.nn.RNNCell

    nonlinearity: str

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype: Any = torch.qint8) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, 1, dtype)
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity}"

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        x, batched = self._check(input, hx, "hx")
        if hx is None:
            h0 = torch.zeros(x.size(0), self.hidden_size, dtype=x.dtype, device=x.device)
        else:
            h0 = hx if batched else hx.unsqueeze(0)
        pre = self.ih(x) + self.hh(h0)
        h = torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)
        return h if batched else h.squeeze(0)
