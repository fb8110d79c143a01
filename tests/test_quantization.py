"""Tests of course_utils.quantization (linear quantisation, int8 post-training quantisation, weight sharing,
the compressed file) and of course_utils.compressed_file (Huffman coding, relative indices, the file's checks)."""

from __future__ import annotations

import copy
import io
import json
import os
import struct
import subprocess
import sys
import warnings
import zlib
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize, prune

import course_utils as cu
from course_utils import compressed_file as cf
from course_utils import huffman as hc
from course_utils import quantization as q

from conftest import blobs

ROOT = Path(__file__).resolve().parent.parent


def small_mlp(seed: int = 0, hidden=(16, 12), dim: int = 8, classes: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    return cu.models.mlp(hidden=hidden, in_features=dim, classes=classes)


def prune_smallest(model: nn.Module, amount: float) -> nn.Module:
    """Zero the ``amount`` smallest-magnitude weights of every Linear/Conv2d layer, in place."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                w = m.weight
                k = int(amount * w.numel())
                if k:
                    w[w.abs() <= w.abs().flatten().kthvalue(k).values] = 0
    return model


def state_bytes(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return len(buffer.getvalue())


# --------------------------------------------------------------------------- linear quantisation


def test_quantize_tensor_matches_the_formula_and_errs_at_most_half_a_step():
    x = torch.tensor([[-1.0, -0.25, 0.0], [0.5, 1.3, 2.0]])
    qt = q.quantize_tensor(x, 4)
    scale = (2.0 - (-1.0)) / 15
    zero_point = round(1.0 / scale)  # 5
    expected = torch.clamp(torch.round(x / scale) + zero_point, 0, 15)
    assert qt.bits == 4 and qt.q.dtype == torch.uint8
    assert qt.scale.item() == pytest.approx(scale) and qt.zero_point.item() == zero_point
    assert torch.equal(qt.q.float(), expected)
    back = q.dequantize(qt)
    assert torch.allclose(back, (expected - zero_point) * scale)
    assert (back - x).abs().max() <= scale / 2 + 1e-6
    assert back[0, 2] == 0  # zero is always exactly representable: pruned weights stay pruned


@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8, 12, 16])
@pytest.mark.parametrize("per_channel", [False, True])
def test_quantisation_error_is_at_most_half_a_step(bits, per_channel):
    g = torch.Generator().manual_seed(bits)
    x = torch.randn(6, 5, 3, generator=g) * torch.tensor([0.01, 0.1, 1.0, 3.0, 10.0, 0.5]).view(6, 1, 1)
    qt = q.quantize_tensor(x, bits, per_channel=per_channel)
    assert int(qt.q.max()) <= 2**bits - 1 and int(qt.q.min()) >= 0
    step = qt.scale.view(-1, 1, 1) if per_channel else qt.scale
    assert ((q.dequantize(qt) - x).abs() <= step / 2 * (1 + 1e-5) + 1e-7).all()


def test_per_channel_gives_each_row_its_own_scale():
    x = torch.stack([torch.linspace(-0.01, 0.02, 10), torch.linspace(-5.0, 10.0, 10), torch.zeros(10)])
    qt = q.quantize_tensor(x, 8, per_channel=True)
    assert qt.scale.shape == (3,) and qt.zero_point.shape == (3,)
    assert qt.scale[0].item() == pytest.approx(0.03 / 255) and qt.scale[1].item() == pytest.approx(15.0 / 255)
    assert torch.equal(q.dequantize(qt)[2], torch.zeros(10))  # an all-zero row is fine
    per_tensor = (q.dequantize(q.quantize_tensor(x, 8)) - x)[0].abs().max()
    per_row = (q.dequantize(qt) - x)[0].abs().max()
    assert per_row < per_tensor / 100  # the small row is no longer crushed by the large one


@pytest.mark.parametrize("bits", [0, 17, -1, 4.0, True, "8", None])
def test_bits_outside_1_to_16_are_refused_everywhere(bits, tmp_path):
    with pytest.raises(ValueError, match="bits must be an integer from 1 to 16"):
        q.quantize_tensor(torch.randn(3), bits)
    with pytest.raises(ValueError, match="bits must be an integer from 1 to 16"):
        q.share_weights(small_mlp(), bits)
    if bits is not None:  # None means "infer from the shared layers" for save_compressed
        with pytest.raises(ValueError, match="bits must be an integer from 1 to 16"):
            q.save_compressed(small_mlp(), tmp_path / "m.cdc", bits=bits)
        assert not list(tmp_path.iterdir())


def test_quantize_tensor_validates_its_input():
    with pytest.raises(ValueError, match="floating-point"):
        q.quantize_tensor(torch.arange(4), 8)
    with pytest.raises(ValueError, match="empty"):
        q.quantize_tensor(torch.zeros(0), 8)
    with pytest.raises(ValueError, match="NaN"):
        q.quantize_tensor(torch.tensor([1.0, float("nan")]), 8)
    with pytest.raises(ValueError, match="QuantizedTensor"):
        q.dequantize(torch.zeros(3))


# --------------------------------------------------------------------------- k-means and weight sharing


def test_kmeans_finds_the_centroids_and_assignments_of_a_hand_made_tensor():
    values = torch.tensor([2.2, -1.0, -0.9, 1.8, -1.1, 2.0, 5.0])
    centroids, assignment = q.kmeans_1d(values, 3)
    assert torch.allclose(centroids, torch.tensor([-1.0, 2.0, 5.0]))
    assert assignment.tolist() == [1, 0, 0, 1, 0, 1, 2]


def test_kmeans_initialises_linearly_over_the_range():
    # Linear init puts centroids at 0, 5 and 10. Nothing is nearest to 5, so that centroid stays there;
    # a density (quantile) or random initialisation would not place one there.
    centroids, assignment = q.kmeans_1d(torch.tensor([0.0, 1.0, 10.0]), 3)
    assert centroids.tolist() == [0.5, 5.0, 10.0] and assignment.tolist() == [0, 0, 2]
    five, _ = q.kmeans_1d(torch.tensor([-3.0, 0.5, 1.0, 2.0, 9.0]), 5)  # starts from linspace(-3, 9, 5)
    assert torch.allclose(five, torch.tensor([-3.0, 0.75, 2.0, 6.0, 9.0]))
    density, _ = q.kmeans_1d(torch.tensor([0.0, 1.0, 10.0]), 3, init="density")
    assert density.tolist() != centroids.tolist()
    with pytest.raises(ValueError, match="unknown init"):
        q.kmeans_1d(torch.ones(3), 2, init="kmeans++")


def test_share_weights_clusters_only_the_nonzero_weights_and_keeps_zeros_exactly_zero():
    layer = nn.Linear(4, 2, bias=False)
    w = torch.tensor([[0.0, -1.0, -0.8, 3.0], [3.2, 0.0, -1.2, 0.0]])
    with torch.no_grad():
        layer.weight.copy_(w)
    model = nn.Sequential(OrderedDict([("fc", layer)]))
    q.share_weights(model, 1)
    shared = q.shared_layers(model)["fc"]
    # Zeros are not clustered: with them, a centroid would sit near 0; without, the clusters are ~-1 and ~3.1.
    assert torch.allclose(shared.centroids, torch.tensor([-1.0, 3.1]))
    assert shared.index.tolist() == [[-1, 0, 0, 1], [1, -1, 0, -1]] and shared.bits == 1
    assert torch.equal(model.fc.weight == 0, w == 0)
    assert torch.equal(shared.weight(), model.fc.weight.detach())
    assert len(set(model.fc.weight.detach().flatten().tolist())) == 3  # 0 and the two centroids


def test_share_weights_uses_at_most_2_to_the_bits_values_per_layer_and_checks_its_arguments():
    model = prune_smallest(small_mlp(), 0.5)
    before = copy.deepcopy(model)
    q.share_weights(model, 2, layers=["fc1", "fc2"])
    for name in ("fc1", "fc2"):
        values = getattr(model, name).weight.detach()
        assert len(set(values[values != 0].tolist())) <= 4
        assert torch.equal(values == 0, getattr(before, name).weight == 0)
    assert torch.equal(model.fc3.weight, before.fc3.weight)  # not in `layers`: untouched
    assert set(q.shared_layers(model)) == {"fc1", "fc2"}
    with pytest.raises(ValueError, match="already weight-shared"):
        q.share_weights(model, 2, layers="fc1")
    with pytest.raises(ValueError, match="unknown layer"):
        q.share_weights(small_mlp(), 2, layers=["conv9"])


def test_share_weights_makes_a_torch_prune_mask_permanent():
    model = small_mlp()
    prune.l1_unstructured(model.fc1, "weight", amount=0.6)
    zeros = model.fc1.weight == 0
    q.share_weights(model, 3)
    assert not hasattr(model.fc1, "weight_mask")
    assert torch.equal(model.fc1.weight == 0, zeros)


def test_the_gradient_of_a_centroid_is_the_sum_of_the_gradients_of_its_weights():
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, 0.0, -0.4], [0.6, -0.5, 0.0]]))
    model = q.share_weights(nn.Sequential(OrderedDict([("fc", layer)])), 1)
    index = q.shared_layers(model)["fc"].index
    assert index.tolist() == [[1, -1, 0], [1, 0, -1]]
    x, target = torch.randn(5, 3), torch.randn(5, 2)

    plain = nn.Linear(3, 2)  # the same weights as ordinary parameters, to get dL/dW
    with torch.no_grad():
        plain.weight.copy_(model.fc.weight)
        plain.bias.copy_(model.fc.bias)
    nn.functional.mse_loss(plain(x), target).backward()
    nn.functional.mse_loss(model(x), target).backward()

    grad_w = plain.weight.grad
    by_hand = torch.stack([grad_w[index == c].sum() for c in range(2)])
    centroids = model.fc.parametrizations.weight.original
    assert torch.allclose(centroids.grad, by_hand, atol=1e-7)
    assert torch.allclose(by_hand, torch.stack([grad_w[0, 2] + grad_w[1, 1], grad_w[0, 0] + grad_w[1, 0]]))
    assert [p.shape for p in model.parameters()] == [torch.Size([2]), torch.Size([2])]  # bias, codebook


def test_finetune_centroids_trains_the_codebook_with_fit_and_pruned_weights_stay_zero():
    data = blobs()
    model = small_mlp()
    cu.train.fit(model, data, 5, lr=1e-2, batch_size=32, progress=False)
    prune_smallest(model, 0.7)
    zeros = {n: m.weight == 0 for n, m in model.named_children() if isinstance(m, nn.Linear)}
    q.share_weights(model, 2)
    before = {n: s.centroids for n, s in q.shared_layers(model).items()}
    calls = []
    history = q.finetune_centroids(model, data, 3, lr=1e-2, batch_size=32, progress=False,
                                   after_step=lambda m: calls.append(1))
    assert len(history) == 3 and len(calls) == 3 * 12  # fit's loop ran (360 examples / 32 a batch)
    after = q.shared_layers(model)
    for name, mask in zeros.items():
        weight = getattr(model, name).weight.detach()
        assert torch.equal(weight == 0, mask), name  # exactly the pruned weights are zero
        assert not torch.equal(after[name].centroids, before[name])  # the centroids moved
        assert len(set(weight[weight != 0].tolist())) <= 4
    assert cu.train.evaluate(model, data.val).accuracy > 0.9
    with pytest.raises(ValueError, match="share_weights"):
        q.finetune_centroids(small_mlp(), data, 1)


def test_remove_sharing_gives_ordinary_layers_with_the_same_outputs_and_spares_deep_copies():
    model = q.share_weights(prune_smallest(small_mlp(), 0.5), 3)
    x = torch.randn(7, 8)
    expected = model(x).detach()
    twin = copy.deepcopy(model)
    q.remove_sharing(twin)
    assert type(twin.fc1) is nn.Linear and isinstance(twin.fc1.weight, nn.Parameter)
    assert sorted(twin.state_dict()) == sorted(small_mlp().state_dict())
    assert torch.equal(twin(x), expected)
    assert torch.equal(model(x), expected)  # the original still works (it shared a class with its copy)
    assert q.shared_layers(model) and not q.shared_layers(twin)


# --------------------------------------------------------------------------- Huffman coding


def test_huffman_code_lengths_of_a_textbook_example():
    # CLRS 16.3: frequencies a..f = 45, 13, 12, 16, 9, 5 give code lengths 1, 3, 3, 3, 4, 4.
    assert hc.code_lengths(torch.tensor([45, 13, 12, 16, 9, 5])).lengths.tolist() == [1, 3, 3, 3, 4, 4]
    assert hc.code_lengths(torch.tensor([0, 7, 0])).lengths.tolist() == [0, 1, 0]


@pytest.mark.parametrize("symbols", [
    torch.tensor([], dtype=torch.int64), torch.tensor([3]), torch.full((50,), 2),
    torch.randint(0, 64, (3000,), generator=torch.Generator().manual_seed(0)),
    (torch.randn(5000, generator=torch.Generator().manual_seed(1)).abs() * 6).long().clamp(max=31),
])
def test_huffman_round_trips_and_beats_a_fixed_width_on_skewed_data(symbols):
    alphabet = 64
    data = hc.huffman_encode(symbols, alphabet)
    decoded, end = hc.huffman_decode(data + b"tail")
    assert torch.equal(decoded, symbols) and end == len(data)
    if len(symbols) == 5000:  # half-normal: skewed towards small symbols
        assert len(data) < 5000 * 5 / 8 * 0.8
    with pytest.raises(ValueError, match="symbols must lie"):
        hc.huffman_encode(torch.tensor([64]), alphabet)


def test_huffman_decode_rejects_truncated_data():
    data = hc.huffman_encode(torch.randint(0, 8, (100,), generator=torch.Generator().manual_seed(0)), 8)
    for cut in (3, len(data) - 1):
        with pytest.raises(ValueError):
            hc.huffman_decode(data[:cut])


# --------------------------------------------------------------------------- the compressed file


def test_gaps_with_filler_zeros_when_a_gap_is_too_long():
    positions = torch.tensor([0, 3, 44, 45])
    symbols = cf.encode_gaps(positions, 3)  # gaps up to 7; code 0 = a filler zero 7 positions on
    assert symbols.tolist() == [1, 3, 0, 0, 0, 0, 0, 6, 1]  # 41 = 5 fillers x 7 + 6
    assert torch.equal(cf.decode_gaps(symbols, 3), positions)
    wide = cf.encode_gaps(positions, 8)
    assert wide.tolist() == [1, 3, 41, 1] and torch.equal(cf.decode_gaps(wide, 8), positions)


def test_gap_coding_checks_its_arguments():
    with pytest.raises(ValueError, match="strictly increasing"):
        cf.encode_gaps(torch.tensor([3, 3]), 5)
    with pytest.raises(ValueError, match="gap_bits must be an integer from 1 to 16"):
        cf.encode_gaps(torch.tensor([1]), 0)
    with pytest.raises(ValueError, match=r"gap symbols must lie in \[0, 7\]"):
        cf.decode_gaps(torch.tensor([8]), 3)


def _deep_compressed(model: nn.Module, bits: int = 6, amount: float = 0.9) -> nn.Module:
    return q.share_weights(prune_smallest(model, amount), bits)


@pytest.mark.parametrize("name", ["mlp", "lenet5", "random_mlp", "cnn_with_batchnorm"])
def test_compressed_file_round_trips_to_identical_outputs(name, tmp_path):
    torch.manual_seed(0)
    if name == "mlp":
        model, x = _deep_compressed(cu.models.mlp()), torch.randn(64, 1, 28, 28)
    elif name == "lenet5":
        model, x = _deep_compressed(cu.models.lenet5()), torch.randn(64, 1, 28, 28)
    elif name == "random_mlp":
        model = _deep_compressed(cu.models.mlp(hidden=(37, 23, 11), in_features=50, classes=7), bits=3, amount=0.6)
        x = torch.randn(64, 50)
    else:
        model = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(1, 4, 3, padding=1)), ("bn1", nn.BatchNorm2d(4)), ("relu1", nn.ReLU()),
            ("pool1", nn.AvgPool2d(2)), ("conv2", nn.Conv2d(4, 6, 3, bias=False)), ("relu2", nn.LeakyReLU(0.1)),
            ("pool2", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("drop", nn.Dropout(0.2)),
            ("fc", nn.Linear(6, 3))]))
        model.train()
        model(torch.randn(16, 1, 12, 12))  # give BatchNorm running statistics
        model = _deep_compressed(model.eval(), bits=4, amount=0.5)
        x = torch.randn(8, 1, 12, 12)
    model.eval()
    path = tmp_path / f"{name}.cdc"
    size = q.save_compressed(model, path)
    assert size == os.path.getsize(path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    loaded = q.load_compressed(path)
    assert not q.shared_layers(loaded) and not loaded.training
    assert [type(m) for m in loaded.children()] == [parametrize.type_before_parametrizations(m) for m in model.children()]
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert sorted(loaded.state_dict()) == sorted(q.remove_sharing(copy.deepcopy(model)).state_dict())
    if name == "mlp":  # 90% zeros, 6 bits: far below the 1,069 KB of torch.save
        assert size < 40_000 < state_bytes(cu.models.mlp()) / 25
        layout = {row["name"]: row for row in q.compressed_layout(path)}
        assert layout["fc1.weight"]["gap_bits"] == 5 and layout["fc1.weight"]["nonzero"] == 23520
        assert layout["fc1.bias"]["bytes"] == 4 * 300
    if name == "lenet5":
        assert {row["name"]: row.get("gap_bits") for row in q.compressed_layout(path)}["conv1.weight"] == 8


def test_a_pruned_model_without_sharing_is_stored_sparse_and_read_back_exactly(tmp_path):
    model = prune_smallest(small_mlp(), 0.5)
    size = q.save_compressed(model, tmp_path / "p.cdc")
    x = torch.randn(5, 8)
    assert torch.equal(q.load_compressed(tmp_path / "p.cdc")(x), model(x))
    layout = {row["name"]: row for row in q.compressed_layout(tmp_path / "p.cdc")}
    assert layout["fc1.weight"]["encoding"] == "sparse" and layout["fc1.weight"]["nonzero"] == 64
    fixed = q.save_compressed(model, tmp_path / "f.cdc", huffman=False)
    assert torch.equal(q.load_compressed(tmp_path / "f.cdc")(x), model(x)) and fixed != size


def test_fixed_width_coding_round_trips_and_huffman_is_smaller_on_skewed_symbols(tmp_path):
    symbols = torch.tensor([0] * 90 + [1] * 6 + [2, 3, 5, 7])
    fixed = hc.fixed_encode(symbols, 3)
    decoded, end = hc.fixed_decode(fixed, 0, 3)
    assert torch.equal(decoded, symbols) and end == len(fixed) == 4 + (100 * 3 + 7) // 8
    assert len(hc.huffman_encode(symbols, 8)) < len(fixed)
    with pytest.raises(ValueError):
        hc.fixed_encode(torch.tensor([8]), 3)
    model = _deep_compressed(small_mlp(), bits=3, amount=0.5)
    x = torch.randn(5, 8)
    for huffman in (True, False):
        q.save_compressed(model, tmp_path / "m.cdc", huffman=huffman)
        assert torch.equal(q.load_compressed(tmp_path / "m.cdc")(x), model(x))
        assert all(row.get("huffman", huffman) == huffman for row in q.compressed_layout(tmp_path / "m.cdc"))


def test_save_compressed_clusters_unshared_layers_when_given_bits(tmp_path):
    model = prune_smallest(small_mlp(), 0.5)
    q.save_compressed(model, tmp_path / "a.cdc", bits=3, gap_bits=4)
    reference = q.share_weights(copy.deepcopy(model), 3)
    x = torch.randn(5, 8)
    assert torch.equal(q.load_compressed(tmp_path / "a.cdc")(x), reference(x))
    assert all(row.get("gap_bits", 4) == 4 for row in q.compressed_layout(tmp_path / "a.cdc"))
    with pytest.raises(ValueError, match="other bits"):
        q.save_compressed(reference, tmp_path / "b.cdc", bits=4)


def test_save_compressed_replaces_a_file_and_refuses_what_it_cannot_describe(tmp_path):
    path = tmp_path / "m.cdc"
    path.write_bytes(b"old")
    model = _deep_compressed(small_mlp(), bits=2, amount=0.5)
    assert q.save_compressed(model, path) == path.stat().st_size > 3

    class Residual(nn.Module):
        def forward(self, x):
            return x + 1

    odd = nn.Sequential(OrderedDict([("fc1", nn.Linear(8, 3)), ("res", Residual())]))
    q.share_weights(odd, 2)
    with pytest.raises(ValueError, match="cannot describe module 'res' of type Residual"):
        q.save_compressed(odd, tmp_path / "odd.cdc")
    with pytest.raises(ValueError, match="nn.Sequential"):
        q.save_compressed(q.share_weights(nn.Linear(3, 2), 2), tmp_path / "odd.cdc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.cdc"]


@pytest.fixture()
def compressed_file(tmp_path):
    path = tmp_path / "model.cdc"
    q.save_compressed(_deep_compressed(small_mlp(), bits=3, amount=0.5), path)
    return path


def _repack(path: Path, edit) -> None:
    """Rewrite a file with its JSON header edited by ``edit`` and a valid checksum."""
    data = path.read_bytes()
    magic, version, header_len, payload_len = struct.unpack_from("<8sHIQ", data)
    start = struct.calcsize("<8sHIQ")
    header = json.loads(zlib.decompress(data[start:start + header_len]))
    edit(header)
    new = zlib.compress(json.dumps(header).encode())
    body = struct.pack("<8sHIQ", magic, version, len(new), payload_len) + new + data[start + header_len:-4]
    path.write_bytes(body + struct.pack("<I", zlib.crc32(body)))


def test_a_truncated_file_is_refused_with_its_name(compressed_file):
    data = compressed_file.read_bytes()
    for cut in (5, 20, len(data) // 2, len(data) - 1):
        compressed_file.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="model.cdc.*truncated"):
            q.load_compressed(compressed_file)


def test_a_foreign_or_corrupted_file_is_refused_with_its_name(compressed_file, tmp_path):
    foreign = tmp_path / "weights.pt"
    torch.save(small_mlp().state_dict(), foreign)
    with pytest.raises(ValueError, match="weights.pt: not a compressed model"):
        q.load_compressed(foreign)
    data = bytearray(compressed_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    compressed_file.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="model.cdc: corrupted file"):
        q.load_compressed(compressed_file)


def test_bits_outside_1_to_16_in_a_file_are_refused(compressed_file):
    def set_bits(header):
        next(t for t in header["tensors"] if t["encoding"] == "shared")["bits"] = 17

    _repack(compressed_file, set_bits)
    with pytest.raises(ValueError, match="model.cdc: tensor 'fc1.weight' has bits=17; it must be an integer from 1 to 16"):
        q.load_compressed(compressed_file)


def test_a_file_naming_an_unknown_module_type_is_refused(compressed_file):
    def swap(header):
        header["architecture"][1]["type"] = "os.system"

    _repack(compressed_file, swap)
    with pytest.raises(ValueError, match="unknown module type 'os.system'"):
        q.load_compressed(compressed_file)


# --------------------------------------------------------------------------- int8 post-training quantisation

APIS = ["torch.ao", pytest.param("torchao", marks=pytest.mark.skipif(
    not cu.int8_apis.api_importable("torchao"), reason="torchao is not installed (pip install torchao==0.18.0)"))]


@pytest.fixture(scope="module")
def trained_mlp():
    data = blobs(n=600, dim=64, classes=4)
    model = small_mlp(hidden=(256, 128), dim=64, classes=4)
    cu.train.fit(model, data, 3, lr=1e-3, batch_size=32, progress=False)
    return model, data


@pytest.mark.parametrize("api", APIS)
def test_int8_dynamic_is_close_to_fp32_smaller_and_leaves_the_model_alone(api, trained_mlp):
    model, data = trained_mlp
    before = copy.deepcopy(model.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation warning reaches the notebook
        quantized = q.int8_dynamic(model, api=api)
        out = cu.train.predict(quantized, data.test.x)
    reference = cu.train.predict(model, data.test.x)
    assert quantized is not model
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert type(model.fc1) is nn.Linear
    assert (out - reference).abs().max() < 0.05 * reference.abs().max()
    assert (out.argmax(1) == reference.argmax(1)).float().mean() >= 0.98
    assert state_bytes(quantized) < 0.4 * state_bytes(model)
    assert cu.metrics.macs(quantized, (64,)) == 64 * 256 + 256 * 128 + 128 * 4  # int8 MACs are still counted


@pytest.mark.parametrize("api", APIS)
def test_int8_static_lenet5_runs_and_keeps_its_accuracy(api, mnist):
    small = cu.data.Splits(cu.data.Split(mnist.train.x[:3000], mnist.train.y[:3000]),
                           cu.data.Split(mnist.val.x[:500], mnist.val.y[:500]),
                           cu.data.Split(mnist.test.x[:400], mnist.test.y[:400]), mnist.classes)
    torch.manual_seed(0)
    model = cu.models.lenet5()
    cu.train.fit(model, small, 2, lr=2e-3, batch_size=64, progress=False)
    before = copy.deepcopy(model.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quantized = q.int8_static(model, small, api=api)
        accuracy = cu.train.evaluate(quantized, small.test).accuracy
    fp32 = cu.train.evaluate(model, small.test).accuracy
    assert fp32 > 0.85 and abs(accuracy - fp32) <= 0.015
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert cu.train.predict(quantized, small.test.x[:1]).shape == (1, 10)  # batch size 1 works too
    assert cu.metrics.macs(quantized) == 117_600 + 240_000 + 48_000 + 10_080 + 840  # LeNet-5's, counted by hand
    if api == "torch.ao":
        assert ".quantized." in type(quantized.module.conv1).__module__  # an int8 kernel, not a float one


def test_int8_functions_check_their_arguments(trained_mlp):
    model, data = trained_mlp
    with pytest.raises(ValueError, match="unknown api"):
        q.int8_dynamic(model, api="tensorrt")
    with pytest.raises(ValueError, match="validation split"):
        q.int8_static(model, data.train)
    with pytest.raises(ValueError, match="no nn.Linear"):
        q.int8_dynamic(nn.Sequential(nn.Conv2d(1, 2, 3)))
    with pytest.raises(ValueError, match="engine"):
        q.int8_dynamic(model, api="torch.ao", engine="tpu")


def test_a_missing_torch_ao_quantization_says_what_to_install(trained_mlp, monkeypatch):
    model, _ = trained_mlp
    torchao_here = cu.int8_apis.api_importable("torchao")  # imported before torch.ao.quantization disappears
    monkeypatch.setitem(sys.modules, "torch.ao.quantization", None)  # as in a PyTorch without it
    with pytest.raises(q.QuantizationAPIUnavailable, match=r"pip install torchao==0\.18\.0"):
        q.int8_dynamic(model, api="torch.ao")
    if torchao_here:  # the default falls back to the maintained API
        assert q.int8_dynamic(model)(torch.randn(2, 64)).shape == (2, 4)
    monkeypatch.setitem(sys.modules, "torchao", None)
    with pytest.raises(q.QuantizationAPIUnavailable, match="no int8 quantisation API is available") as error:
        q.int8_static(model, blobs(dim=64, classes=4))
    assert "torch.ao.quantization" in str(error.value) and "pip install torchao" in str(error.value)


def test_a_missing_torchao_says_what_to_install(trained_mlp, monkeypatch):
    model, data = trained_mlp
    monkeypatch.setitem(sys.modules, "torchao", None)
    for call in (lambda: q.int8_dynamic(model, api="torchao"), lambda: q.int8_static(model, data, api="torchao")):
        with pytest.raises(q.QuantizationAPIUnavailable, match=r"api='torchao' needs .*pip install torchao==0\.18\.0"):
            call()
    assert isinstance(q.int8_dynamic(model), nn.Module)  # torch.ao still works


@pytest.mark.skipif(not cu.int8_apis.api_importable("torchao"), reason="torchao is not installed")
def test_quantising_prints_nothing_on_stderr_in_a_fresh_process():
    code = ("import torch, course_utils as cu; from course_utils import quantization as q\n"
            "m = cu.models.mlp(hidden=(32,), in_features=16, classes=3)\n"
            "for api in ('torch.ao', 'torchao'):\n"
            "    q.int8_dynamic(m, api=api)(torch.randn(2, 16))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""



def test_int8_static_picks_onednn_for_convolutions_and_x86_for_linear_layers(monkeypatch):
    if not {"onednn", "x86"} <= set(torch.backends.quantized.supported_engines):
        pytest.skip("needs the onednn and x86 quantised engines")
    used, real = [], q.using_engine

    def recording(engine):
        used.append(engine)
        return real(engine)

    monkeypatch.setattr(q, "using_engine", recording)
    images = cu.data.Split(torch.randn(20, 1, 28, 28), torch.zeros(20, dtype=torch.long))
    data = cu.data.Splits(images, images, images, tuple("0123456789"))
    q.int8_static(cu.models.lenet5(), data, api="torch.ao")
    q.int8_static(cu.models.mlp(hidden=(8,)), data, api="torch.ao")
    q.int8_static(cu.models.mlp(hidden=(8,)), data, api="torch.ao", engine="onednn")
    assert used == ["onednn", "x86", "onednn"]
