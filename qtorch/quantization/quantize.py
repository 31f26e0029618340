"""The eager workflow: propagate qconfig, prepare (observers + the calibration dataflow map),
convert (swap modules, write every module's input parameters, decide each edge), and the
one-call helpers quantize / quantize_dynamic / quantize_qat."""
import copy
import functools
import inspect
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

import torch
from torch import nn

import qtorch.nn.intrinsic as nni
import qtorch.nn.intrinsic.qat as nniqat
from qtorch.quantization import _dataflow
from qtorch.quantization._dataflow import DataflowTracker, Producer
from qtorch.quantization import fake_quantize as _fq
from qtorch.quantization import observer as _obs
from qtorch.quantization.mappings import (
    PARAMS_KEEPING_MODULES,
    PASS_THROUGH_MODULES,
    get_default_dynamic_quant_module_mappings,
    get_default_qat_module_mappings,
    get_default_qconfig_propagation_list,
    get_default_static_quant_module_mappings,
)
from qtorch.quantization.qconfig import (
    QConfig,
    assert_valid_qconfig,
    default_dynamic_qconfig,
    float16_dynamic_qconfig,
    is_qconfig,
    per_channel_dynamic_qconfig,
)

__all__ = [
    "propagate_qconfig_",
    "add_observer_",
    "add_quant_dequant",
    "prepare",
    "prepare_qat",
    "convert",
    "swap_module",
    "quantize",
    "quantize_dynamic",
    "quantize_qat",
    "get_observer_dict",
    "default_eval_fn",
    "report",
]

_TRACKER_ATTR = "_qtorch_dataflow"
_HOOKS_ATTR = "_qtorch_hook_handles"
_CONVERTED_ATTR = "_qtorch_converted"
_REPORT_ATTR = "_qtorch_report"


# --- torch.ao configs: translated to qtorch's observers ------------------------------------------

def _translate_factory(factory: Any) -> Any:
    """torch.ao observer/fake-quant factories -> qtorch's (same arguments, plain dtypes)."""
    if factory is None:
        return None
    wrapped = getattr(factory, "p", None)
    if wrapped is not None and hasattr(factory, "callable_args"):
        cls = _translate_class(wrapped.func)
        keywords = {k: _translate_value(v) for k, v in wrapped.keywords.items()}
        if cls is wrapped.func and keywords == wrapped.keywords:
            return factory
        translated = _obs._PartialWrapper(functools.partial(cls, *wrapped.args, **keywords))
        translated.callable_args = dict(factory.callable_args)
        return translated
    if isinstance(factory, type):
        return _translate_class(factory)
    return factory


def _translate_class(cls: Any) -> Any:
    module = getattr(cls, "__module__", "") or ""
    if not module.startswith("torch.ao.quantization"):
        return cls
    name = cls.__name__
    if name == "FusedMovingAvgObsFakeQuantize":
        return _fq.FakeQuantize  # same arithmetic, unfused
    for namespace in (_obs, _fq):
        ours = getattr(namespace, name, None)
        if isinstance(ours, type):
            return ours
    return cls


def _translate_value(value: Any) -> Any:
    if isinstance(value, type) or hasattr(value, "callable_args"):
        return _translate_factory(value)
    return _obs.normalize_dtype(value) if not isinstance(value, (int, float, str, bool)) else value


def _translate_qconfig(qconfig: Any) -> Any:
    if qconfig is None or isinstance(qconfig, QConfig):
        return qconfig
    return QConfig(activation=_translate_factory(qconfig.activation), weight=_translate_factory(qconfig.weight))


# --- qconfig propagation ----------------------------------------------------------------------------

