"""Quantisation, the course's fourth technique: fewer bits per weight.

Three ideas, from the simplest to Deep Compression (Han, Mao & Dally, ICLR 2016):

1. **Linear (affine) quantisation** of a tensor to ``b`` bits:
   :func:`quantize_tensor` maps every value to an integer ``q`` in
   ``[0, 2**b - 1]`` with ``x ≈ (q - zero_point) * scale`` and
   :func:`dequantize` maps it back; the error is at most half a step
   (``scale / 2``).
2. **int8 post-training quantisation** with PyTorch's tools:
   :func:`int8_dynamic` (int8 weights, activations quantised on the fly, for
   Linear layers) and :func:`int8_static` (activations too, with ranges
   calibrated on the validation split, for convolutional networks). Both take
   ``api="torch.ao"`` (the deprecated ``torch.ao.quantization``) or
   ``api="torchao"`` (its maintained successor, ``pip install torchao``).
3. **Trained quantisation (weight sharing)**, in :mod:`course_utils.weight_sharing`
   (:func:`share_weights`, :func:`finetune_centroids`; re-exported here), and
   the **compressed file** of Deep Compression: :func:`save_compressed` writes
   a pruned, weight-shared model (sparse positions as Huffman-coded gaps,
   Huffman-coded cluster indices, the codebooks; the format is
   :mod:`course_utils.compressed_file`) and :func:`load_compressed` reads it
   back into an ordinary model.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils import prune

from . import compressed_file as cf
from . import validate
from .int8_apis import (APIS, Exported, QuantizationAPIUnavailable, choose_api, engine_for, fusable, import_api,
                        quiet, using_engine)
from .validate import bit_width
from .weight_sharing import (  # re-exported: the public names of quantisation in one place
    SharedLayer,
    WeightSharing,
    finetune_centroids,
    kmeans_1d,
    remove_sharing,
    share_weights,
    shared_layers,
)

__all__ = [
    "APIS",
    "QuantizationAPIUnavailable",
    "QuantizedTensor",
    "SharedLayer",
    "WeightSharing",
    "compressed_layout",
    "dequantize",
    "finetune_centroids",
    "int8_dynamic",
    "int8_static",
    "kmeans_1d",
    "load_compressed",
    "quantize_tensor",
    "remove_sharing",
    "save_compressed",
    "share_weights",
    "shared_layers",
]

# --------------------------------------------------------------------------- 1. linear quantisation


class QuantizedTensor(NamedTuple):
    """Integers ``q`` with ``x ≈ (q - zero_point) * scale``; per channel, ``scale`` has one entry per row."""

    q: torch.Tensor  # uint8 for bits <= 8, int32 above
    scale: torch.Tensor  # float32, shape () or (channels,)
    zero_point: torch.Tensor  # int32, same shape as scale
    bits: int


def quantize_tensor(x: torch.Tensor, bits: int, per_channel: bool = False) -> QuantizedTensor:
    """Affine (asymmetric) quantisation of ``x`` to ``bits`` bits (1 to 16).

    The range ``[min(x, 0), max(x, 0)]`` (zero included, so zeros stay exact) is
    cut into ``2**bits - 1`` equal steps: ``scale = (hi - lo) / (2**bits - 1)``,
    ``zero_point = round(-lo / scale)`` and ``q = clamp(round(x / scale) +
    zero_point, 0, 2**bits - 1)``. With ``per_channel=True`` every slice along
    dim 0 (a layer's output channel) gets its own scale and zero point.
    :func:`dequantize` returns values within ``scale / 2`` of ``x``.
    """
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        raise ValueError("x must be a floating-point tensor (e.g. a layer's weight)")
    bits = bit_width(bits)
    if x.numel() == 0:
        raise ValueError("x is empty: there is nothing to quantise")
    if per_channel and x.dim() == 0:
        raise ValueError("per_channel=True needs a tensor with at least one dimension (channels along dim 0)")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinity: quantisation needs finite values")
    x = x.detach().float()
    qmax = 2**bits - 1
    if per_channel:
        flat = x.reshape(x.shape[0], -1)
        lo, hi = flat.min(1).values.clamp(max=0), flat.max(1).values.clamp(min=0)
    else:
        lo, hi = x.min().clamp(max=0), x.max().clamp(min=0)
    scale = (hi - lo) / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero channel: any scale works
    zero_point = torch.round(-lo / scale).clamp(0, qmax)
    shape = (-1,) + (1,) * (x.dim() - 1) if per_channel else ()
    q = (torch.round(x / scale.reshape(shape)) + zero_point.reshape(shape)).clamp(0, qmax)
    return QuantizedTensor(q.to(torch.uint8 if bits <= 8 else torch.int32), scale, zero_point.to(torch.int32), bits)


def dequantize(qt: QuantizedTensor) -> torch.Tensor:
    """The float tensor ``(q - zero_point) * scale`` that a :class:`QuantizedTensor` stands for."""
    if not isinstance(qt, QuantizedTensor):
        raise ValueError("dequantize expects the QuantizedTensor returned by quantize_tensor")
    shape = (-1,) + (1,) * (qt.q.dim() - 1) if qt.scale.dim() == 1 else ()
    return (qt.q.float() - qt.zero_point.reshape(shape).float()) * qt.scale.reshape(shape)


# --------------------------------------------------------------------------- 2. int8 post-training quantisation


def _plain_copy(model: nn.Module) -> nn.Module:
    """A deep copy on the CPU in eval mode, with weight sharing and pruning masks made permanent."""
    model = copy.deepcopy(model).cpu().eval()
    remove_sharing(model)
    for module in model.modules():
        for name in [hook._tensor_name for hook in module._forward_pre_hooks.values()
                     if isinstance(hook, prune.BasePruningMethod)]:
            prune.remove(module, name)
    return model


def int8_dynamic(model: nn.Module, api: str | None = None, engine: str | None = None) -> nn.Module:
    """A copy of ``model`` whose Linear layers compute with int8 weights and dynamically quantised inputs.

    Weights are stored as int8 (about 4× smaller); each input batch is
    quantised to int8 on the fly with its own range, so no calibration data is
    needed. ``api="torch.ao"`` uses ``torch.ao.quantization.quantize_dynamic``
    (quantised engine ``engine``, default ``"x86"``); ``api="torchao"`` uses
    ``torchao.quantization.quantize_`` with ``Int8DynamicActivationInt8WeightConfig``.
    ``api=None`` picks ``"torch.ao"`` when available, else ``"torchao"``: on
    the course's CPU (AVX2, no VNNI) torch.ao's kernels are the fast ones
    (see ``benchmarks/results/quantization.json``). The copy runs on the CPU;
    ``model`` is not changed.
    """
    validate.module(model)
    api = choose_api(api, ("torch.ao", "torchao"), lambda a: import_api(
        a, "torch.ao.quantization" if a == "torch.ao" else "torchao.quantization"))
    if api == "torchao" and engine is not None:
        raise ValueError("engine applies to api='torch.ao' only")
    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise ValueError("model has no nn.Linear layer: dynamic int8 quantisation only changes Linear layers")
    quantized = _plain_copy(model)
    with quiet():
        if api == "torch.ao":
            (tq,) = import_api(api, "torch.ao.quantization")
            with using_engine(engine_for(engine, ("x86", "fbgemm", "qnnpack"))):
                return tq.quantize_dynamic(quantized, {nn.Linear}, dtype=torch.qint8)
        (tao,) = import_api(api, "torchao.quantization")
        tao.quantize_(quantized, tao.Int8DynamicActivationInt8WeightConfig())
        return quantized


def int8_static(model: nn.Module, data, api: str | None = None, engine: str | None = None,
                calibration_batches: int | None = None, batch_size: int = 500) -> nn.Module:
    """A statically quantised int8 copy of ``model`` (weights and activations), calibrated on ``data.val``.

    Every Linear/Conv2d layer computes in int8; the range of each activation
    is fixed beforehand by running the validation split (never the test split)
    through observers. Conv/Linear + ReLU pairs are fused first.
    ``api="torch.ao"``: eager-mode ``torch.ao.quantization`` (``prepare`` /
    ``convert`` around a ``QuantWrapper``) with the quantised engine
    ``engine``: by default ``"onednn"`` for a model with convolutions (on the
    course's CPU, 1.6× faster than fp32 for LeNet-5 at batch 256, where x86's
    fbgemm is 2× slower than fp32 because of the one-channel first
    convolution) and ``"x86"`` for Linear-only models (1.45× faster for
    LeNet-300-100, onednn 1.1×). ``api="torchao"``: torchao's PT2E flow
    (``torch.export``, ``X86InductorQuantizer``, ``prepare_pt2e`` /
    ``convert_pt2e``), slower than fp32 here even under ``torch.compile``.
    ``api=None`` picks ``"torch.ao"`` when available. ``calibration_batches``
    limits calibration to that many batches of ``batch_size`` images.
    The copy runs on the CPU; ``model`` is not changed.
    """
    validate.module(model)
    val = getattr(data, "val", None)
    if val is None or not hasattr(val, "x") or len(val.x) == 0:
        raise ValueError("data must be a Splits with a non-empty validation split (data.val), used for calibration")
    if calibration_batches is not None and (not isinstance(calibration_batches, int) or calibration_batches <= 0):
        raise ValueError(f"calibration_batches must be a positive integer or None, got {calibration_batches!r}")
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not any(isinstance(m, (nn.Linear, nn.Conv2d)) for m in model.modules()):
        raise ValueError("model has no Linear or Conv2d layer to quantise")
    torchao_modules = ("torchao.quantization.pt2e", "torchao.quantization.pt2e.quantize_pt2e",
                       "torchao.quantization.pt2e.quantizer.x86_inductor_quantizer")
    api = choose_api(api, ("torch.ao", "torchao"), lambda a: import_api(
        a, *(("torch.ao.quantization",) if a == "torch.ao" else torchao_modules)))
    if api == "torchao" and engine is not None:
        raise ValueError("engine applies to api='torch.ao' only")
    n = len(val.x) if calibration_batches is None else min(len(val.x), calibration_batches * batch_size)
    batches = [val.x[i:i + batch_size].float().cpu() for i in range(0, n, batch_size)]
    plain = _plain_copy(model)
    with quiet(), torch.no_grad():
        if api == "torch.ao":
            (tq,) = import_api(api, "torch.ao.quantization")
            convolutional = any(isinstance(m, nn.Conv2d) for m in plain.modules())
            engine = engine_for(engine, ("onednn", "x86", "fbgemm", "qnnpack") if convolutional else
                             ("x86", "fbgemm", "onednn", "qnnpack"))
            with using_engine(engine):
                groups = fusable(plain)
                if groups:
                    plain = tq.fuse_modules(plain, groups)
                wrapped = tq.QuantWrapper(plain).eval()
                wrapped.qconfig = tq.get_default_qconfig(engine)
                tq.prepare(wrapped, inplace=True)
                for xb in batches:
                    wrapped(xb)
                return tq.convert(wrapped, inplace=True)
        pt2e, qpt2e, x86 = import_api(api, *torchao_modules)
        batch = torch.export.Dim("batch")
        exported = torch.export.export(plain, (batches[0],), dynamic_shapes=({0: batch},)).module()
        quantizer = x86.X86InductorQuantizer()
        quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
        prepared = qpt2e.prepare_pt2e(exported, quantizer)
        for xb in batches:
            prepared(xb)
        graph = qpt2e.convert_pt2e(prepared)
        used = {node.target for node in graph.graph.nodes if node.op == "get_attr"}
        for key in [k for k in graph.state_dict() if k not in used]:  # float weights the int8 graph no longer reads
            owner, _, attribute = key.rpartition(".")
            delattr(graph.get_submodule(owner) if owner else graph, attribute)
        return Exported(graph).eval()


# --------------------------------------------------------------------------- 4. the compressed file

DEFAULT_GAP_BITS = {nn.Linear: 5, nn.Conv2d: 8}  # the paper's relative-index widths for fc and conv layers


def save_compressed(model: nn.Module, path, bits: int | None = None, gap_bits: int | None = None,
                    huffman: bool = True) -> int:
    """Write a pruned, weight-shared model as a compressed file (Deep Compression's format); returns its bytes.

    Every weight-shared Linear/Conv2d weight is stored as its codebook
    (``2**bits`` float32), the positions of its nonzero weights as gaps
    (relative indices of ``gap_bits`` bits, by default 5 for Linear and 8 for
    Conv2d layers as in the paper, with filler zeros where a gap is longer than
    ``2**gap_bits - 1``) and the cluster index of each nonzero weight; with
    ``huffman=True`` gaps and indices are Huffman-coded, otherwise packed in
    those fixed widths. A layer that is not weight-shared is clustered to
    ``bits`` on the fly when ``bits`` is given, else stored sparse: its nonzero
    weights as float32 at relative indices (the "pruned only" stage of the
    paper). Biases and all other tensors are plain float32 (integer buffers
    int64). The architecture (names, types, shapes, activations, pooling,
    flatten) goes into the file's JSON header, so :func:`load_compressed`
    rebuilds an ordinary ``nn.Sequential``. The file is plain data (no pickle),
    written to a temporary name and renamed; the layout is in
    :mod:`course_utils.compressed_file`. The number returned is the file's size
    on disk.
    """
    validate.module(model)
    if bits is not None:
        bits = bit_width(bits)
    if gap_bits is not None:
        gap_bits = bit_width(gap_bits, "gap_bits")
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"save_compressed handles the course's nn.Sequential models; got {type(model).__name__}")
    architecture = cf.describe(model)["children"]
    shared = shared_layers(model)
    mismatched = {name: layer.bits for name, layer in shared.items() if bits is not None and layer.bits != bits}
    if mismatched:
        raise ValueError(f"layers {mismatched} are shared with other bits than bits={bits}: pass bits=None")
    plain = _plain_copy(model)
    modules = dict(plain.named_modules())
    tensors = []
    for key, tensor in plain.state_dict().items():
        layer_name, _, attribute = key.rpartition(".")
        kind = type(modules.get(layer_name))
        if attribute == "weight" and kind in DEFAULT_GAP_BITS:
            gaps = gap_bits or DEFAULT_GAP_BITS[kind]
            layer = shared.get(layer_name)
            if layer is None and bits is not None:  # cluster on the fly, exactly as share_weights does
                layer = shared_layers(share_weights(copy.deepcopy(modules[layer_name]), bits))[""]
            tensor = (cf.Shared(layer.centroids, layer.index, gaps, huffman) if layer is not None
                      else cf.Sparse(tensor, gaps, huffman))
        tensors.append((key, tensor))
    return cf.write(path, architecture, tensors)


def load_compressed(path) -> nn.Sequential:
    """Read a file written by :func:`save_compressed` into an ordinary model (plain float32 weights, eval mode).

    Its outputs equal those of the saved weight-shared model. A file that is
    not such a file, is truncated or corrupted raises ``ValueError`` naming the
    file and the problem; nothing in the file is executed.
    """
    model, state, _ = cf.read(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{path}: its tensors do not match its architecture ({error})") from None
    return model.eval()


def compressed_layout(path) -> list[dict]:
    """Where the bytes of a compressed file go: one row per tensor (encoding, shape, bytes, nonzeros, fillers)."""
    return cf.read(path)[2]
