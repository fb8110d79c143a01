import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import course_utils as cu
from conftest import blobs


def small():
    torch.manual_seed(0)
    return cu.models.mlp(hidden=(16,), in_features=8, classes=3)


def test_save_then_load_restores_every_weight(tmp_path):
    model = small()
    path = cu.checkpoints.save(model, tmp_path / "m.pt", meta={"epochs": 3})
    other = cu.models.mlp(hidden=(16,), in_features=8, classes=3)
    cu.checkpoints.load(other, path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    assert cu.checkpoints.meta(path) == {"epochs": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path):
    path = cu.checkpoints.save(small(), tmp_path / "m.pt")
    before = path.read_bytes()
    with pytest.raises(TypeError):
        cu.checkpoints.save(small(), path, meta={"not json": object()})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_mismatched_checkpoint_names_the_keys(tmp_path):
    path = cu.checkpoints.save(small(), tmp_path / "m.pt")
    wider = cu.models.mlp(hidden=(32,), in_features=8, classes=3)
    with pytest.raises(cu.checkpoints.CheckpointMismatchError) as info:
        cu.checkpoints.load(wider, path)
    message = str(info.value)
    assert "fc1.weight: checkpoint (16, 8) vs model (32, 8)" in message and "fc2.weight" in message
    deeper = cu.models.mlp(hidden=(16, 16), in_features=8, classes=3)
    with pytest.raises(cu.checkpoints.CheckpointMismatchError, match=r"missing keys \['fc3.bias', 'fc3.weight'\]"):
        cu.checkpoints.load(deeper, path)


class Arbitrary:
    """Any class: unpickling it would run code from the file, which weights_only=True refuses."""


def test_load_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "payload": Arbitrary()}, path)
    with pytest.raises(cu.checkpoints.CheckpointMismatchError, match="cannot be read"):
        cu.checkpoints.load(small(), path)
    with pytest.raises(FileNotFoundError):
        cu.checkpoints.load(small(), tmp_path / "missing.pt")


def test_masked_models_are_saved_as_plain_weights(tmp_path):
    model = small()
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    path = cu.checkpoints.save(model, tmp_path / "masked.pt")
    plain = cu.checkpoints.load(small(), path)
    x = torch.randn(5, 8)
    assert torch.allclose(plain(x), model(x)) and (plain.fc1.weight == 0).float().mean() == 0.5


def test_load_or_train_trains_once_then_loads(cache, capsys):
    data = blobs()
    calls = []

    def train(model):
        calls.append(1)
        return cu.train.fit(model, data, 1)

    first = cu.checkpoints.load_or_train("small", small, train, config={"epochs": 1})
    second = cu.checkpoints.load_or_train("small", small, train, config={"epochs": 1})
    assert len(calls) == 1
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))
    assert not second.training
    assert cu.checkpoints.meta("small")["history"][0]["epoch"] == 1
    out = capsys.readouterr().out
    assert "trained small" in out and "loaded small from the cache" in out
    assert list(cache.iterdir()) == [cache / "small.pt"]


def test_load_or_train_retrains_on_a_changed_config_or_shape(cache, capsys):
    data = blobs()
    calls = []
    train = lambda m: calls.append(1) or cu.train.fit(m, data, 1)  # noqa: E731
    cu.checkpoints.load_or_train("m", small, train, config={"epochs": 1})
    cu.checkpoints.load_or_train("m", small, train, config={"epochs": 2})
    assert len(calls) == 2 and "was trained with config" in capsys.readouterr().out
    wider = lambda: cu.models.mlp(hidden=(32,), in_features=8, classes=3)  # noqa: E731
    model = cu.checkpoints.load_or_train("m", wider, train, config={"epochs": 2})
    assert len(calls) == 3 and model.fc1.out_features == 32
    assert "does not match the model" in capsys.readouterr().out
    (cache / "m.pt").write_bytes(b"not a checkpoint")
    cu.checkpoints.load_or_train("m", wider, train, config={"epochs": 2})
    assert len(calls) == 4


def test_checkpoint_names_must_be_plain(cache):
    for bad in ("a/b", "../x", "", ".hidden"):
        with pytest.raises(ValueError, match="plain file name"):
            cu.checkpoints.path_for(bad)
    assert cu.checkpoints.path_for("lenet") == cache / "lenet.pt"


def test_baselines_are_cached_under_the_dataset_name(cache, mnist, monkeypatch):
    monkeypatch.setitem(cu.baselines.RECIPES, "lenet300-100",
                        dict(epochs=2, lr=1e-3, batch_size=64, schedule=None, seed=0))
    tiny = cu.data.Splits(mnist.train.subset(2000), mnist.val.subset(500), mnist.test, mnist.classes)
    model = cu.baselines.lenet300_100(tiny, verbose=False)
    assert (cache / "lenet300-100-mnist.pt").is_file()
    again = cu.baselines.lenet300_100(tiny, verbose=False)
    assert torch.equal(model.fc1.weight, again.fc1.weight)
    assert cu.train.evaluate(model, mnist.val.subset(500)).accuracy > 0.8


def test_loading_into_a_masked_model_keeps_its_mask(tmp_path):
    source = small()
    path = cu.checkpoints.save(source, tmp_path / "plain.pt")
    target = cu.models.mlp(hidden=(16,), in_features=8, classes=3)
    prune.random_unstructured(target.fc1, "weight", amount=0.5)
    mask = target.fc1.weight_mask.clone()
    cu.checkpoints.load(target, path)
    assert torch.equal(target.fc1.weight_orig, source.fc1.weight)
    x = torch.randn(4, 8)
    assert torch.equal(target.fc1.weight_mask, mask) and torch.allclose(
        target(x), torch.nn.functional.linear(torch.relu(torch.nn.functional.linear(x, source.fc1.weight * mask,
                                                                                     source.fc1.bias)),
                                              source.fc2.weight, source.fc2.bias))
