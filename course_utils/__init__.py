"""Support package of the neural-network compression course: ``import course_utils as cu``.

One module per concept, each a set of plain, tested functions:

* data and training: ``data`` (MNIST / Fashion-MNIST as tensors), ``models``,
  ``train`` (the one training loop), ``checkpoints`` (the model cache),
  ``baselines`` (the cached dense models and the teacher);
* measuring: ``metrics`` (parameters, MACs, bytes, one summary row, tables),
  ``latency`` (the one timer), ``plots``;
* pruning: ``surgery`` (remove neurons and channels), ``importance`` (which
  ones), ``masks`` (zero weights with masks), ``pruning`` (the loops both kinds
  share), ``hard_pruning``, ``soft_pruning``, ``sparse`` (CSR storage);
* ``distill`` (knowledge distillation); ``quantization`` (affine quantisation, int8, the compressed file), with
  ``int8_apis`` (PyTorch's two quantisation APIs), ``weight_sharing`` (k-means codebooks, trained),
  ``compressed_file`` (the file format) and ``huffman`` (its coding);
* ``routes`` (every technique and their combinations under one byte budget: notebook 05);
* the notebooks' ``widgets`` and exercise ``checks``; ``validate`` (argument checks).
"""

from importlib import import_module

__version__ = "0.2.0"

_MODULES = ("data", "models", "train", "checkpoints", "baselines", "metrics", "latency", "plots", "surgery",
            "importance", "masks", "pruning", "hard_pruning", "soft_pruning", "sparse", "distill", "quantization",
            "int8_apis", "weight_sharing", "compressed_file", "huffman", "routes",
            "widgets", "checks", "validate")

from . import checkpoints, data, metrics, models, train  # noqa: E402,F401


def __getattr__(name):  # the heavier modules load on first use: cu.plots, cu.distill, ...
    if name in _MODULES:
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'course_utils' has no attribute {name!r}")


__all__ = list(_MODULES)
