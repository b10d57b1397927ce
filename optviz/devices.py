"""Torch devices named by users: checked before any work, in one line.

``check_device("cuda")`` returns ``torch.device("cuda")`` where a GPU is there, and
otherwise raises :class:`~optviz.errors.InvalidValue` saying what is available:
a typo (``--device gpu``), an absent accelerator (``cuda`` on a laptop) or an index
past the last device (``cuda:3`` on one GPU) is bad input (exit code 2), found
before a model is built or a file is read.

>>> check_device("cpu")
device(type='cpu')
"""
from __future__ import annotations

from typing import List, Optional

from .errors import InvalidValue

__all__ = ["check_device", "parse_device", "available_devices", "DEVICE_TYPES"]

#: The device types a user can name (torch knows more: meta, xla, ... are not for training here).
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def _count(kind: str) -> int:
    """How many devices of ``kind`` this machine has (0 where the backend is absent)."""
    import torch

    if kind == "cpu":
        return 1
    if kind == "mps":
        backend = getattr(torch.backends, "mps", None)
        return int(bool(backend is not None and backend.is_available()))
    module = getattr(torch, kind, None)
    try:
        if module is None or not module.is_available():
            return 0
        return int(module.device_count())
    except Exception:  # noqa: BLE001  (a broken driver is an absent device)
        return 0


def _why_absent(kind: str) -> str:
    import torch

    if kind == "cuda" and not torch.backends.cuda.is_built():
        return f"this torch {torch.__version__} was built without CUDA"
    return f"no {kind} device found on this machine"


def available_devices() -> List[str]:
    """The devices a run can use here, e.g. ``["cpu", "cuda", "cuda:0", "cuda:1"]``."""
    out = ["cpu"]
    for kind in DEVICE_TYPES[1:]:
        n = _count(kind)
        if n:
            out.append(kind)
            if kind != "mps":
                out += [f"{kind}:{i}" for i in range(n)]
    return out


def _here() -> str:
    """The devices here, for an error message (counted only when one is raised)."""
    return ", ".join(available_devices())


def parse_device(text: Optional[str]):
    """``text`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; None means cpu) as a
    ``torch.device`` of a type that can train, whether or not this machine has one (a
    study's shards may run elsewhere), or :class:`InvalidValue`."""
    import torch

    if text is None:
        return torch.device("cpu")
    if not isinstance(text, (str, torch.device)):
        raise InvalidValue(f"a device is a name such as cpu or cuda, got {text!r}")
    try:
        device = torch.device(str(text).strip().lower())
    except (RuntimeError, ValueError):
        raise InvalidValue(f"unknown device {str(text)!r}; devices here: {_here()}") from None
    if device.type not in DEVICE_TYPES:
        raise InvalidValue(f"device type {device.type!r} cannot run training; devices here: {_here()}")
    if device.type == "cpu" and device.index not in (None, 0):
        raise InvalidValue(f"device {str(text)!r} does not exist; devices here: {_here()}")
    return device


def check_device(text: Optional[str]):
    """:func:`parse_device`, and the device exists on this machine; else :class:`InvalidValue`."""
    device = parse_device(text)
    n = _count(device.type)
    if n == 0:
        raise InvalidValue(f"device {str(text)!r} is not available: {_why_absent(device.type)}; "
                           f"devices here: {_here()}")
    if device.index is not None and device.index >= n:
        raise InvalidValue(f"device {str(text)!r} does not exist: this machine has {n} {device.type} "
                           f"device{'s' if n != 1 else ''}; devices here: {_here()}")
    return device
