"""Checks for the exercises of notebook 04 (quantisation). Each returns a verdict (truthy when right), never raises."""

from __future__ import annotations

import torch

from . import report, run_safely, whole_number

__all__ = ["fewest_bits", "quantize", "relative_indices"]


def _expected(x: torch.Tensor, bits: int):
    """Affine quantisation written out here, independently of ``cu.quantization``: (q, scale, zero point)."""
    levels = 2**bits - 1
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (hi - lo) / levels if hi > lo else 1.0
    zero = round(-lo / scale)
    q = torch.clamp(torch.round(x.double() / scale) + zero, 0, levels)
    return q, scale, zero


def quantize(fn) -> bool:
    """``fn(x, bits)`` must return ``(q, scale, zero_point)`` of affine quantisation to ``bits`` bits."""
    if not callable(fn):
        return report(False, "define my_quantize(x, bits) returning (q, scale, zero_point)")
    g = torch.Generator().manual_seed(4)
    cases = [(torch.tensor([-1.0, -0.3, 0.0, 0.2, 0.9, 2.0]), 2), (torch.randn(50, generator=g), 4),
             (torch.rand(30, generator=g) + 0.5, 3), (torch.randn(7, 5, generator=g) * 3, 8)]
    for x, bits in cases:
        out, error = run_safely(fn, x.clone(), bits, hide=["course_utils.quantization.quantize_tensor"])
        if error:
            return report(False, f"my_quantize raised {error}")
        if out is None or out is Ellipsis:
            return report(False, "my_quantize returns nothing yet: return (q, scale, zero_point)")
        if not isinstance(out, tuple) or len(out) != 3:
            return report(False, "return three things: (q, scale, zero_point)")
        q, scale, zero = out
        want_q, want_scale, want_zero = _expected(x, bits)
        try:
            q = torch.as_tensor(q).double().reshape(x.shape)
            scale, zero = float(scale), float(zero)
        except (TypeError, ValueError, RuntimeError):
            return report(False, "q must be a tensor shaped like x, scale and zero_point numbers")
        if abs(scale - want_scale) > 1e-6 * max(1.0, want_scale):
            return report(False, f"for {bits} bits the scale should be (max - min) / (2**bits - 1) = {want_scale:.5f}, "
                                 f"got {scale:.5f}; include 0 in the range (min(x.min(), 0), max(x.max(), 0))")
        if zero != want_zero:
            return report(False, f"the zero point should be round(-min / scale) = {want_zero}, got {zero:g}")
        if q.min() < 0 or q.max() > 2**bits - 1:
            return report(False, f"q must stay in [0, {2**bits - 1}]: clamp it")
        if not torch.equal(q, want_q):
            return report(False, "q differs: round(x / scale) + zero_point, then clamp to [0, 2**bits - 1]")
    return report(True, "scale, zero point and rounding as in the formula: every value moves by at most half a step")


def _gaps(mask: torch.Tensor, index_bits: int) -> list[int]:
    """The relative indices written out here: gap to each nonzero (the first from -1), fillers of the longest gap."""
    longest = 2**index_bits - 1
    out, last = [], -1
    for position in torch.nonzero(mask.reshape(-1)).flatten().tolist():
        gap = position - last
        while gap > longest:
            out.append(0)
            gap -= longest
        out.append(gap)
        last = position
    return out


def relative_indices(fn) -> bool:
    """``fn(mask, index_bits)``: Deep Compression's relative indices of a 1-D mask, 0 for a filler entry."""
    if not callable(fn):
        return report(False, "define relative_indices(mask, index_bits) returning a list of gaps")
    g = torch.Generator().manual_seed(5)
    cases = [(torch.tensor([0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1]), 3),
             (torch.tensor([0] * 20 + [1] + [0] * 5 + [1]), 2),
             ((torch.rand(300, generator=g) < 0.08).long(), 5), ((torch.rand(64, generator=g) < 0.5).long(), 3)]
    for mask, bits in cases:
        got, error = run_safely(fn, mask.clone(), bits, hide=["course_utils.compressed_file.encode_gaps"])
        if error:
            return report(False, f"relative_indices raised {error}")
        if got is None or got is Ellipsis:
            return report(False, "relative_indices returns nothing yet: return a list of gaps")
        try:
            got = [int(v) for v in (got.tolist() if isinstance(got, torch.Tensor) else got)]
        except (TypeError, ValueError):
            return report(False, f"return a list of integers, got {got!r}")
        want = _gaps(mask, bits)
        if got == want:
            continue
        if len(got) == int(mask.sum()):
            return report(False, f"with {bits}-bit indices a gap can be at most {2**bits - 1}: insert a filler entry "
                                 "(0) for every full stretch of that length, as in the paper's Figure 2")
        return report(False, f"for the mask {mask.tolist()[:20]}{'...' if len(mask) > 20 else ''} with {bits} bits "
                             f"expected {want[:12]}{'...' if len(want) > 12 else ''}, got {got[:12]}")
    return report(True, "gaps from one nonzero weight to the next, with a filler entry wherever a gap is too long "
                        "for the index bits: each entry costs index bits plus value bits")


def fewest_bits(choice, val_acc: dict, reference: float, tolerance: float = 0.001) -> bool:
    """The fewest bits whose validation accuracy is at least ``reference - tolerance``, read off the notebook's sweep;
    when no bit width gets there, the one that comes closest (the fewest bits among equals)."""
    value = whole_number(choice)
    if value is None:
        return report(False, f"set my_bits to a whole number of bits (an int), got {choice!r}")
    measured = {int(k): float(v) for k, v in val_acc.items()}
    if value not in measured:
        return report(False, f"choose one of the bit widths measured: {sorted(measured)}")
    good = [b for b, acc in measured.items() if acc >= reference - tolerance]
    if not good:
        closest = min(measured, key=lambda b: (-measured[b], b))
        if value == closest:
            return report(True, f"{value} bits: no bit width reaches {reference - tolerance:.2%} here, and "
                                f"{value} comes closest ({measured[value]:.2%})")
        return report(False, f"no bit width reaches {reference - tolerance:.2%} here: choose the one that comes "
                             "closest (the fewest bits among equals)")
    best = min(good)
    if value == best:
        return report(True, f"{value} bits: validation accuracy {measured[value]:.2%}, at least "
                            f"{reference - tolerance:.2%}; fewer bits fall below it")
    if value in good:
        return report(False, f"{value} bits is within the tolerance, but so is {best}: fewer bits, a smaller file")
    return report(False, f"{value} bits gives {measured[value]:.2%} validation accuracy, below "
                         f"{reference - tolerance:.2%}")
