"""What crosses between the judge and the learner's process: plain data, and nothing that runs on load.

When a notebook is graded, the checks (the judge) run in the grader's process and the learner's code
runs in its own kernel. They exchange *observations*: ``None``, booleans, numbers, strings, bytes,
tuples, lists, sets and dicts of these, tensors and NumPy arrays (their bytes, dtype, shape and autograd
flags), dtypes, devices and sizes. Anything else stays where it lives and travels as a reference
(:class:`Ref`): a number that names the object on the other side, with its type's name.

The format is a JSON header followed by the raw bytes of every tensor and array. Decoding it runs no
code of the sender's: JSON, then ``torch.frombuffer`` / ``numpy.frombuffer`` on bytes whose size the
header declares and the decoder checks. No pickle, ever, in the direction that matters (from the learner's
kernel to the judge); the other direction uses the same format for simplicity.
"""

from __future__ import annotations

import json
import math
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

MAGIC = b"AGW1"
_HEADER = struct.Struct("!4sI")

# Bounds on what a reply may declare: a kernel's reply is untrusted input.
MAX_DEPTH = 64
MAX_ITEMS = 2_000_000
MAX_BYTES = 1 << 31


class CodecError(ValueError):
    """A message that is not well formed, or a value that cannot travel."""


@dataclass(frozen=True)
class Ref:
    """An object that stayed on the other side: its handle and what is known of its type."""

    id: int
    type: str  # "module.QualName" of its class
    mro: tuple[str, ...] = ()  # its class's bases, each "module.QualName", the class itself first
    callable: bool = False
    is_class: bool = False
    name: str = ""  # __name__, for functions and classes
    bases: tuple[str, ...] = ()  # for a class: its own MRO ("module.QualName"), itself first

    def meta(self) -> dict:
        return {"#": "ref", "R": self.id, "ty": self.type, "mro": list(self.mro), "c": self.callable, "k": self.is_class,
                "n": self.name, "b": list(self.bases)}

    @classmethod
    def from_meta(cls, data: dict) -> "Ref":
        def names(key):
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise CodecError("a reference's type names are not strings")
            return tuple(value[:200])

        if type(data.get("R")) is not int or not isinstance(data.get("ty"), str):
            raise CodecError("a reference without an id or a type")
        return cls(data["R"], data["ty"][:500], names("mro"), bool(data.get("c")), bool(data.get("k")),
                   str(data.get("n", ""))[:200], names("b"))


@dataclass(frozen=True)
class Imported:
    """A function or class that both sides can import by name (``module:qualname``)."""

    path: str


def qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def describe_type(obj: Any) -> dict:
    """What a reference says about ``obj``'s type."""
    cls = type(obj)
    info = {"ty": qualified(cls), "mro": [qualified(c) for c in cls.__mro__], "c": callable(obj),
            "k": isinstance(obj, type), "n": "", "b": []}
    if isinstance(obj, type):
        info["n"] = obj.__name__
        try:
            info["b"] = [qualified(c) for c in obj.__mro__]
        except Exception:
            pass
    elif callable(obj):
        name = getattr(obj, "__name__", "")
        info["n"] = name if isinstance(name, str) else ""
    return info


