"""Checks for the exercises of notebook 01 (hard pruning). Each returns a verdict (truthy when right) and never raises."""

from __future__ import annotations

import copy

import torch
from torch import nn

from . import report, run_safely

__all__ = ["fc_columns", "l2_scores", "remove_channel"]


def _is_tensor_like(value) -> bool:
    return isinstance(value, torch.Tensor) or isinstance(value, (list, tuple))


def l2_scores(l2_scores) -> bool:
    """``l2_scores(layer)`` must return the L2 norm of each output neuron's (or channel's) incoming weights."""
    if not callable(l2_scores):
        return report(False, "define l2_scores as a function of one layer, e.g. def l2_scores(layer): ...")
    gen = torch.Generator().manual_seed(1)
    cases = {"Linear(5, 4)": nn.Linear(5, 4), "Conv2d(3, 6, 3)": nn.Conv2d(3, 6, 3)}
    for label, layer in cases.items():
        with torch.no_grad():
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen))
        before = layer.weight.detach().clone()
        expected = layer.weight.detach().flatten(1).norm(dim=1)
        got, error = run_safely(l2_scores, layer, hide=["course_utils.importance.weight_norms",
                                                         "course_utils.importance.neuron_importance"])
        if error:
            return report(False, f"on a {label} your function raised {error}")
        if got is None or got is Ellipsis:
            return report(False, "the function returns nothing yet: return one score per output neuron")
        if not _is_tensor_like(got):
            return report(False, f"return a tensor of scores, got {type(got).__name__}")
        got = torch.as_tensor(got, dtype=torch.float32).detach().flatten()
        if not torch.equal(layer.weight.detach(), before):
            return report(False, "your function changed the layer's weights: scoring must only read them")
        if got.numel() != expected.numel():
            return report(False, f"on a {label} expected {expected.numel()} scores (one per output "
                                 f"{'channel' if 'Conv' in label else 'neuron'}), got {got.numel()}; "
                                 "which dimension of the weight indexes the outputs?")
        if torch.allclose(got, layer.weight.detach().flatten(1).pow(2).sum(1), atol=1e-5):
            return report(False, "these are squared norms: take the square root")
        if torch.allclose(got, layer.weight.detach().flatten(1).abs().sum(1), atol=1e-5):
            return report(False, "these are L1 norms (sums of absolute values); the L2 norm is the square root "
                                 "of the sum of squares")
        if not torch.allclose(got, expected, atol=1e-5):
            return report(False, f"on a {label} the scores differ from the L2 norms of the rows; flatten every "
                                 "dimension but the first (weight.flatten(1)) before taking the norm")
    return report(True, "one L2 norm per output neuron of a Linear layer and per output channel of a Conv2d layer")


def _tiny_cnn(gen: torch.Generator) -> nn.Sequential:
    model = nn.Sequential(nn.Conv2d(2, 5, 3, padding=1), nn.ReLU(), nn.Conv2d(5, 4, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return model.eval()


def remove_channel(remove_channel) -> bool:
    """``remove_channel(conv, next_conv, index)`` must return a (conv, next_conv) pair without channel ``index``."""
    if not callable(remove_channel):
        return report(False, "define remove_channel(conv, next_conv, index) returning (new_conv, new_next_conv)")
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(3, 2, 8, 8, generator=gen)
    for index in (0, 2, 4):
        model = _tiny_cnn(gen)
        original = copy.deepcopy(model)
        out, error = run_safely(remove_channel, model[0], model[2], index,
                                 hide=["course_utils.surgery.remove_neurons", "course_utils.surgery.remove_inplace"])
        if error:
            return report(False, f"removing channel {index} raised {error}")
        if out is None or out is Ellipsis:
            return report(False, "the function returns nothing yet: return (new_conv, new_next_conv)")
        if not isinstance(out, tuple) or len(out) != 2 or not all(isinstance(m, nn.Conv2d) for m in out):
            return report(False, "return a pair of nn.Conv2d layers: (new_conv, new_next_conv)")
        if any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), original.state_dict().values())):
            return report(False, "your function changed the original layers: build new ones (or clone the weights)")
        conv, nxt = out
        if conv.weight.shape != (4, 2, 3, 3):
            return report(False, f"the first conv's weight should be 4×2×3×3 after removing one of its 5 output "
                                 f"channels, got {tuple(conv.weight.shape)}")
        if conv.bias is None or conv.bias.shape != (4,):
            return report(False, "the first conv's bias must lose the removed channel too (4 values)")
        if nxt.weight.shape != (4, 4, 3, 3):
            return report(False, f"the next conv's weight should be 4×4×3×3 (its input channels shrink, dimension 1), "
                                 f"got {tuple(nxt.weight.shape)}")
        if nxt.in_channels != 4 or conv.out_channels != 4:
            return report(False, "set out_channels of the first conv and in_channels of the next conv to 4 as well")
        expected_model = copy.deepcopy(original)
        with torch.no_grad():
            expected_model[2].weight[:, index] = 0.0  # what the next layer sees without that channel
            expected = expected_model(x)
            got = nn.Sequential(conv, nn.ReLU(), nxt).eval()(x)
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-5):
            return report(False, f"after removing channel {index} the outputs differ from the original with that "
                                 "channel zeroed: did you remove the same index in both layers, and keep the next "
                                 "layer's bias, padding and kernel size?")
    return report(True, "the channel is gone from the conv's outputs and the next conv's inputs, and the outputs "
                        "equal the original's with that channel zeroed")