def propagate_qconfig_(module: nn.Module, qconfig_dict: Optional[Dict[Any, Any]] = None,
                       prepare_custom_config_dict: Optional[Dict[str, Any]] = None) -> None:
    """Gives every submodule a ``qconfig``: its own if set, else the entry for its name, else
    for its type, else its parent's. torch.ao configs are translated to qtorch's observers."""
    qconfig_dict = qconfig_dict or {}
    for key, value in qconfig_dict.items():
        assert_valid_qconfig(value, f"qconfig_dict[{key!r}]")

    def visit(mod: nn.Module, parent_qconfig: Any, prefix: str) -> None:
        qconfig = qconfig_dict.get(type(mod), parent_qconfig)
        qconfig = qconfig_dict.get(prefix, qconfig)
        qconfig = getattr(mod, "qconfig", qconfig)
        assert_valid_qconfig(qconfig, f"module '{prefix or '<root>'}' ({type(mod).__name__})")
        qconfig = _translate_qconfig(qconfig)
        mod.qconfig = qconfig
        for name, child in mod.named_children():
            visit(child, qconfig, f"{prefix}.{name}" if prefix else name)

    visit(module, None, "")


# --- what each module is in the map -------------------------------------------------------------------

def _is_observer(mod: nn.Module) -> bool:
    return isinstance(mod, (_obs.ObserverBase, _fq.FakeQuantizeBase)) or (
        hasattr(mod, "calculate_qparams") and type(mod).__module__.startswith("torch.ao.quantization")
    )


def _is_float_functional(mod: nn.Module) -> bool:
    return type(mod).__name__ == "FloatFunctional" and hasattr(mod, "add") and hasattr(mod, "cat")


def _is_quant_stub(mod: nn.Module) -> bool:
    return type(mod).__name__ == "QuantStub"


def _is_dequant_stub(mod: nn.Module) -> bool:
    return type(mod).__name__ == "DeQuantStub"


_FUNCTIONAL_OPS = ("add", "cat", "mul", "add_relu", "add_scalar", "mul_scalar", "matmul")


def _units(root: nn.Module, mapping: Dict[type, type]) -> List[Tuple[str, nn.Module, nn.Module, str]]:
    """(name, parent, module, kind) for each module the map tracks, outermost first; kinds:
    'quant', 'dequant', 'functional', 'converted' (in the mapping), 'float' (a leaf with no
    quantized counterpart). Pass-through and observer modules are not units."""
    found: List[Tuple[str, nn.Module, nn.Module, str]] = []

    def visit(mod: nn.Module, prefix: str) -> None:
        for name, child in mod.named_children():
            full = f"{prefix}.{name}" if prefix else name
            if _is_observer(child) or name == "activation_post_process":
                continue
            if getattr(child, "qconfig", None) is None:
                visit(child, full)
                continue
            if _is_quant_stub(child):
                found.append((full, mod, child, "quant"))
            elif _is_dequant_stub(child):
                found.append((full, mod, child, "dequant"))
            elif _is_float_functional(child):
                found.append((full, mod, child, "functional"))
            elif type(child) in mapping:
                found.append((full, mod, child, "converted"))
            elif isinstance(child, PASS_THROUGH_MODULES):
                continue
            elif all(_is_observer(c) for c in child._modules.values()):
                found.append((full, mod, child, "float"))
            else:
                visit(child, full)

    visit(root, "")
    return found


# --- observers ------------------------------------------------------------------------------------------

def _observer_forward_hook(module: nn.Module, inputs: Any, output: Any) -> Any:
    return module.activation_post_process(output)


def _make_activation_observer(mod: nn.Module) -> Optional[nn.Module]:
    factory = getattr(mod.qconfig, "activation", None)
    if factory is None:
        return None
    observer = factory()
    device = next(iter(list(mod.parameters()) + list(mod.buffers())), None)
    if device is not None:
        observer.to(device.device)
    return observer


def add_observer_(module: nn.Module, qconfig_propagation_list: Any = None, non_leaf_module_list: Any = None,
                  device: Any = None, custom_module_class_mapping: Any = None, mapping: Optional[Dict[type, type]] = None) -> None:
    """Attaches ``activation_post_process`` (from the qconfig) to every module whose output the
    converted model quantizes: stubs, modules to convert, float leaves in the quantized region;
    FloatFunctionals get theirs as the attribute their methods call."""
    mapping = get_default_static_quant_module_mappings() if mapping is None else mapping
    for name, parent, mod, kind in _units(module, mapping):
        if kind == "dequant":
            continue
        observer = _make_activation_observer(mod)
        if observer is None:
            continue
        if kind == "functional":
            mod.activation_post_process = observer
            continue
        mod.add_module("activation_post_process", observer)
        mod._qtorch_observer_hook = mod.register_forward_hook(_observer_forward_hook)


