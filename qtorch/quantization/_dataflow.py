"""The calibration dataflow map (DESIGN.md, "The central decision").

While calibration data runs through a prepared model, this records which producer made
each tensor that reaches each module convert() will replace, and every torch function
applied on the way:

- a *producer* is a module that convert() replaces (its output becomes integer), a float
  module inside the quantized region (no quantized counterpart), or the call site of a
  torch function that needs real values (it gets an observer of its own);
- a tensor carries an ``Origin`` tag: its producer, the raw-exact functions applied since
  (view, reshape, slicing, max pooling, ...), and a sequence number (to detect values
  changed in place after tagging);
- every use of a tagged tensor is either *integer* (a quantized module, or a raw-exact
  function) or *real-valued* (anything else, including values returned to Python). One
  real-valued use makes the producer's whole edge float: it emits dequantized output and
  its integer consumers quantize their float input themselves.

Tracking is cheap by construction: the torch function mode is left while a tracked module
runs (its hooks pop and push the mode), and functions without tagged inputs return at once.
"""
import os
import sys
import warnings
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

ORIGIN_ATTR = "_qtorch_origin"

_THIS_DIR = os.path.dirname(os.path.abspath(__file__))
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))
_QTORCH_DIR = os.path.dirname(_THIS_DIR)


class Producer:
    """Where an edge starts: a converted module, a float module in the region, or a call site."""

    MODULE = "quantized module"
    FLOAT_MODULE = "float module"
    SITE = "function"

    def __init__(self, name: str, kind: str, observer: Optional[nn.Module] = None,
                 params_from: Optional["Producer"] = None, location: str = "", module: Optional[nn.Module] = None) -> None:
        self.name = name
        self.kind = kind
        self.observer = observer          # gives this edge's parameters (calculate_qparams)
        self.params_from = params_from    # or: the parameters are another producer's (relu, pooling, mean)
        self.location = location
        self.module = module
        self.real_uses: Dict[str, int] = {}          # why the edge must be float -> count
        self.integer_uses: Dict[str, int] = {}       # integer consumers (with the path) -> count
        self.integer_consumers: Set[str] = set()     # their module names
        self.derive: Optional[Tuple[str, float]] = None  # add_scalar/mul_scalar: parameters follow params_from's
        self.owner: Optional["Producer"] = None      # the module producer whose output flag this edge shares

    def params_source(self) -> "Producer":
        source = self
        while source.params_from is not None and source.derive is None:
            source = source.params_from
        return source

    def add_real_use(self, reason: str) -> None:
        self.real_uses[reason] = self.real_uses.get(reason, 0) + 1
        if self.owner is not None:
            self.owner.add_real_use(reason)

    def add_integer_use(self, reason: str) -> None:
        self.integer_uses[reason] = self.integer_uses.get(reason, 0) + 1

    def describe(self) -> str:
        where = f" at {self.location}" if self.location else ""
        return f"{self.kind} '{self.name}'{where}"


class Origin:
    """The tag a tracked tensor carries."""

    __slots__ = ("producer", "path", "seq")

    def __init__(self, producer: Producer, path: Tuple[str, ...], seq: int) -> None:
        self.producer = producer
        self.path = path
        self.seq = seq


class Call:
    """One call of a module convert() replaces: the origin of each tensor input."""

    __slots__ = ("origins", "location")

    def __init__(self, origins: Tuple[Optional[Origin], ...], location: str) -> None:
        self.origins = origins
        self.location = location


# --- classification of torch functions -------------------------------------------------------

def _func_name(func: Any) -> str:
    name = getattr(func, "__name__", None)
    if name == "__get__":  # a Tensor property (shape, T, data, ...)
        owner = getattr(func, "__self__", None)
        return getattr(owner, "__name__", "__get__")
    return name or repr(func)