def fc_columns(fc_columns) -> bool:
    """``fc_columns(channel, positions)`` must list the Linear inputs that read ``channel`` after a Flatten."""
    if not callable(fc_columns):
        return report(False, "define fc_columns(channel, positions) returning a list of column indices")
    for channels, h, w in ((16, 5, 5), (3, 2, 4), (1, 7, 7)):
        positions = h * w
        feature_map = torch.arange(channels * positions, dtype=torch.float32).reshape(1, channels, h, w)
        flat = nn.Flatten()(feature_map)[0]
        for channel in sorted({0, channels // 2, channels - 1}):
            got, error = run_safely(fc_columns, channel, positions)
            if error:
                return report(False, f"fc_columns({channel}, {positions}) raised {error}")
            if got is None or got is Ellipsis:
                return report(False, "the function returns nothing yet: return a list of column indices")
            try:
                got = [int(i) for i in (got.tolist() if isinstance(got, torch.Tensor) else got)]
            except (TypeError, ValueError):
                return report(False, f"return a list of integers, got {got!r}")
            expected = [i for i in range(len(flat)) if feature_map[0, channel].flatten().eq(flat[i]).any()]
            if sorted(got) == expected:
                continue
            if len(got) != positions:
                return report(False, f"channel {channel} of a {h}×{w} feature map fills {positions} columns after "
                                     f"Flatten, you returned {len(got)}")
            return report(False, f"for channel {channel} with {positions} positions expected columns "
                                 f"{expected[0]}..{expected[-1]}: Flatten writes each channel's positions one after "
                                 "the other, channel by channel")
    return report(True, "after a Flatten, channel c owns the block of columns c*H*W ... (c+1)*H*W - 1")


def most_sensitive_layer(answer, scan: dict, fractions) -> bool:
    """Reading exercise: the layer whose channels cost the most validation accuracy when removed, over the scan.

    ``scan[layer]`` holds the validation accuracy with each fraction of ``fractions`` of that layer removed; the most
    sensitive layer has the lowest mean accuracy over the fractions above zero.
    """
    if answer is None or answer is ...:
        return report(False, "set my_layer to the name of a layer of the scan, as a string (for example \"conv2\").")
    if not isinstance(answer, str):
        return report(False, f"my_layer must be a layer name as a string, got {answer!r}.")
    if answer not in scan:
        return report(False, f"{answer!r} was not scanned; the layers are {', '.join(scan)}.")
    keep = [i for i, f in enumerate(fractions) if f > 0]
    mean = {layer: sum(values[i] for i in keep) / len(keep) for layer, values in scan.items()}
    most = min(mean, key=mean.get)
    if answer == most:
        return report(True, f"{answer}: {mean[answer]:.2%} mean validation accuracy over the removal fractions, the "
                            "lowest curve of the plot. Removing its channels costs the most.")
    return report(False, f"{answer}'s curve averages {mean[answer]:.2%}; another layer's averages {mean[most]:.2%}. "
                         "The most sensitive layer is the one whose curve falls first and lowest.")