def get_observer_dict(mod: nn.Module, target_dict: Dict[str, Any], prefix: str = "") -> None:
    """Fills ``target_dict`` with every ``activation_post_process`` observer, by qualified name."""
    def get_prefix(p: str) -> str:
        return p if p == "" else p + "."

    if hasattr(mod, "activation_post_process"):
        target_dict[get_prefix(prefix) + "activation_post_process"] = mod.activation_post_process
    for name, child in mod.named_children():
        module_prefix = get_prefix(prefix) + name if prefix else name
        get_observer_dict(child, target_dict, module_prefix)


# --- prepare -------------------------------------------------------------------------------------------------

def _has_any_qconfig(model: nn.Module) -> bool:
    return any(getattr(m, "qconfig", None) is not None for m in model.modules())


def _install_tracking(model: nn.Module, mapping: Dict[type, type]) -> DataflowTracker:
    names = {id(m): n for n, m in model.named_modules()}
    tracker = DataflowTracker(model, names)
    tracker.convertible = mapping
    handles: List[Any] = []
    first_qconfig = None
    for name, parent, mod, kind in _units(model, mapping):
        tracker.qconfig_of[name] = mod.qconfig
        first_qconfig = first_qconfig or mod.qconfig
        if kind == "functional":
            _wrap_functional(tracker, name, mod)
            continue
        integer = kind in ("converted", "dequant", "quant")
        observer = getattr(mod, "activation_post_process", None)
        producer = None
        if kind != "dequant":
            producer_kind = Producer.MODULE if integer else Producer.FLOAT_MODULE
            producer = tracker.module_producer(name, producer_kind, mod, observer)
        handles.append(mod.register_forward_pre_hook(_pre_hook(tracker, name, integer, kind == "quant")))
        handles.append(mod.register_forward_hook(_post_hook(tracker, producer), always_call=True))
    tracker.site_observer_factory = getattr(first_qconfig, "activation", None) if first_qconfig is not None else None

    def root_pre_hook(module: nn.Module, args: Any) -> None:
        tracker.begin_forward()

    def root_post_hook(module: nn.Module, args: Any, output: Any) -> None:
        tracker.end_forward(output)

    handles.append(model.register_forward_pre_hook(root_pre_hook))
    handles.append(model.register_forward_hook(root_post_hook, always_call=True))
    object.__setattr__(model, _TRACKER_ATTR, tracker)
    object.__setattr__(model, _HOOKS_ATTR, handles)
    return tracker


def _pre_hook(tracker: DataflowTracker, name: str, integer: bool, is_quant_stub: bool) -> Callable:
    def hook(module: nn.Module, args: Any) -> None:
        if tracker._active:
            tracker.consume(name, module, args, integer, is_quant_stub)
            tracker.pause()
        else:
            tracker.ran.add(name)

    return hook


def _post_hook(tracker: DataflowTracker, producer: Optional[Producer]) -> Callable:
    def hook(module: nn.Module, args: Any, output: Any) -> Any:
        if not tracker._active:
            return None
        if producer is None:
            replaced = tracker.mark_dequant_output(args, output)
        else:
            replaced = tracker.produce(producer, module, args, output)
        tracker.resume()
        return replaced

    return hook