@dataclass
class _Writer:
    keep: Callable[[Any], Ref] | None  # how to send what is not data (None: it cannot travel)
    translate: Callable[[Any], "Ref | Imported | None"]
    buffers: list[bytes] = field(default_factory=list)
    items: int = 0

    def buffer(self, data: bytes) -> int:
        self.buffers.append(data)
        return len(self.buffers) - 1

    def value(self, obj: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise CodecError("a value nested too deeply to travel")
        self.items += 1
        if self.items > MAX_ITEMS:
            raise CodecError("a value with too many items to travel")
        kind = type(obj)
        if obj is None or kind is bool or kind is str:
            return obj
        if kind is int:
            return obj if abs(obj) < 1 << 53 else {"#": "int", "v": str(obj)}
        if kind is float:
            return obj if math.isfinite(obj) else {"#": "float", "v": repr(obj)}
        if kind is complex:
            return {"#": "complex", "v": [self.value(obj.real, depth + 1), self.value(obj.imag, depth + 1)]}
        if kind is bytes:
            return {"#": "bytes", "v": self.buffer(obj)}
        if kind is list:
            return {"#": "list", "v": [self.value(v, depth + 1) for v in obj]}
        if kind is tuple:
            return {"#": "tuple", "v": [self.value(v, depth + 1) for v in obj]}
        if kind in (set, frozenset):
            return {"#": "frozenset" if kind is frozenset else "set", "v": [self.value(v, depth + 1) for v in obj]}
        if kind is dict or kind is OrderedDict:
            pairs = [[self.value(k, depth + 1), self.value(v, depth + 1)] for k, v in obj.items()]
            return {"#": "odict" if kind is OrderedDict else "dict", "v": pairs}
        if kind is Ref:
            return obj.meta()
        if kind is Imported:
            return {"#": "import", "v": obj.path}
        if kind is range:
            return {"#": "range", "v": [obj.start, obj.stop, obj.step]}
        special = self.torch_value(obj, depth)
        if special is not None:
            return special
        special = self.numpy_value(obj)
        if special is not None:
            return special
        known = self.translate(obj)
        if type(known) is Ref:
            return known.meta()
        if type(known) is Imported:
            return {"#": "import", "v": known.path}
        if self.keep is None:
            raise CodecError(f"{qualified(kind)} is not data: it cannot be sent to the learner's process "
                             "(build it there with probe(), or pass a reference)")
        return self.keep(obj).meta()

    def torch_value(self, obj: Any, depth: int):
        import sys

        torch = sys.modules.get("torch")
        if torch is None:
            return None
        kind = type(obj)
        if kind is torch.dtype:
            return {"#": "dtype", "v": str(obj).replace("torch.", "")}
        if kind is torch.device:
            return {"#": "device", "v": str(obj)}
        if kind is torch.Size:
            return {"#": "size", "v": [int(d) for d in obj]}
        if kind is torch.Tensor or kind is torch.nn.Parameter:
            if obj.layout != torch.strided or obj.is_quantized:
                return None
            device = str(obj.device)
            if obj.device.type == "meta":
                data = b""
            else:
                flat = obj.detach().to("cpu").contiguous().reshape(-1)
                data = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
            encoded = {"#": "tensor", "v": self.buffer(data), "dt": str(obj.dtype).replace("torch.", ""), "sh": list(obj.shape),
                       "rg": bool(obj.requires_grad), "leaf": bool(obj.is_leaf), "P": kind is torch.nn.Parameter,
                       "dev": device}
            if obj.is_leaf and obj.grad is not None and type(obj.grad) is torch.Tensor:
                encoded["g"] = self.value(obj.grad, depth + 1)
            return encoded
        return None

    def numpy_value(self, obj: Any):
        import sys

        numpy = sys.modules.get("numpy")
        if numpy is None:
            return None
        if type(obj) is numpy.ndarray and obj.dtype.kind in "biufc":
            return {"#": "array", "v": self.buffer(numpy.ascontiguousarray(obj).tobytes()), "dt": obj.dtype.str,
                    "sh": list(obj.shape)}
        if isinstance(obj, numpy.generic) and type(obj).__module__ == "numpy" and obj.dtype.kind in "biufc":
            return {"#": "scalar", "dt": obj.dtype.str, "v": self.buffer(obj.tobytes())}
        return None


def _never(obj: Any) -> None:
    return None


def encode(value: Any, keep: Callable[[Any], Ref] | None = None,
           translate: Callable[[Any], "Ref | Imported | None"] = _never) -> bytes:
    """``value`` as one message. ``keep(obj)`` turns what is not data into a :class:`Ref` (the learner's
    side); without it such a value is an error (the judge's side). ``translate(obj)`` may name, instead,
    the reference an object stands for or the import path of a function or class the other side has."""
    writer = _Writer(keep, translate)
    header = json.dumps({"v": writer.value(value), "b": [len(b) for b in writer.buffers]},
                        separators=(",", ":"), allow_nan=False).encode()
    return b"".join([_HEADER.pack(MAGIC, len(header)), header, *writer.buffers])


@dataclass
class _Reader:
    buffers: list[memoryview]
    ref: Callable[[Ref], Any]
    imported: Callable[[str], Any]
    items: int = 0

    def buffer(self, index: Any) -> memoryview:
        if type(index) is not int or not 0 <= index < len(self.buffers):
            raise CodecError("a value points at a buffer that is not there")
        return self.buffers[index]

    def value(self, data: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise CodecError("a value nested too deeply")
        self.items += 1
        if self.items > MAX_ITEMS:
            raise CodecError("a value with too many items")
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        if not isinstance(data, dict):
            raise CodecError("a value of an unknown form")
        kind, body = data.get("#"), data.get("v")
        if kind == "int":
            return int(str(body)[:400])
        if kind == "float":
            if body not in ("nan", "inf", "-inf"):
                raise CodecError("an unknown float")
            return float(body)
        if kind == "complex":
            re_, im = self.pair(body, depth)
            return complex(re_, im)
        if kind == "bytes":
            return bytes(self.buffer(body))
        if kind == "list":
            return [self.value(v, depth + 1) for v in self.items_of(body)]
        if kind == "tuple":
            return tuple(self.value(v, depth + 1) for v in self.items_of(body))
        if kind in ("set", "frozenset"):
            values = [self.value(v, depth + 1) for v in self.items_of(body)]
            return frozenset(values) if kind == "frozenset" else set(values)
        if kind in ("dict", "odict"):
            pairs = [self.pair(pair, depth) for pair in self.items_of(body)]
            return OrderedDict(pairs) if kind == "odict" else dict(pairs)
        if kind == "ref":
            return self.ref(Ref.from_meta(data))
        if kind == "import":
            if not isinstance(body, str):
                raise CodecError("an import path that is not a string")
            return self.imported(body)
        if kind == "range":
            start, stop, step = (int(v) for v in self.items_of(body))
            return range(start, stop, step)
        if kind == "dtype":
            return _torch_dtype(body)
        if kind == "device":
            import torch

            return torch.device(str(body))
        if kind == "size":
            import torch

            return torch.Size([int(d) for d in self.items_of(body)])
        if kind == "tensor":
            return self.tensor(data, depth)
        if kind in ("array", "scalar"):
            return self.array(data, kind == "scalar")
        raise CodecError("a value of an unknown form")

    def items_of(self, value: Any) -> list:
        if not isinstance(value, list):
            raise CodecError("a container that is not a list")
        return value

    def pair(self, value: Any, depth: int) -> tuple[Any, Any]:
        if not isinstance(value, list) or len(value) != 2:
            raise CodecError("a pair that is not a pair")
        return self.value(value[0], depth + 1), self.value(value[1], depth + 1)

    def tensor(self, data: dict, depth: int):
        import torch

        dtype = _torch_dtype(data.get("dt"))
        shape = [int(d) for d in self.items_of(data.get("sh", []))]
        if any(d < 0 for d in shape):
            raise CodecError("a tensor with a negative size")
        count = math.prod(shape)
        raw = self.buffer(data.get("v"))
        device = str(data.get("dev", "cpu"))
        if device.startswith("meta"):
            tensor = torch.empty(shape, dtype=dtype, device="meta")
        else:
            size = torch.empty((), dtype=dtype).element_size()
            if len(raw) != count * size:
                raise CodecError("a tensor whose bytes do not match its shape")
            tensor = (torch.frombuffer(bytearray(raw), dtype=dtype).reshape(shape) if count
                      else torch.empty(shape, dtype=dtype))
            if device != "cpu":
                tensor = _on_device(tensor, device)
        if data.get("P"):
            tensor = torch.nn.Parameter(tensor, requires_grad=bool(data.get("rg")))
        elif data.get("rg"):
            if not (tensor.is_floating_point() or tensor.is_complex()):
                raise CodecError("an integer tensor that requires grad")
            tensor.requires_grad_()
            if not data.get("leaf", True):
                tensor = tensor.clone()  # a result of a recorded operation, as it was over there
        grad = data.get("g")
        if grad is not None and tensor.is_leaf:
            value = self.value(grad, depth + 1)
            if isinstance(value, torch.Tensor) and value.shape == tensor.shape:
                tensor.grad = value
        return tensor

    def array(self, data: dict, scalar: bool):
        import numpy

        try:
            dtype = numpy.dtype(str(data.get("dt")))
        except TypeError as error:
            raise CodecError(f"an unknown array type ({error})") from None
        if dtype.kind not in "biufc":
            raise CodecError("an array of objects")
        raw = self.buffer(data.get("v"))
        if scalar:
            if len(raw) != dtype.itemsize:
                raise CodecError("a number whose bytes do not match its type")
            return numpy.frombuffer(bytes(raw), dtype=dtype)[0]
        shape = [int(d) for d in self.items_of(data.get("sh", []))]
        if any(d < 0 for d in shape) or len(raw) != math.prod(shape) * dtype.itemsize:
            raise CodecError("an array whose bytes do not match its shape")
        return numpy.frombuffer(bytes(raw), dtype=dtype).reshape(shape).copy()


def _torch_dtype(name: Any):
    import torch

    dtype = getattr(torch, str(name), None) if isinstance(name, str) and name.isidentifier() else None
    if not isinstance(dtype, torch.dtype):
        raise CodecError(f"an unknown tensor type {name!r}")
    return dtype


def _on_device(tensor, device: str):
    """The tensor on ``device`` when this process has it; else on the CPU, marked with where it was."""
    import torch

    try:
        return tensor.to(torch.device(device))
    except (RuntimeError, AssertionError):
        tensor.observed_device = device
        return tensor


def _refuse_ref(ref: Ref) -> Any:
    raise CodecError("a reference where only data may come")


def _refuse_import(path: str) -> Any:
    raise CodecError("an import where only data may come")


def decode(message: bytes, ref: Callable[[Ref], Any] = _refuse_ref,
           imported: Callable[[str], Any] = _refuse_import) -> Any:
    """The value of a message from :func:`encode`. ``ref`` turns a :class:`Ref` into what stands for it
    here, ``imported`` resolves an import path (each refuses by default)."""
    if len(message) > MAX_BYTES or len(message) < _HEADER.size:
        raise CodecError("a message of an impossible size")
    magic, length = _HEADER.unpack_from(message)
    if magic != MAGIC or _HEADER.size + length > len(message):
        raise CodecError("not a message of this format")
    try:
        header = json.loads(bytes(message[_HEADER.size:_HEADER.size + length]))
    except ValueError as error:
        raise CodecError(f"a header that is not JSON ({error})") from None
    if not isinstance(header, dict) or not isinstance(header.get("b"), list):
        raise CodecError("a header without its buffers")
    view, offset, buffers = memoryview(message), _HEADER.size + length, []
    for size in header["b"]:
        if type(size) is not int or size < 0 or offset + size > len(message):
            raise CodecError("a buffer that runs past the message")
        buffers.append(view[offset:offset + size])
        offset += size
    if offset != len(message):
        raise CodecError("bytes after the last buffer")
    return _Reader(buffers, ref, imported).value(header.get("v"))
