"""PyTorch's two int8 quantisation APIs, found or refused with a clear message, and what both need.

``torch.ao.quantization`` ships with PyTorch but is deprecated; ``torchao`` (``pip install torchao``) is its
maintained successor. :mod:`course_utils.quantization` calls either through this module, which imports them
quietly (no deprecation warnings in a notebook), raises :class:`QuantizationAPIUnavailable` naming what to
install when one is missing, picks a quantised engine, and finds the layers to fuse before static quantisation.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import warnings

import torch
from torch import nn

__all__ = ["APIS", "TORCHAO_PIN", "Exported", "QuantizationAPIUnavailable", "api_importable", "choose_api", "engine_for",
           "fusable", "import_api", "quiet", "using_engine"]

APIS = ("torch.ao", "torchao")
TORCHAO_PIN = "torchao==0.18.0"


class QuantizationAPIUnavailable(ImportError):
    """The requested quantisation API cannot be imported; the message says what to install."""


@contextlib.contextmanager
def quiet():
    """Silence the deprecation warnings of ``torch.ao.quantization`` and torchao's import-time log lines."""
    loggers = [logging.getLogger(name) for name in ("torch.utils._pytree", "torchao", "torch.ao")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def _missing(api: str, error: BaseException) -> QuantizationAPIUnavailable:
    if api == "torchao":
        return QuantizationAPIUnavailable(
            f"api='torchao' needs the torchao package, which could not be imported ({error}). "
            f"Install it with `pip install {TORCHAO_PIN}` (the version this course was tested with, for torch "
            f"2.14), or use api='torch.ao'.")
    return QuantizationAPIUnavailable(
        f"api='torch.ao' needs torch.ao.quantization, which this PyTorch ({torch.__version__}) does not provide "
        f"({error}); it is deprecated and being removed. Use api='torchao' (`pip install {TORCHAO_PIN}`), "
        f"or install a PyTorch that still ships it (the course was tested with torch==2.14.1).")


_NEEDED = {
    "torch.ao.quantization": ("quantize_dynamic", "fuse_modules", "QuantWrapper", "get_default_qconfig", "prepare",
                              "convert"),
    "torchao.quantization": ("quantize_", "Int8DynamicActivationInt8WeightConfig"),
    "torchao.quantization.pt2e": ("allow_exported_model_train_eval",),
    "torchao.quantization.pt2e.quantize_pt2e": ("prepare_pt2e", "convert_pt2e"),
    "torchao.quantization.pt2e.quantizer.x86_inductor_quantizer": ("X86InductorQuantizer",
                                                                   "get_default_x86_inductor_quantization_config"),
}


def import_api(api: str, *names: str):
    """Import the modules ``names`` of ``api``, or raise :class:`QuantizationAPIUnavailable` with the fix."""
    modules = []
    try:
        with quiet():
            if api == "torchao":
                importlib.import_module("torchao")
            for name in names:
                module = importlib.import_module(name)
                for attribute in _NEEDED.get(name, ()):
                    getattr(module, attribute)
                modules.append(module)
    except (ImportError, AttributeError) as error:
        raise _missing(api, error) from None
    return modules


def api_importable(api: str) -> bool:
    """Whether ``api`` ("torch.ao" or "torchao") can be imported here."""
    try:
        import_api(api, "torch.ao.quantization" if api == "torch.ao" else "torchao.quantization")
    except QuantizationAPIUnavailable:
        return False
    return True


def choose_api(api: str | None, preferred: tuple[str, ...], probe) -> str:
    if api is not None:
        if api not in APIS:
            raise ValueError(f"unknown api {api!r}: use one of {APIS} or None (the fastest available)")
        probe(api)
        return api
    errors = []
    for candidate in preferred:
        try:
            probe(candidate)
            return candidate
        except QuantizationAPIUnavailable as error:
            errors.append(str(error))
    raise QuantizationAPIUnavailable("no int8 quantisation API is available:\n- " + "\n- ".join(errors))


def engine_for(engine: str | None, preferred: tuple[str, ...]) -> str:
    supported = torch.backends.quantized.supported_engines
    if engine is not None:
        if engine not in supported:
            raise ValueError(f"quantised engine {engine!r} is not available here; choose one of {supported}")
        return engine
    return next((e for e in preferred if e in supported), torch.backends.quantized.engine)


@contextlib.contextmanager
def using_engine(engine: str):
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        yield
    finally:
        torch.backends.quantized.engine = old


def fusable(model: nn.Module) -> list[list[str]]:
    """Groups [Conv2d, (BatchNorm2d,) ReLU], [Conv2d, BatchNorm2d] and [Linear, ReLU] of consecutive Sequential children."""
    groups = []
    for prefix, seq in model.named_modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        kinds = [type(seq._modules[n]) for n in names]
        i = 0
        while i < len(names):
            full = [f"{prefix}.{n}" if prefix else n for n in names[i:i + 3]]
            if kinds[i:i + 3] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]:
                groups.append(full)
                i += 3
            elif kinds[i:i + 2] in ([nn.Conv2d, nn.BatchNorm2d], [nn.Conv2d, nn.ReLU], [nn.Linear, nn.ReLU]):
                groups.append(full[:2])
                i += 2
            else:
                i += 1
    return groups


class Exported(nn.Module):
    """Holds a torch.export graph so that ``.eval()``/``.train()`` (called by ``predict``) work on it."""

    def __init__(self, graph: nn.Module):
        super().__init__()
        self.graph = graph

    def forward(self, x):
        return self.graph(x)

    def train(self, mode: bool = True):
        self.training = mode  # the graph is frozen in eval mode
        return self
