"""The compressed file of Deep Compression (Han, Mao & Dally 2016): the bytes of a pruned, weight-shared model.

:func:`course_utils.quantization.save_compressed` decides what to store and
calls :func:`write`; :func:`course_utils.quantization.load_compressed` calls
:func:`read`. This module is the format itself, in three parts (the
coding of each stream, Huffman or fixed-width, is :mod:`course_utils.huffman`):

* **Relative indices** (:func:`encode_gaps`): the positions of the nonzero
  weights as gaps from one to the next, in a fixed number of bits, with filler
  zeros where a gap is too long for them.
* **The architecture** (:func:`describe`, :func:`build`): an ``nn.Sequential``
  as plain JSON (layer names, types, constructor arguments) and back.
* **The file** (:func:`write`, :func:`read`), laid out (little-endian) as::

      magic b"\\x89CUDC\\r\\n\\x1a" | version (uint16) | header bytes (uint32) | payload bytes (uint64)
      | header (zlib-compressed JSON: architecture, one entry per tensor) | payload (one record per tensor)
      | CRC-32 of all the bytes before it (uint32)

  A ``"shared"`` record is the codebook (``2**bits`` float32), then the
  coded gaps, then the coded cluster indices; a ``"sparse"`` record (a pruned
  tensor that is not weight-shared) is the coded gaps, then one float32 per
  nonzero weight; "coded" means Huffman-coded, or packed in fixed widths
  (``gap_bits`` and ``bits``) when the entry says ``"huffman": false``, which
  shows what Huffman coding adds. A ``"float32"`` or ``"int64"`` record is the
  raw values. No pickle: reading never executes anything from the file, and a
  malformed file raises ``ValueError`` naming it.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils import parametrize

from . import huffman as coding
from .validate import bit_width

__all__ = ["FORMAT_VERSION", "MAGIC", "Shared", "Sparse", "build", "decode_gaps", "describe", "encode_gaps", "read",
           "write"]

# --------------------------------------------------------------------------- relative indices


def encode_gaps(positions: torch.Tensor, gap_bits: int) -> torch.Tensor:
    """Gap symbols for sorted flat positions (the first counted from -1), ``M = 2**gap_bits - 1``.

    A symbol ``g`` in 1..M means the next nonzero weight is ``g`` positions
    further on; 0 is a filler zero ``M`` positions further on, which bridges a
    gap longer than ``M`` (Figure 2 of Deep Compression).
    """
    bit_width(gap_bits, "gap_bits")
    if not isinstance(positions, torch.Tensor) or positions.dtype.is_floating_point or positions.dim() != 1:
        raise ValueError("positions must be a 1-D integer tensor (flat indices of the nonzero weights)")
    positions = positions.long()
    m = 2**gap_bits - 1
    gaps = positions - torch.cat([positions.new_full((1,), -1), positions[:-1]])
    if len(gaps) and int(gaps.min()) < 1:
        raise ValueError("positions must be non-negative and strictly increasing")
    fillers = (gaps - 1) // m
    symbols = torch.zeros(int((fillers + 1).sum()), dtype=torch.int64)
    symbols[torch.cumsum(fillers + 1, 0) - 1] = gaps - fillers * m
    return symbols


def decode_gaps(symbols: torch.Tensor, gap_bits: int) -> torch.Tensor:
    """The positions that :func:`encode_gaps` turned into ``symbols``."""
    bit_width(gap_bits, "gap_bits")
    if not isinstance(symbols, torch.Tensor) or symbols.dtype.is_floating_point or symbols.dim() != 1:
        raise ValueError("symbols must be a 1-D integer tensor")
    if len(symbols) and (int(symbols.min()) < 0 or int(symbols.max()) > 2**gap_bits - 1):
        raise ValueError(f"gap symbols must lie in [0, {2**gap_bits - 1}] for gap_bits={gap_bits}")
    m = 2**gap_bits - 1
    positions = torch.cumsum(torch.where(symbols == 0, m, symbols), 0) - 1
    return positions[symbols != 0]


# --------------------------------------------------------------------------- the architecture

# The modules an architecture may contain, with the constructor arguments read from each.
_ARCH = {
    "Linear": (nn.Linear, ("in_features", "out_features")),
    "Conv2d": (nn.Conv2d, ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                           "groups", "padding_mode")),
    "ReLU": (nn.ReLU, ()), "Tanh": (nn.Tanh, ()), "Sigmoid": (nn.Sigmoid, ()), "Identity": (nn.Identity, ()),
    "LeakyReLU": (nn.LeakyReLU, ("negative_slope",)),
    "Flatten": (nn.Flatten, ("start_dim", "end_dim")),
    "MaxPool2d": (nn.MaxPool2d, ("kernel_size", "stride", "padding", "dilation", "ceil_mode")),
    "AvgPool2d": (nn.AvgPool2d, ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, ("output_size",)),
    "Dropout": (nn.Dropout, ("p",)),
    "BatchNorm1d": (nn.BatchNorm1d, ("num_features", "eps", "momentum", "affine", "track_running_stats")),
    "BatchNorm2d": (nn.BatchNorm2d, ("num_features", "eps", "momentum", "affine", "track_running_stats")),
}


def describe(module: nn.Module, name: str = "") -> dict:
    """``module`` (an ``nn.Sequential`` of the layers in ``_ARCH``) as plain data; ValueError for anything else."""
    if not isinstance(module, nn.Module):
        raise ValueError(f"describe expects an nn.Module, got {type(module).__name__}")
    kind = parametrize.type_before_parametrizations(module)
    if kind is nn.Sequential:
        return {"name": name, "type": "Sequential",
                "children": [describe(child, f"{name}.{n}" if name else n) for n, child in module.named_children()]}
    for type_name, (cls, fields) in _ARCH.items():
        if kind is cls:
            if getattr(module, "return_indices", False):
                raise ValueError(f"cannot describe {name!r}: MaxPool2d with return_indices=True is not supported")
            args = {f: list(v) if isinstance(v := getattr(module, f), tuple) else v for f in fields}
            if type_name in ("Linear", "Conv2d"):
                args["bias"] = module.bias is not None
            return {"name": name, "type": type_name, "args": args}
    raise ValueError(
        f"cannot describe module {name or 'model'!r} of type {type(module).__name__}: the compressed file holds "
        f"nn.Sequential models built from {', '.join(_ARCH)} (and nested nn.Sequential)")


def build(spec, where: str = "architecture") -> nn.Module:
    """The module :func:`describe` described; only the types in ``_ARCH`` are built, from plain values."""
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise ValueError(f"{where}: malformed architecture entry")
    if spec["type"] == "Sequential":
        children = spec.get("children")
        if not isinstance(children, list):
            raise ValueError(f"{where}: malformed Sequential entry")
        seq = nn.Sequential()
        for child in children:
            if not isinstance(child, dict) or not isinstance(child.get("name"), str) or not child["name"]:
                raise ValueError(f"{where}: a module without a name")
            seq.add_module(child["name"].rsplit(".", 1)[-1], build(child, where))
        return seq
    if spec["type"] not in _ARCH:
        raise ValueError(f"{where}: unknown module type {spec['type']!r}")
    cls, fields = _ARCH[spec["type"]]
    args = spec.get("args", {})
    allowed = set(fields) | ({"bias"} if spec["type"] in ("Linear", "Conv2d") else set())
    if not isinstance(args, dict) or set(args) - allowed or any(
            not isinstance(v, (int, float, bool, str, list)) for v in args.values()):
        raise ValueError(f"{where}: malformed arguments for {spec['type']}")
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in args.items()})
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{where}: cannot build {spec['type']} from {args}: {error}") from None


# --------------------------------------------------------------------------- the file

MAGIC = b"\x89CUDC\r\n\x1a"  # like PNG's: a text-mode transfer or a foreign file shows up at once
FORMAT_VERSION = 1
_PREAMBLE = struct.Struct("<8sHIQ")  # magic, version, header bytes, payload bytes
_MAX_HEADER = 16 << 20  # bytes of JSON once inflated: a corrupted header cannot exhaust memory


class Shared(NamedTuple):
    """A weight-shared tensor to store: codebook, cluster of each weight (-1 = pruned), relative-index bits,
    and whether gaps and indices are Huffman-coded (else packed in fixed widths)."""

    centroids: torch.Tensor
    index: torch.Tensor
    gap_bits: int
    huffman: bool = True


class Sparse(NamedTuple):
    """A pruned (not weight-shared) tensor to store: its nonzero values as float32 at relative indices."""

    values: torch.Tensor
    gap_bits: int
    huffman: bool = True


def write(path, architecture: list, tensors) -> int:
    """Write ``architecture`` and ``tensors`` (``(name, tensor or Shared)`` pairs); returns the file's bytes.

    The bytes go to a temporary name in the same folder, are flushed to disk and
    the file is renamed: a crash never leaves half a file under ``path``.
    """
    if not isinstance(architecture, list):
        raise ValueError("architecture must be the list of children from describe(model)['children']")
    entries, records = [], []
    for name, value in tensors:
        if not isinstance(name, str) or not isinstance(value, (torch.Tensor, Shared, Sparse)):
            raise ValueError("tensors must be (name, tensor, Shared or Sparse) pairs")
        if isinstance(value, Shared):
            k = len(value.centroids)
            bits = bit_width(k.bit_length() - 1 if k & (k - 1) == 0 else None, "bits", name)
            bit_width(value.gap_bits, "gap_bits", name)
            flat = value.index.reshape(-1).cpu()
            positions = torch.nonzero(flat >= 0).flatten()
            entries.append({"name": name, "shape": list(value.index.shape), "encoding": "shared", "bits": bits,
                            "gap_bits": value.gap_bits, "huffman": bool(value.huffman)})
            records.append(value.centroids.detach().float().cpu().numpy().astype("<f4").tobytes()
                           + coding.encode(encode_gaps(positions, value.gap_bits), value.gap_bits, value.huffman)
                           + coding.encode(flat[positions], bits, value.huffman))
        elif isinstance(value, Sparse):
            bit_width(value.gap_bits, "gap_bits", name)
            flat = value.values.detach().reshape(-1).float().cpu()
            positions = torch.nonzero(flat).flatten()
            entries.append({"name": name, "shape": list(value.values.shape), "encoding": "sparse",
                            "gap_bits": value.gap_bits, "huffman": bool(value.huffman)})
            records.append(coding.encode(encode_gaps(positions, value.gap_bits), value.gap_bits, value.huffman)
                           + flat[positions].numpy().astype("<f4").tobytes())
        elif value.dtype.is_floating_point:
            entries.append({"name": name, "shape": list(value.shape), "encoding": "float32"})
            records.append(value.detach().float().cpu().numpy().astype("<f4").tobytes())
        else:
            entries.append({"name": name, "shape": list(value.shape), "encoding": "int64"})
            records.append(value.detach().long().cpu().numpy().astype("<i8").tobytes())
    header = zlib.compress(json.dumps({"architecture": architecture, "tensors": entries},
                                      separators=(",", ":")).encode(), 9)
    payload = b"".join(records)
    body = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(header), len(payload)) + header + payload
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(body + struct.pack("<I", zlib.crc32(body)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return os.path.getsize(path)


def _record(reader: coding.Reader, entry: dict) -> tuple[torch.Tensor, dict]:
    name, shape, encoding = entry["name"], entry["shape"], entry.get("encoding")
    numel = math.prod(shape)
    if encoding in ("float32", "int64"):
        size, dtype = (4, torch.float32) if encoding == "float32" else (8, torch.int64)
        raw = bytearray(reader.take(numel * size, name))
        return (torch.frombuffer(raw, dtype=dtype).reshape(shape).clone() if numel else torch.zeros(shape, dtype=dtype)), {}
    if encoding not in ("shared", "sparse"):
        raise ValueError(f"tensor {name!r} has an unknown encoding {encoding!r}")
    gap_bits = bit_width(entry.get("gap_bits"), "gap_bits", name)
    huffman = entry.get("huffman", True)
    if not isinstance(huffman, bool):
        raise ValueError(f"tensor {name!r} has a bad 'huffman' flag {huffman!r}")
    if encoding == "sparse":
        gaps = coding.decode(reader, gap_bits, huffman)
        positions = decode_gaps(gaps, gap_bits)
        if len(positions) and int(positions[-1]) >= numel:
            raise ValueError(f"corrupted data for tensor {name!r} (positions out of range)")
        values = torch.frombuffer(bytearray(reader.take(4 * len(positions), f"{name} values")), dtype=torch.float32) \
            if len(positions) else torch.zeros(0)
        weight = torch.zeros(numel)
        weight[positions] = values
        return weight.reshape(shape), {"gap_bits": gap_bits, "nonzero": len(positions),
                                       "fillers": int((gaps == 0).sum()), "huffman": huffman}
    bits = bit_width(entry.get("bits"), "bits", name)
    k = 2**bits
    centroids = torch.frombuffer(bytearray(reader.take(4 * k, f"{name} codebook")), dtype=torch.float32)
    gaps = coding.decode(reader, gap_bits, huffman)
    indices = coding.decode(reader, bits, huffman)
    positions = decode_gaps(gaps, gap_bits)
    if len(positions) != len(indices) or (len(gaps) and (int(gaps[-1]) == 0 or int(gaps.max()) >= 2**gap_bits)) or (
            len(indices) and (int(positions[-1]) >= numel or int(indices.max()) >= k)):
        raise ValueError(f"corrupted data for tensor {name!r} (positions or indices out of range)")
    weight = torch.zeros(numel)
    weight[positions] = centroids[indices]
    return weight.reshape(shape), {"bits": bits, "gap_bits": gap_bits, "nonzero": len(indices),
                                   "fillers": int((gaps == 0).sum()), "huffman": huffman}


def read(path) -> tuple[nn.Module, dict[str, torch.Tensor], list[dict]]:
    """The model (built afresh), its tensors by state_dict key, and one layout row per tensor (with its bytes).

    Every problem (not such a file, truncated, corrupted, bits outside 1-16, an
    unknown module type) raises ``ValueError`` whose message starts with ``path``.
    """
    path = Path(path)
    try:
        return _read(path.read_bytes(), path)
    except ValueError as error:
        message = str(error)
        raise ValueError(message if message.startswith(f"{path}:") else f"{path}: {message}") from None


def _read(data: bytes, path: Path):
    if not data or data[:len(MAGIC)] != MAGIC[:len(data)]:
        raise ValueError("not a compressed model written by course_utils.quantization.save_compressed (wrong magic "
                         "bytes); for a torch.save file use torch.load")
    if len(data) < _PREAMBLE.size:
        raise ValueError("truncated file (the header is incomplete)")
    _, version, header_len, payload_len = _PREAMBLE.unpack_from(data)
    if version != FORMAT_VERSION:
        raise ValueError(f"format version {version}, but this course_utils reads version {FORMAT_VERSION}: "
                         "update course_utils")
    expected = _PREAMBLE.size + header_len + payload_len + 4
    if len(data) != expected:
        raise ValueError(f"truncated or padded file: {len(data)} bytes where the header announces {expected}")
    (crc,) = struct.unpack_from("<I", data, expected - 4)
    if zlib.crc32(data[:expected - 4]) != crc:
        raise ValueError("corrupted file (checksum mismatch)")
    try:
        inflate = zlib.decompressobj()
        text = inflate.decompress(data[_PREAMBLE.size:_PREAMBLE.size + header_len], _MAX_HEADER)
        if inflate.unconsumed_tail or not inflate.eof:
            raise ValueError
        header = json.loads(text.decode("utf-8"))
        architecture, entries = header["architecture"], header["tensors"]
        if not isinstance(architecture, list) or not isinstance(entries, list):
            raise TypeError
    except (zlib.error, ValueError, KeyError, TypeError):
        raise ValueError("corrupted header (not the expected JSON)") from None
    model = build({"type": "Sequential", "children": architecture}, str(path))
    reader = coding.Reader(data[:expected - 4], _PREAMBLE.size + header_len)
    state, layout = {}, []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(
                entry.get("shape"), list) or not all(isinstance(s, int) and s >= 0 for s in entry["shape"]):
            raise ValueError("corrupted header (a tensor entry is malformed)")
        start = reader.offset
        state[entry["name"]], info = _record(reader, entry)
        layout.append({"name": entry["name"], "encoding": entry["encoding"], "shape": entry["shape"], **info,
                       "bytes": reader.offset - start})
    if reader.offset != len(reader.data):
        raise ValueError("corrupted file (the payload is longer than its tensors)")
    return model, state, layout