# Metadata: no values are read.
_METADATA = frozenset({
    "size", "dim", "shape", "ndim", "numel", "nelement", "dtype", "device", "is_contiguous", "__len__", "stride",
    "element_size", "layout", "requires_grad", "is_floating_point", "is_complex", "is_quantized", "names",
    "is_sparse", "storage_offset", "data_ptr", "get_device", "is_cuda", "is_cpu", "is_mkldnn", "grad_fn",
    "_version", "is_leaf", "requires_grad_", "retain_grad", "untyped_storage", "_base", "grad", "is_inference",
    "__hash__", "__format__", "__repr__", "__reduce_ex__", "has_names", "is_meta", "is_nested", "itemsize",
    "nbytes", "_is_view", "is_set_to", "__dir__", "__getstate__",
})

# Exact on raw integers with unchanged parameters: the integer tensor passes through.
_EXACT = frozenset({
    "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "permute", "transpose", "t", "T", "mT",
    "squeeze", "unsqueeze", "contiguous", "__getitem__", "narrow", "select", "chunk", "split", "tensor_split",
    "unbind", "expand", "expand_as", "movedim", "moveaxis", "swapaxes", "swapdims", "flip", "roll", "repeat",
    "tile", "max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices", "pixel_shuffle",
    "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle", "detach", "clone", "upsample_nearest2d",
    "upsample_nearest1d", "upsample", "upsample_nearest", "upsample_bilinear",
})

# Need real values but keep the parameters of their input (the classic quantized kernels'
# semantics): the edge is float, the consumer quantizes with the producer's parameters.
_KEEPS_PARAMS = frozenset({
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
    "avg_pool1d", "avg_pool2d", "mean", "dropout", "dropout_", "clamp", "clamp_", "clip", "clip_",
    "adaptive_max_pool2d", "max", "min", "amax", "amin", "sort", "topk", "cummax", "cummin", "hardtanh_",
})

_INPLACE_DUNDER = frozenset({"__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__setitem__",
                              "__iand__", "__ior__", "__ipow__"})

# Reductions that return indices alongside values: only the values are tagged.
_INTERPOLATE_EXACT_MODES = ("nearest", "bilinear")


def _category(func: Any, name: str, args: Sequence[Any], kwargs: Dict[str, Any]) -> str:
    if name in _METADATA:
        return "metadata"
    if "out" in kwargs and kwargs["out"] is not None:
        return "inplace"
    if name in _INPLACE_DUNDER or (name.endswith("_") and not name.endswith("__") and name not in ("dropout_",)):
        return "inplace"
    if name == "interpolate":
        mode = kwargs.get("mode", args[3] if len(args) > 3 else "nearest")
        return "exact" if mode in _INTERPOLATE_EXACT_MODES else "real"
    if name in ("dropout", "dropout1d", "dropout2d", "feature_alpha_dropout", "alpha_dropout"):
        training = kwargs.get("training", args[2] if len(args) > 2 else True)
        return "exact" if not training else "real"
    if name in _EXACT:
        return "exact"
    if name in _KEEPS_PARAMS:
        return "keep"
    return "real"


def _tagged_inputs(args: Sequence[Any], kwargs: Dict[str, Any]) -> List[Tuple[torch.Tensor, Origin]]:
    found: List[Tuple[torch.Tensor, Origin]] = []
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            origin = getattr(value, ORIGIN_ATTR, None)
            if origin is not None:
                found.append((value, origin))
        elif isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, torch.Tensor):
                    origin = getattr(item, ORIGIN_ATTR, None)
                    if origin is not None:
                        found.append((item, origin))
    return found


def _output_tensors(output: Any) -> List[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (list, tuple)):
        return [t for t in output if isinstance(t, torch.Tensor)]
    return []


def _storage_key(t: torch.Tensor) -> int:
    try:
        return t.untyped_storage().data_ptr()
    except Exception:  # noqa: BLE001 - tensors without storage (meta, functional) cannot alias
        return -1


_INTERNAL_CODE: Dict[Any, bool] = {}


def _is_internal(code: Any) -> bool:
    internal = _INTERNAL_CODE.get(code)
    if internal is None:
        filename = code.co_filename
        internal = filename.startswith(_TORCH_DIR) or filename.startswith(_THIS_DIR) or filename.startswith("<")
        _INTERNAL_CODE[code] = internal
    return internal