def _wrap_functional(tracker: DataflowTracker, name: str, ff: nn.Module) -> None:
    """FloatFunctional's ops are methods, not forward: instance attributes wrap them."""
    producer = tracker.module_producer(name, Producer.MODULE, ff, getattr(ff, "activation_post_process", None))
    for op in _FUNCTIONAL_OPS:
        original = getattr(type(ff), op, None)
        if original is None:
            continue

        def tracked(*args: Any, _original: Callable = original, _op: str = op, **kwargs: Any) -> Any:
            if not tracker._active:
                tracker.ran.add(name)
                return _original(ff, *args, **kwargs)
            tensors = [a for a in args if isinstance(a, (torch.Tensor, list, tuple))]
            tracker.consume(name, ff, tensors, True, False)
            tracker.pause()
            try:
                output = _original(ff, *args, **kwargs)
            finally:
                tracker.resume()
            target = producer
            if _op in ("add_scalar", "mul_scalar") and len(args) > 1 and isinstance(args[0], torch.Tensor):
                target = tracker.scalar_op_producer(producer, _op, float(args[1]), tracker._origin(args[0]))
            replaced = tracker.produce(target, ff, tensors, output)
            return output if replaced is None else replaced

        ff.__dict__[op] = tracked


def _remove_tracking(model: nn.Module) -> None:
    for handle in getattr(model, _HOOKS_ATTR, []):
        handle.remove()
    for attr in (_TRACKER_ATTR, _HOOKS_ATTR):
        if attr in model.__dict__:
            object.__delattr__(model, attr)
    for mod in model.modules():
        if _is_float_functional(mod):
            for op in _FUNCTIONAL_OPS:
                mod.__dict__.pop(op, None)


def prepare(model: nn.Module, inplace: bool = False, allow_list: Any = None, observer_non_leaf_module_list: Any = None,
            prepare_custom_config_dict: Optional[Dict[str, Any]] = None, mapping: Optional[Dict[type, type]] = None) -> nn.Module:
    """Inserts observers and starts the calibration dataflow map; run calibration data through
    the returned model, then ``convert`` it."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"prepare: model must be an nn.Module, got {type(model).__name__}")
    if getattr(model, _CONVERTED_ATTR, False):
        raise RuntimeError("prepare: this model is already converted; prepare the float model instead")
    if getattr(model, _TRACKER_ATTR, None) is not None:
        raise RuntimeError("prepare: this model is already prepared; calibrate it and call convert()")
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model, None)
    if not _has_any_qconfig(model):
        warnings.warn(
            "prepare: no module has a qconfig, so nothing will be quantized; set model.qconfig "
            "(e.g. qtorch.quantization.get_default_qconfig()) or qconfig on the submodules to quantize",
            stacklevel=2,
        )
        return model
    convertible = _convertible_types(mapping)
    add_observer_(model, mapping=convertible)
    _install_tracking(model, convertible)
    return model


def _convertible_types(mapping: Optional[Dict[type, type]]) -> Dict[type, Any]:
    """The module types prepare treats as converted: the default mapping's sources (whether or not
    their quantized class exists yet: convert decides again with its own mapping), and the user's."""
    types: Dict[type, Any] = {cls: None for cls in get_default_qconfig_propagation_list()}
    types.update(mapping or {})
    return types


