"""fuse_modules: group conv/linear with the batch norm and ReLU that follow them.

Eval-mode fusion folds batch norm into the conv/linear weights; QAT fusion (``is_qat=True``,
or modules in training mode) keeps batch norm inside ConvBn2d/ConvBnReLU2d so it keeps
training. The first named module becomes the fused module; the others become nn.Identity.
"""
import copy
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

import qtorch.nn.intrinsic as nni

__all__ = ["fuse_modules", "fuse_modules_qat", "fuse_known_modules", "get_fuser_method"]


def _check_same_mode(*mods: nn.Module) -> None:
    if len({m.training for m in mods}) != 1:
        names = ", ".join(f"{type(m).__name__}(training={m.training})" for m in mods)
        raise ValueError(f"modules to fuse must all be in training mode or all in eval mode: {names}")


def _fuse_conv_bn(is_qat: bool, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Module:
    _check_same_mode(conv, bn)
    if is_qat:
        return nni.ConvBn2d(conv, bn)
    return fuse_conv_bn_eval(conv, bn)


def _fuse_conv_bn_relu(is_qat: bool, conv: nn.Conv2d, bn: nn.BatchNorm2d, relu: nn.ReLU) -> nn.Module:
    _check_same_mode(conv, bn, relu)
    if is_qat:
        return nni.ConvBnReLU2d(conv, bn, relu)
    return nni.ConvReLU2d(fuse_conv_bn_eval(conv, bn), relu)


def _fuse_linear_bn(is_qat: bool, linear: nn.Linear, bn: nn.BatchNorm1d) -> nn.Module:
    _check_same_mode(linear, bn)
    if is_qat:
        return nni.LinearBn1d(linear, bn)
    return fuse_linear_bn_eval(linear, bn)


_DEFAULT_FUSERS: Dict[Tuple[type, ...], Callable[..., nn.Module]] = {
    (nn.Conv2d, nn.BatchNorm2d): _fuse_conv_bn,
    (nn.Conv2d, nn.BatchNorm2d, nn.ReLU): _fuse_conv_bn_relu,
    (nn.Conv2d, nn.ReLU): lambda is_qat, conv, relu: nni.ConvReLU2d(conv, relu),
    (nn.Linear, nn.ReLU): lambda is_qat, linear, relu: nni.LinearReLU(linear, relu),
    (nn.Linear, nn.BatchNorm1d): _fuse_linear_bn,
    (nn.BatchNorm2d, nn.ReLU): lambda is_qat, bn, relu: nni.BNReLU2d(bn, relu),
}


def get_fuser_method(types: Tuple[type, ...], additional: Optional[Dict] = None) -> Optional[Callable[..., nn.Module]]:
    """The function that fuses modules of these types, or None."""
    table = {**_DEFAULT_FUSERS, **(additional or {})}
    return table.get(tuple(types))


def fuse_known_modules(mod_list: List[nn.Module], is_qat: bool, additional_fuser_method_mapping: Optional[Dict] = None) -> List[nn.Module]:
    """[fused, Identity, ...] for a supported sequence; forward hooks move to the fused module."""
    types = tuple(type(m) for m in mod_list)
    fuser = get_fuser_method(types, additional_fuser_method_mapping)
    if fuser is None:
        supported = "; ".join("[" + ", ".join(t.__name__ for t in k) + "]" for k in _DEFAULT_FUSERS)
        raise ValueError(
            f"cannot fuse modules of types [{', '.join(t.__name__ for t in types)}]; supported sequences: {supported}"
        )
    fused = fuser(is_qat, *mod_list)
    for pre_hook in mod_list[0]._forward_pre_hooks.values():
        fused.register_forward_pre_hook(pre_hook)
    mod_list[0]._forward_pre_hooks.clear()
    for hook in mod_list[-1]._forward_hooks.values():
        fused.register_forward_hook(hook)
    mod_list[-1]._forward_hooks.clear()
    new_mods: List[nn.Module] = [fused]
    for _ in mod_list[1:]:
        identity = nn.Identity()
        identity.training = mod_list[0].training
        new_mods.append(identity)
    return new_mods


def _get_module(model: nn.Module, name: str) -> nn.Module:
    current = model
    walked = []
    for token in name.split("."):
        walked.append(token)
        child = current._modules.get(token) if hasattr(current, "_modules") else None
        if child is None:
            raise ValueError(f"fuse_modules: model has no submodule {'.'.join(walked)!r} (in {name!r})")
        current = child
    return current


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    *parents, last = name.split(".")
    current = model
    for token in parents:
        current = getattr(current, token)
    setattr(current, last, module)


def _fuse_group(model: nn.Module, names: Sequence[str], is_qat: Optional[bool], fuser_func: Callable, custom: Dict) -> None:
    if len(names) < 2:
        raise ValueError(f"fuse_modules: a group needs at least two module names, got {list(names)}")
    mods = [_get_module(model, name) for name in names]
    qat = mods[0].training if is_qat is None else is_qat
    new_mods = fuser_func(mods, qat, custom.get("additional_fuser_method_mapping", {}))
    for name, new_mod in zip(names, new_mods):
        _set_module(model, name, new_mod)


def fuse_modules(
    model: nn.Module,
    modules_to_fuse: Union[Sequence[str], Sequence[Sequence[str]]],
    inplace: bool = False,
    fuser_func: Callable = fuse_known_modules,
    fuse_custom_config_dict: Optional[Dict[str, Any]] = None,
    is_qat: Optional[bool] = None,
) -> nn.Module:
    """Fuses each list of module names (or one list) into one module.

    Supported: [Conv2d, BatchNorm2d], [Conv2d, BatchNorm2d, ReLU], [Conv2d, ReLU], [Linear, ReLU],
    [Linear, BatchNorm1d], [BatchNorm2d, ReLU]. ``is_qat=None`` decides from the modules' mode:
    eval folds batch norm, training keeps it for quantization-aware training.
    Returns a fused copy unless ``inplace``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"fuse_modules: model must be an nn.Module, got {type(model).__name__}")
    if isinstance(modules_to_fuse, str) or not isinstance(modules_to_fuse, (list, tuple)):
        raise TypeError("fuse_modules: modules_to_fuse must be a list of module names or a list of such lists")
    if not inplace:
        model = copy.deepcopy(model)
    custom = fuse_custom_config_dict or {}
    if all(isinstance(item, str) for item in modules_to_fuse):
        _fuse_group(model, modules_to_fuse, is_qat, fuser_func, custom)  # type: ignore[arg-type]
    else:
        for group in modules_to_fuse:
            if isinstance(group, str) or not all(isinstance(n, str) for n in group):
                raise TypeError("fuse_modules: modules_to_fuse must be a list of module names or a list of such lists")
            _fuse_group(model, group, is_qat, fuser_func, custom)
    return model


def fuse_modules_qat(model: nn.Module, modules_to_fuse: Any, inplace: bool = False,
                     fuser_func: Callable = fuse_known_modules, fuse_custom_config_dict: Optional[Dict[str, Any]] = None) -> nn.Module:
    """fuse_modules for quantization-aware training: batch norm stays in ConvBn2d/ConvBnReLU2d."""
    return fuse_modules(model, modules_to_fuse, inplace, fuser_func, fuse_custom_config_dict, is_qat=True)
