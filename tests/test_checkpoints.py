import copy

import pytest
import torch
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

    first = cu.checkpoints.load_or_train("small", small, train, data=data, config={"epochs": 1})
    second = cu.checkpoints.load_or_train("small", small, train, data=data, config={"epochs": 1})
    assert len(calls) == 1
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))
    assert not second.training
    assert cu.checkpoints.history("small", {"epochs": 1}, data)[0]["epoch"] == 1
    out = capsys.readouterr().out
    assert "trained small" in out and "loaded small from the cache" in out
    assert list(cache.iterdir()) == [cu.checkpoints.cache_path("small", {"epochs": 1}, data)]


def test_the_cache_key_holds_the_kind_the_config_and_the_data(cache):
    data, other = blobs(seed=0), blobs(seed=1)
    path = cu.checkpoints.cache_path("m", {"epochs": 1}, data)
    assert path.parent == cache and path.name.startswith("m-custom-") and path.suffix == ".pt"
    assert path == cu.checkpoints.cache_path("m", {"epochs": 1}, data)
    assert path != cu.checkpoints.cache_path("m", {"epochs": 2}, data)
    assert path != cu.checkpoints.cache_path("n", {"epochs": 1}, data)
    assert path != cu.checkpoints.cache_path("m", {"epochs": 1}, other)
    smaller = cu.data.Splits(data.train.subset(100), data.val, data.test, data.classes)
    assert path != cu.checkpoints.cache_path("m", {"epochs": 1}, smaller)
    assert path != cu.checkpoints.cache_path("m", {"epochs": 1}, data.train)  # a single split is keyed too


def test_load_or_train_retrains_a_file_that_does_not_fit(cache, capsys):
    data = blobs()
    calls = []
    train = lambda m: calls.append(1) or cu.train.fit(m, data, 1)  # noqa: E731
    cu.checkpoints.load_or_train("m", small, train, data=data, config={"epochs": 1})
    cu.checkpoints.load_or_train("m", small, train, data=data, config={"epochs": 2})
    assert len(calls) == 2  # another config, another file
    wider = lambda: cu.models.mlp(hidden=(32,), in_features=8, classes=3)  # noqa: E731
    model = cu.checkpoints.load_or_train("m", wider, train, data=data, config={"epochs": 2})
    assert len(calls) == 3 and model.fc1.out_features == 32
    assert "does not match the model" in capsys.readouterr().out
    cu.checkpoints.cache_path("m", {"epochs": 2}, data).write_bytes(b"not a checkpoint")
    cu.checkpoints.load_or_train("m", wider, train, data=data, config={"epochs": 2})
    assert len(calls) == 4 and "cannot be read as a checkpoint" in capsys.readouterr().out


def test_cache_kinds_must_be_plain_names(cache):
    for bad in ("a/b", "../x", "", ".hidden"):
        with pytest.raises(ValueError, match="plain name"):
            cu.checkpoints.cache_path(bad, {}, blobs())


def test_load_or_compute_caches_tensors_by_config_and_data(cache, capsys):
    data = blobs()
    calls = []

    def compute():
        calls.append(1)
        return {"a": torch.arange(3.0), "b": torch.ones(2, 2)}

    first = cu.checkpoints.load_or_compute("t", compute, data=data, config={"v": 1})
    again = cu.checkpoints.load_or_compute("t", compute, data=data, config={"v": 1})
    assert len(calls) == 1 and torch.equal(first["a"], again["a"]) and again["b"].shape == (2, 2)
    cu.checkpoints.load_or_compute("t", compute, data=data, config={"v": 2})
    assert len(calls) == 2
    cu.checkpoints.cache_path("t", {"v": 1}, data).write_bytes(b"truncated")
    cu.checkpoints.load_or_compute("t", compute, data=data, config={"v": 1})
    assert len(calls) == 3 and "recomputing t" in capsys.readouterr().out
    with pytest.raises(ValueError, match="dict of tensors"):
        cu.checkpoints.load_or_compute("u", lambda: [1, 2], data=data)


def test_fingerprint_tells_models_tensors_and_data_apart():
    a, b = small(), small()
    with torch.no_grad():
        b.fc1.weight[0, 0] += 1.0
    assert cu.checkpoints.fingerprint(a) == cu.checkpoints.fingerprint(copy.deepcopy(a))
    assert cu.checkpoints.fingerprint(a) != cu.checkpoints.fingerprint(b)
    assert cu.checkpoints.fingerprint(torch.ones(3)) != cu.checkpoints.fingerprint(torch.ones(4))
    assert cu.checkpoints.fingerprint({"lr": 1}) != cu.checkpoints.fingerprint({"lr": 2})
    assert len(cu.checkpoints.fingerprint(a)) == 12


def test_baselines_are_cached_under_the_dataset_name(cache, mnist, monkeypatch):
    monkeypatch.setitem(cu.baselines.RECIPES, "lenet300-100",
                        dict(epochs=2, lr=1e-3, batch_size=64, schedule=None, seed=0))
    tiny = cu.data.Splits(mnist.train.subset(2000), mnist.val.subset(500), mnist.test, mnist.classes)
    model = cu.baselines.lenet300_100(tiny, verbose=False)
    assert [p.name.startswith("lenet300-100-mnist-") for p in cache.iterdir()] == [True]
    again = cu.baselines.lenet300_100(tiny, verbose=False)
    assert torch.equal(model.fc1.weight, again.fc1.weight)
    assert cu.train.evaluate(model, mnist.val.subset(500)).accuracy > 0.8
    assert len(cu.baselines.training_history("lenet300-100", tiny)) == 2


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


def test_fingerprint_changes_with_the_weights():
    model = cu.models.mlp(hidden=(3,), in_features=2, classes=2)
    a = cu.checkpoints.fingerprint(model)
    assert a == cu.checkpoints.fingerprint(model) and len(a) == 12
    with torch.no_grad():
        model.fc1.bias[0] += 1.0
    assert cu.checkpoints.fingerprint(model) != a


def test_the_pruned_baseline_is_cached_with_its_masks_and_log(cache, mnist, monkeypatch):
    monkeypatch.setitem(cu.baselines.RECIPES, "lenet300-100",
                        dict(epochs=1, lr=1e-3, batch_size=64, schedule=None, seed=0))
    tiny = cu.data.Splits(mnist.train.subset(1000), mnist.val.subset(300), mnist.test.subset(300), mnist.classes)
    recipe = dict(keep=0.3, steps=2, epochs=1)
    pruned = cu.baselines.lenet300_100_pruned(tiny, verbose=False, **recipe)
    assert cu.metrics.sparsity(pruned) == pytest.approx(0.7, abs=2e-3)
    assert all(cu.masks.is_masked(m) for m in cu.models.prunable_layers(pruned).values())
    log = cu.baselines.training_history("lenet300-100-pruned", tiny, **recipe)
    assert [r["event"] for r in log].count("prune") == 2
    again = cu.baselines.lenet300_100_pruned(tiny, verbose=False, **recipe)  # from the cache: same weights
    assert torch.equal(cu.masks.effective_weight(again.fc1), cu.masks.effective_weight(pruned.fc1))
    with pytest.raises(ValueError, match="unknown baseline"):
        cu.baselines.training_history("resnet", tiny)


def test_a_saved_checkpoint_is_readable_by_others_as_the_umask_allows(tmp_path):
    """A model cache shared by a workshop (one folder, several users) must not be owner-only, as mkstemp makes it."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = cu.checkpoints.save(torch.nn.Linear(2, 2), tmp_path / "m.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