def user_frame() -> Tuple[str, Any]:
    """The innermost caller outside torch and qtorch.quantization: 'file:line' and its frame."""
    frame = sys._getframe(1)
    while frame is not None:
        if not _is_internal(frame.f_code):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}", frame
        frame = frame.f_back
    return "<unknown>", None


def _user_frame_fast() -> Any:
    frame = sys._getframe(2)
    while frame is not None and _is_internal(frame.f_code):
        frame = frame.f_back
    return frame


_NAMES: Dict[Any, str] = {}


class _TrackingMode(TorchFunctionMode):
    def __init__(self, tracker: "DataflowTracker") -> None:
        super().__init__()
        self.tracker = tracker

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Optional[Dict[str, Any]] = None) -> Any:
        kwargs = kwargs or {}
        tagged = _tagged_inputs(args, kwargs)
        if not tagged:
            return func(*args, **kwargs)
        return self.tracker.on_function(func, args, kwargs, tagged)


class DataflowTracker:
    """Built by prepare(); hooks on the model feed it; convert() reads it."""

    def __init__(self, root: nn.Module, names: Dict[int, str]) -> None:
        self.names = names                         # id(module) -> qualified name
        self.mode = _TrackingMode(self)
        self.forward_count = 0
        self.producers: Dict[str, Producer] = {}  # by name
        self.site_producers: Dict[Tuple[Any, ...], Producer] = {}
        # converted module name -> one Call per distinct combination of input producers
        self.calls: Dict[str, Dict[Tuple[Any, ...], Call]] = {}
        self.ran: Set[str] = set()                 # modules (and FloatFunctionals) that ran
        self.site_observer_factory = None          # set by prepare: default activation observer factory
        self.site_observers = nn.ModuleDict()
        self._seq = 0
        self._depth = 0
        self._active = False
        self._paused = 0
        self._occurrences: Dict[Tuple[Any, ...], int] = {}
        self._sites: Dict[Tuple[Any, ...], Tuple[Any, ...]] = {}  # call site -> (location, scope, qconfig, reason, key)
        self._modified: Dict[int, Tuple[int, Origin]] = {}  # storage -> (seq, new origin) of the last in-place change
        self.qconfig_of: Dict[str, Any] = {}
        self.convertible: Dict[type, Any] = {}     # the module types prepare treated as converted

    # --- the forward of the whole model -------------------------------------------------------
    def begin_forward(self) -> None:
        self._depth += 1
        if self._depth > 1:
            return
        self._occurrences.clear()
        self._modified.clear()
        self._active = True
        self.mode.__enter__()

    def end_forward(self, output: Any) -> None:
        self._depth -= 1
        if self._depth > 0:
            return
        self._active = False
        self.mode.__exit__(None, None, None)
        self.forward_count += 1
        for t in _flatten(output):
            origin = self._origin(t)
            if origin is not None:
                origin.producer.add_real_use("returned from the model's forward")
        self._modified.clear()

    # --- tagging --------------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def tag(self, t: torch.Tensor, producer: Producer, path: Tuple[str, ...] = ()) -> None:
        try:
            setattr(t, ORIGIN_ATTR, Origin(producer, path, self._next_seq()))
        except Exception:  # noqa: BLE001 - a tensor that takes no attributes stays untracked
            pass

    def _origin(self, t: torch.Tensor) -> Optional[Origin]:
        origin = getattr(t, ORIGIN_ATTR, None)
        if origin is None:
            return None
        if self._modified:
            change = self._modified.get(_storage_key(t))
            if change is not None and change[0] > origin.seq:
                return change[1]  # changed in place after it was tagged (through an alias)
        return origin

    # --- pausing while a tracked module runs -------------------------------------------------------
    def pause(self) -> None:
        if self._active:
            if self._paused == 0:
                torch.overrides._pop_mode()
            self._paused += 1

    def resume(self) -> None:
        if self._active and self._paused > 0:
            self._paused -= 1
            if self._paused == 0:
                torch.overrides._push_mode(self.mode)

    # --- producers --------------------------------------------------------------------------------
    def module_producer(self, name: str, kind: str, module: nn.Module, observer: Optional[nn.Module]) -> Producer:
        producer = self.producers.get(name)
        if producer is None:
            producer = Producer(name, kind, observer=observer, module=module)
            self.producers[name] = producer
        return producer

    def scalar_op_producer(self, owner: Producer, op: str, other: float, input_origin: Optional[Origin]) -> Producer:
        """add_scalar / mul_scalar of a FloatFunctional: the classic kernels derive the output
        parameters from the input's, no observer involved."""
        key = (owner.name, op, float(other), id(input_origin.producer) if input_origin is not None else None)
        producer = self.site_producers.get(key)
        if producer is None:
            producer = Producer(f"{owner.name}.{op}", Producer.MODULE, module=owner.module,
                                params_from=input_origin.producer if input_origin is not None else None)
            producer.derive = (op, float(other))
            producer.owner = owner
            self.site_producers[key] = producer
        return producer

    def _site_producer(self, key: Tuple[Any, ...], fn: str, location: str, scope: str,
                       params_from: Optional[Producer], qconfig: Any) -> Producer:
        producer = self.site_producers.get(key)
        if producer is None:
            name = f"{fn}" + (f" in '{scope}'" if scope else "")
            observer = None
            if params_from is None:
                factory = getattr(qconfig, "activation", None) if qconfig is not None else None
                factory = factory or self.site_observer_factory
                observer = factory() if factory is not None else None
                if observer is not None:
                    self.site_observers[f"site{len(self.site_observers)}"] = observer
            producer = Producer(name, Producer.SITE, observer=observer, params_from=params_from, location=location)
            self.site_producers[key] = producer
        return producer

    # --- torch functions on tagged tensors ----------------------------------------------------------
    def on_function(self, func: Any, args: Sequence[Any], kwargs: Dict[str, Any],
                    tagged: List[Tuple[torch.Tensor, Origin]]) -> Any:
        name = _NAMES.get(func)
        if name is None:
            name = _NAMES[func] = _func_name(func)
        category = _category(func, name, args, kwargs)
        if category == "metadata":
            return func(*args, **kwargs)
        origins = [self._origin(t) or o for t, o in tagged]
        if category == "exact" and isinstance(args[0] if args else None, torch.Tensor) and tagged[0][0] is args[0]:
            result = func(*args, **kwargs)
            source = origins[0]
            for t in _output_tensors(result):
                if t.is_floating_point() or t.dtype == torch.uint8:
                    self.tag(t, source.producer, source.path + (name,))
            return result

        frame = _user_frame_fast()
        owner = frame.f_locals.get("self") if frame is not None else None
        site_key = (frame.f_code if frame is not None else None, frame.f_lineno if frame is not None else 0, name, id(owner))
        site = self._sites.get(site_key)
        if site is None:
            location = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else "<unknown>"
            scope = ""
            qconfig = None
            if isinstance(owner, nn.Module):
                scope = self.names.get(id(owner), type(owner).__name__)
                qconfig = getattr(owner, "qconfig", None)
            reason = f"{name}() at {location}" + (f" (in '{scope}')" if scope else "")
            site = (location, scope, qconfig, reason, (scope, location, name))
            self._sites[site_key] = site
        location, scope, qconfig, reason, key = site
        if qconfig is None:
            qconfig = self.qconfig_of.get(origins[0].producer.name)
        occurrence = self._occurrences.get(key, 0)
        self._occurrences[key] = occurrence + 1
        for origin in origins:
            origin.producer.add_real_use(reason)

        if category == "inplace":
            target = args[0] if args and isinstance(args[0], torch.Tensor) else kwargs.get("out")
            keeps = name.rstrip("_") in _KEEPS_PARAMS
            result = func(*args, **kwargs)
            if isinstance(target, torch.Tensor) and target.is_floating_point():
                params_from = origins[0].producer if keeps and tagged[0][0] is target else None
                producer = self._site_producer(key + (occurrence,), name, location, scope, params_from, qconfig)
                if producer.observer is not None:
                    producer.observer(target.detach())
                self.tag(target, producer)
                self._modified[_storage_key(target)] = (self._seq, getattr(target, ORIGIN_ATTR))
            return result

        result = func(*args, **kwargs)
        outputs = _output_tensors(result)
        if name in ("max", "min", "sort", "topk", "cummax", "cummin") and isinstance(result, tuple):
            outputs = outputs[:1]  # values, not indices
        float_outputs = [t for t in outputs if t.is_floating_point()]
        if not float_outputs:
            return result
        params_from = origins[0].producer if category == "keep" and len(origins) == 1 else None
        producer = self._site_producer(key + (occurrence,), name, location, scope, params_from, qconfig)
        observer = producer.observer
        if observer is not None and isinstance(result, torch.Tensor):
            # An observer that fake-quantizes (QAT) simulates the consumer's quantization.
            observed = observer(result)
            result = observed if isinstance(observed, torch.Tensor) else result
            float_outputs = [result]
        elif observer is not None:
            for t in float_outputs:
                observer(t.detach())
        for t in float_outputs:
            self.tag(t, producer)
        if args and result is args[0]:  # changed in place (e.g. F.relu(x, inplace=True))
            self._modified[_storage_key(result)] = (self._seq, getattr(result, ORIGIN_ATTR))
        return result

    # --- module hooks -------------------------------------------------------------------------------
    def consume(self, name: str, module: nn.Module, inputs: Sequence[Any], integer: bool, is_quant_stub: bool) -> None:
        """A tracked module receives its inputs (pre-hook)."""
        self.ran.add(name)
        tensors = [t for t in _flatten(inputs) if isinstance(t, torch.Tensor)]
        origins = tuple(self._origin(t) for t in tensors)
        if not integer or is_quant_stub:
            reason = (f"'{name}' ({type(module).__name__}) quantizes its float input" if is_quant_stub
                      else f"'{name}' ({type(module).__name__}, no quantized counterpart) runs in float")
            for origin in origins:
                if origin is not None:
                    origin.producer.add_real_use(reason)
            return
        signature = tuple(None if o is None else (id(o.producer), o.path) for o in origins)
        known = self.calls.setdefault(name, {})
        if signature not in known:
            location, _ = user_frame()
            known[signature] = Call(origins, location)
        for origin in origins:
            if origin is not None:
                via = f" via {'/'.join(origin.path)}" if origin.path else ""
                origin.producer.add_integer_use(f"'{name}' ({type(module).__name__}){via}")
                origin.producer.integer_consumers.add(name)

    def produce(self, producer: Producer, module: nn.Module, inputs: Sequence[Any], output: Any) -> Any:
        """A tracked module returns (forward hook): tag its output. When the output object is one
        of the inputs (identity-like modules, in-place ReLU), a new alias carries the tag so the
        input object keeps its own; an in-place change is recorded so older aliases learn it."""
        if isinstance(output, torch.Tensor):
            if any(output is t for t in _flatten(inputs)):
                output = output.view_as(output)
                self.tag(output, producer)
                if getattr(module, "inplace", False):
                    self._modified[_storage_key(output)] = (self._seq, getattr(output, ORIGIN_ATTR))
                return output
            self.tag(output, producer)
            return None
        for t in _output_tensors(output):
            self.tag(t, producer)
        return None

    def mark_dequant_output(self, inputs: Sequence[Any], output: Any) -> Any:
        """DeQuantStub: its output is plain float, outside the map (a new object if it is the input)."""
        if isinstance(output, torch.Tensor) and getattr(output, ORIGIN_ATTR, None) is not None:
            output = output.view_as(output)
            try:
                delattr(output, ORIGIN_ATTR)
            except AttributeError:
                pass
            return output
        return None


def _flatten(value: Any) -> List[Any]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        out: List[Any] = []
        for item in value:
            out.extend(_flatten(item))
        return out
    if isinstance(value, dict):
        out = []
        for item in value.values():
            out.extend(_flatten(item))
        return out
    return []