def prepare_qat(model: nn.Module, mapping: Optional[Dict[type, type]] = None, inplace: bool = False) -> nn.Module:
    """Swaps modules for their quantization-aware-training versions (fake-quantized weights;
    ConvBn2d keeps batch norm) and inserts fake quantizers for activations."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"prepare_qat: model must be an nn.Module, got {type(model).__name__}")
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model, None)
    if not _has_any_qconfig(model):
        warnings.warn("prepare_qat: no module has a qconfig, so nothing will be quantized", stacklevel=2)
        return model
    qat_mapping = get_default_qat_module_mappings() if mapping is None else mapping
    _swap_children(model, qat_mapping)
    return prepare(model, inplace=True)


def _swap_children(module: nn.Module, mapping: Dict[type, type]) -> None:
    for name, child in list(module.named_children()):
        if getattr(child, "qconfig", None) is not None and type(child) in mapping:
            setattr(module, name, swap_module(child, mapping, {}))
        else:
            _swap_children(child, mapping)


# --- convert ------------------------------------------------------------------------------------------------

def _normalized_for_from_float(mod: nn.Module) -> nn.Module:
    """The module a quantized class's from_float expects: QAT conv+bn folded, float conv+bn
    folded, torch.ao's fused modules as qtorch's (same children)."""
    carried = {k: getattr(mod, k) for k in ("qconfig", "activation_post_process") if hasattr(mod, k)}
    result = mod
    if isinstance(mod, nniqat.ConvBn2d):
        result = mod.folded_conv()
    elif type(mod).__name__ in ("ConvBn2d", "ConvBnReLU2d") and isinstance(mod, nn.Sequential):
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        conv = fuse_conv_bn_eval(mod[0].eval(), mod[1].eval())
        result = nni.ConvReLU2d(conv, mod[2]) if len(mod) == 3 else conv
    elif isinstance(mod, nn.Sequential) and type(mod).__module__.startswith("torch.ao.nn.intrinsic"):
        ours = getattr(nni, type(mod).__name__, None)
        if ours is not None:
            result = ours(*[m for n, m in mod.named_children() if n != "activation_post_process"])
    if result is not mod:
        for key, value in carried.items():
            if key == "activation_post_process":
                result.add_module(key, value) if isinstance(value, nn.Module) else setattr(result, key, value)
            else:
                setattr(result, key, value)
    return result


def swap_module(mod: nn.Module, mapping: Dict[type, type], custom_module_class_mapping: Optional[Dict] = None) -> nn.Module:
    """``mapping[type(mod)].from_float(mod)`` for a module with a qconfig (else ``mod``)."""
    if getattr(mod, "qconfig", None) is None or type(mod) not in mapping:
        return mod
    target = mapping[type(mod)]
    # QAT classes take the float (fused) module as it is; quantized classes get it normalized.
    to_qat = ".qat" in getattr(target, "__module__", "")
    new_mod = target.from_float(mod if to_qat else _normalized_for_from_float(mod))
    # Keep user hooks that are not qtorch's (observer and tracking hooks are left behind).
    for hook in mod._forward_pre_hooks.values():
        if not getattr(hook, "__qualname__", "").startswith(("_pre_hook", "prepare")) and "qtorch" not in getattr(hook, "__module__", ""):
            new_mod.register_forward_pre_hook(hook)
    for hook in mod._forward_hooks.values():
        if hook is not _observer_forward_hook and "qtorch" not in getattr(hook, "__module__", ""):
            new_mod.register_forward_hook(hook)
    return new_mod


class NotCalibrated(nn.Module):
    """Stands in for a module that never ran during calibration (it has no parameters)."""

    message: str

    def __init__(self, name: str, type_name: str) -> None:
        super().__init__()
        self.message = (
            f"'{name}' ({type_name}) never ran during calibration, so it has no quantization parameters: "
            f"calibrate with data that reaches it, or set its qconfig to None to keep it in float"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError(self.message)


class DataflowError(RuntimeError):
    """What the calibration map cannot honour (DESIGN.md): raised by convert()."""


def _scalar_op_qparams(op: str, scale: float, zero_point: int, other: float) -> Tuple[float, int]:
    from qtorch.nn.quantized.functional_modules import add_scalar_qparams, mul_scalar_qparams

    return (add_scalar_qparams if op == "add_scalar" else mul_scalar_qparams)(scale, zero_point, other)


def _qparams(producer: Producer) -> Tuple[float, int]:
    if producer.derive is not None and producer.params_from is not None:
        op, other = producer.derive
        return _scalar_op_qparams(op, *_qparams(producer.params_from), other)
    source = producer.params_source()
    if source is not producer:
        return _qparams(source)
    observer = source.observer
    if observer is None or not hasattr(observer, "calculate_qparams"):
        raise DataflowError(f"{source.describe()} has no observer to give its quantization parameters")
    scale, zero_point = observer.calculate_qparams()
    if scale.numel() != 1:
        raise DataflowError(f"{source.describe()}: activation observers must be per tensor, got {scale.numel()} scales")
    return float(scale.reshape(-1)[0]), int(zero_point.reshape(-1)[0])


def _input_qparams(name: str, mod: nn.Module, tracker: DataflowTracker) -> List[Tuple[float, int]]:
    """The parameters of each input of a converted module, checked to be the same on every call."""
    calls = list(tracker.calls.get(name, {}).values())
    chosen: List[Optional[Tuple[float, int]]] = []
    chosen_from: List[Optional[Any]] = []
    for call in calls:
        for position, origin in enumerate(call.origins):
            if origin is None:
                raise DataflowError(
                    f"convert: '{name}' ({type(mod).__name__}) received at {call.location} a tensor that no quantized "
                    f"module, observed module or observed function produced (it came from outside the quantized region, "
                    f"or through something calibration cannot see: a scripted function, a numpy round trip, a tensor "
                    f"created in forward). Put a QuantStub before it, compute that input with torch functions in "
                    f"forward, or set '{name}'.qconfig = None to keep it in float."
                )
            params = _qparams(origin.producer)
            while len(chosen) <= position:
                chosen.append(None)
                chosen_from.append(None)
            if chosen[position] is None:
                chosen[position], chosen_from[position] = params, (origin, call.location)
            elif chosen[position] != params:
                first_origin, first_location = chosen_from[position]
                raise DataflowError(
                    f"convert: '{name}' ({type(mod).__name__}) is called from several places with different input "
                    f"parameters: at {first_location} its input comes from {first_origin.producer.describe()} "
                    f"(scale {chosen[position][0]:.6g}, zero point {chosen[position][1]}), at {call.location} from "
                    f"{origin.producer.describe()} (scale {params[0]:.6g}, zero point {params[1]}). A quantized module "
                    f"holds one set of input parameters: use a separate module instance at each call site."
                )
    return [p for p in chosen if p is not None]


def _set_input_qparams(new_mod: nn.Module, params: List[Tuple[float, int]]) -> None:
    if not params:
        return
    per_operand = getattr(new_mod, "set_operand_qparams", None)  # QFunctional: one pair per operand
    if per_operand is not None and len(params) > 1:
        per_operand([s for s, _ in params], [z for _, z in params])
        return
    setter = getattr(new_mod, "set_input_qparams", None)
    if setter is not None:
        setter(*params[0])


def _float_reasons(tracker: DataflowTracker, converted: Set[str]) -> Dict[str, List[str]]:
    """Producer name -> why its output edge is float (empty: integer). A consumer that stays
    float after all (no quantized class in convert's mapping) is a real-valued use too."""
    reasons: Dict[str, List[str]] = {}
    for producer in tracker.producers.values():
        why = list(producer.real_uses)
        why += [f"'{c}' has no quantized class in convert's mapping and runs in float"
                for c in sorted(producer.integer_consumers - converted)]
        reasons[producer.name] = why
    return reasons


def _edge_report(tracker: DataflowTracker, converted: Set[str]) -> List[str]:
    lines: List[str] = []
    reasons = _float_reasons(tracker, converted)
    for producer in list(tracker.producers.values()) + list(tracker.site_producers.values()):
        if producer.kind == Producer.MODULE and producer.name in converted:
            why = reasons.get(producer.name)
            if why:
                lines.append(f"float   {producer.describe()} emits float output, because: " + "; ".join(why))
                for use in producer.integer_uses:
                    lines.append(f"          and its integer consumer {use} quantizes that float input again")
            else:
                for use in producer.integer_uses:
                    lines.append(f"integer {producer.describe()} -> {use}")
        elif producer.integer_uses:
            source = producer.params_source()
            params = "the parameters of its input" if source is not producer else "this edge's own observer"
            for use in producer.integer_uses:
                lines.append(f"float   {producer.describe()} -> {use}: runs in float; the consumer quantizes with {params}")
    return lines


def convert(module: nn.Module, mapping: Optional[Dict[type, type]] = None, inplace: bool = False,
            remove_qconfig: bool = True, is_reference: bool = False, convert_custom_config_dict: Any = None,
            report: bool = False) -> nn.Module:
    """Replaces each calibrated module by its quantized counterpart (``mapping``: float class ->
    quantized class), writes every quantized module's input parameters from the calibration
    map and decides each edge (integer, or float where a use needs real values).
    ``report=True`` prints every edge and why (also ``qtorch.quantization.report(model)``)."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"convert: module must be an nn.Module, got {type(module).__name__}")
    if getattr(module, _CONVERTED_ATTR, False):
        raise RuntimeError("convert: this model is already converted (convert it once, from the prepared model)")
    tracker: Optional[DataflowTracker] = getattr(module, _TRACKER_ATTR, None)
    if tracker is None:
        raise RuntimeError(
            "convert: this model was not prepared by qtorch.quantization.prepare() or prepare_qat(); "
            "prepare it, run calibration data through it, then convert"
        )
    if tracker.forward_count == 0:
        raise DataflowError(
            "convert: called before any calibration: the prepared model never ran, so no observer has seen data; "
            "run representative batches through the prepared model (model(batch)) first, then convert"
        )
    if not inplace:
        module = copy.deepcopy(module)
        tracker = getattr(module, _TRACKER_ATTR)
    mapping = get_default_static_quant_module_mappings() if mapping is None else mapping
    units = _units(module, tracker.convertible)
    converted = {name for name, _, mod, kind in units if kind != "float" and type(mod) in mapping}
    float_reasons = _float_reasons(tracker, converted)
    for name, _, mod, kind in units:
        # Classic semantics: ReLU and pooling keep their input's parameters, so their consumers do too.
        calls = tracker.calls.get(name)
        if name in converted and type(mod).__name__ in PARAMS_KEEPING_MODULES and calls and name in tracker.producers:
            first = next(iter(calls.values())).origins
            if first and first[0] is not None:
                tracker.producers[name].params_from = first[0].producer
    swaps: List[Tuple[nn.Module, str, nn.Module]] = []
    not_calibrated: List[str] = []
    for name, parent, mod, kind in units:
        if name not in converted:
            continue
        if name not in tracker.ran:
            if kind == "functional":
                continue  # a FloatFunctional never called holds nothing
            not_calibrated.append(f"'{name}' ({type(mod).__name__})")
            swaps.append((parent, name, NotCalibrated(name, type(mod).__name__)))
            continue
        params = _input_qparams(name, mod, tracker) if kind != "quant" else []
        new_mod = swap_module(mod, mapping, {})
        _set_input_qparams(new_mod, params)
        if float_reasons.get(name) and hasattr(new_mod, "float_output"):
            new_mod.float_output = True
        if type(mod).__name__ in PARAMS_KEEPING_MODULES and params and hasattr(new_mod, "scale"):
            # Classic semantics: ReLU and pooling keep their input's parameters.
            new_mod.scale, new_mod.zero_point = float(params[0][0]), int(params[0][1])
        swaps.append((parent, name, new_mod))
    lines = _edge_report(tracker, converted)
    for parent, name, new_mod in swaps:
        setattr(parent, name.rsplit(".", 1)[-1], new_mod)
    _remove_observers(module)
    _remove_tracking(module)
    if remove_qconfig:
        for mod in module.modules():
            if "qconfig" in mod.__dict__:
                del mod.qconfig
    if not_calibrated:
        warnings.warn(
            "convert: these modules never ran during calibration and became placeholders that raise when called: "
            + ", ".join(not_calibrated)
            + ". Calibrate with data that reaches them, or set their qconfig to None to keep them in float.",
            stacklevel=2,
        )
    object.__setattr__(module, _CONVERTED_ATTR, True)
    object.__setattr__(module, _REPORT_ATTR, lines)
    if report:
        print(format_report(lines))
    return module


def _remove_observers(module: nn.Module) -> None:
    for mod in module.modules():
        handle = mod.__dict__.pop("_qtorch_observer_hook", None)
        if handle is not None:
            handle.remove()
        if "activation_post_process" in mod._modules and not _is_float_functional(mod):
            del mod._modules["activation_post_process"]
    for mod in list(module.modules()):
        if _is_float_functional(mod):
            # An unconverted FloatFunctional (qconfig None) runs in float: no observer.
            mod.activation_post_process = nn.Identity()


def format_report(lines: List[str]) -> str:
    if not lines:
        return "qtorch dataflow report: no edges recorded"
    return "qtorch dataflow report (each edge: integer, or float and why)\n  " + "\n  ".join(lines)


def report(model: nn.Module) -> str:
    """Every edge of a prepared-and-calibrated or converted model: integer or float, and why."""
    tracker = getattr(model, _TRACKER_ATTR, None)
    if tracker is not None:
        mapping = get_default_static_quant_module_mappings()
        converted = {name for name, _, mod, kind in _units(model, tracker.convertible) if kind != "float" and type(mod) in mapping}
        return format_report(_edge_report(tracker, converted))
    lines = getattr(model, _REPORT_ATTR, None)
    if lines is None:
        raise ValueError("report: the model was neither prepared by qtorch.quantization.prepare() nor converted by convert()")
    return format_report(lines)


# --- one-call helpers -----------------------------------------------------------------------------------------

def default_eval_fn(model: nn.Module, calib_data: Iterable[Any]) -> None:
    """Runs ``model`` on the first element of each item of ``calib_data`` (e.g. (data, target) pairs)."""
    for data, _target in calib_data:
        model(data)


def quantize(model: nn.Module, run_fn: Callable, run_args: Any, mapping: Optional[Dict[type, type]] = None,
             inplace: bool = False) -> nn.Module:
    """Post-training static quantization: prepare, ``run_fn(model, *run_args)`` to calibrate, convert."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    prepare(model, inplace=True)
    run_fn(model, *(run_args if isinstance(run_args, (list, tuple)) else (run_args,)))
    return convert(model, mapping, inplace=True)


def quantize_qat(model: nn.Module, run_fn: Callable, run_args: Any, inplace: bool = False) -> nn.Module:
    """Quantization-aware training: prepare_qat, ``run_fn(model, *run_args)`` to train, convert."""
    if not inplace:
        model = copy.deepcopy(model)
    model.train()
    prepare_qat(model, inplace=True)
    run_fn(model, *(run_args if isinstance(run_args, (list, tuple)) else (run_args,)))
    return convert(model, inplace=True)


def quantize_dynamic(model: nn.Module, qconfig_spec: Any = None, dtype: Any = torch.int8,
                     mapping: Optional[Dict[type, type]] = None, inplace: bool = False) -> nn.Module:
    """Dynamic quantization: weights quantized ahead (int8 or float16), activations at run time.

    ``qconfig_spec``: None (every nn.Linear, nn.LSTM, nn.GRU and RNN cell, as the classic API), a set of module types or names, or a dict
    {type or name: qconfig}. ``dtype``: torch.qint8/torch.int8 or torch.float16.
    """
    dtype = _obs.normalize_dtype(dtype)
    if dtype not in (torch.int8, torch.float16):
        raise ValueError(f"quantize_dynamic: dtype must be torch.qint8 (int8) or torch.float16, got {dtype}")
    default = default_dynamic_qconfig if dtype == torch.int8 else float16_dynamic_qconfig
    if qconfig_spec is None:
        qconfig_spec = {cls: default for cls in (nn.Linear, nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, nn.RNNCell)}
    elif isinstance(qconfig_spec, set):
        qconfig_spec = {key: default for key in qconfig_spec}
    elif not isinstance(qconfig_spec, dict):
        raise TypeError(f"quantize_dynamic: qconfig_spec must be None, a set or a dict, got {type(qconfig_spec).__name__}")
    mapping = get_default_dynamic_quant_module_mappings() if mapping is None else mapping
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    propagate_qconfig_(model, qconfig_spec)
    _swap_children(model, mapping)
    for mod in model.modules():
        if "qconfig" in mod.__dict__:
            del mod.qconfig
    try:  # transformer layers whose Linears became dynamic: qtorch's versions run and script
        from qtorch.nn.quantized.dynamic.transformer import swap_quantized_transformers_
    except ImportError:
        return model
    return swap_quantized_transformers_(model)


def add_quant_dequant(module: nn.Module) -> nn.Module:
    """Wraps each leaf module that has a qconfig in a QuantWrapper (quantize before, dequantize after)."""
    from qtorch.quantization.stubs import QuantWrapper

    if len(module._modules) == 0 and getattr(module, "qconfig", None) is not None:
        return QuantWrapper(module)
    for name, child in module.named_children():
        module._modules[name] = add_quant_dequant(child)
    return module
