import gzip
import shutil
import socket
import threading
import time
import urllib.error
from pathlib import Path

import pytest
import torch

import course_utils as cu
from course_utils import data as D


def _mnist_raw_dir() -> Path:
    """The folder the session's MNIST was found in (raw or .gz files)."""
    _, where = D.find_files("mnist", download=False)
    return Path(where)


@pytest.fixture()
def no_download(monkeypatch):
    """Make every download fail at once, as when offline."""
    calls = []

    def fail(url, root, filename=None, md5=None, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr("torchvision.datasets.utils.download_url", fail)
    return calls


# ---------------------------------------------------------------- loading


def test_splits_have_the_documented_shapes_types_and_sizes(mnist):
    train, val, test, classes = mnist
    assert train.x.shape == (55000, 1, 28, 28) and val.x.shape == (5000, 1, 28, 28)
    assert test.x.shape == (10000, 1, 28, 28)
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert classes == tuple("0123456789")
    # normalised with MNIST's training mean and std
    assert abs(train.x.mean().item()) < 0.01 and abs(train.x.std().item() - 1) < 0.01
    assert len(train) == 55000 and len(test) == 10000


def test_validation_comes_from_the_training_set_with_a_fixed_seed(mnist):
    counts = torch.bincount(torch.cat([mnist.train.y, mnist.val.y]), minlength=10)
    assert tuple(counts.tolist()) == D.DATASETS["mnist"].train_counts  # nothing lost, nothing from the test set
    again = cu.data.load_dataset("mnist", val_size=5000, seed=0)
    assert torch.equal(again.val.y, mnist.val.y) and torch.equal(again.val.x, mnist.val.x)
    other = cu.data.load_dataset("mnist", val_size=5000, seed=1)
    assert not torch.equal(other.val.y, mnist.val.y)
    # train and validation are disjoint: no validation image appears in the training split
    train_keys = {row.tobytes() for row in mnist.train.x.flatten(1).numpy()}
    overlap = sum(row.tobytes() in train_keys for row in mnist.val.x.flatten(1).numpy())
    assert overlap < 5  # MNIST has a few duplicated images at most; the splits share none otherwise


def test_val_size_zero_gives_an_empty_validation_split():
    splits = cu.data.load_dataset("mnist", val_size=0)
    assert len(splits.val) == 0 and len(splits.train) == 60000


@pytest.mark.parametrize("bad", [-1, 60000, 70000, 1.5, True, "5000"])
def test_val_size_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="val_size"):
        cu.data.load_dataset("mnist", val_size=bad)


def test_unknown_dataset_name_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'.*fashion-mnist.*mnist"):
        cu.data.load_dataset("cifar10")


def test_fashion_mnist_loads_with_its_class_names():
    splits = cu.data.load_dataset("fashion-mnist", val_size=1000)
    assert splits.classes[0] == "T-shirt/top" and splits.classes[9] == "Ankle boot"
    assert splits.train.x.shape == (59000, 1, 28, 28)
    assert torch.bincount(splits.test.y).tolist() == [1000] * 10
    assert cu.data.dataset_name(splits) == "fashion-mnist"


def test_gzipped_files_in_torchvision_layout_load_the_same_tensors(tmp_path, mnist):
    src = _mnist_raw_dir()
    dst = tmp_path / "MNIST" / "raw"
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.name.endswith("ubyte"):
            with open(f, "rb") as fin, gzip.open(dst / (f.name + ".gz"), "wb", compresslevel=1) as fout:
                shutil.copyfileobj(fin, fout)
        elif f.name.endswith(".gz"):
            shutil.copy(f, dst / f.name)
    splits = cu.data.load_dataset("mnist", root=tmp_path, download=False)
    assert torch.equal(splits.test.x, mnist.test.x) and torch.equal(splits.train.y, mnist.train.y)


def test_course_data_dir_is_the_default_root(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert cu.data.data_dir() == tmp_path
    monkeypatch.delenv("COURSE_DATA_DIR")
    assert cu.data.data_dir() == Path.home() / ".cache" / "course_utils" / "data"


# ---------------------------------------------------------------- corrupt files and offline errors


def _copy_mnist(tmp_path) -> Path:
    dst = tmp_path / "MNIST" / "raw"
    dst.mkdir(parents=True)
    for f in _mnist_raw_dir().iterdir():
        if "ubyte" in f.name:
            shutil.copy(f, dst / f.name)
    return dst


def _raw_name(folder: Path, stem: str) -> Path:
    return folder / stem if (folder / stem).exists() else folder / (stem + ".gz")


def test_truncated_file_is_detected_and_named(tmp_path, no_download):
    folder = _copy_mnist(tmp_path)
    path = _raw_name(folder, "t10k-images-idx3-ubyte")
    raw = D._read_idx(path)
    (folder / path.name).unlink()
    (folder / "t10k-images-idx3-ubyte").write_bytes(raw[:-1000])
    with pytest.raises(cu.data.DataUnavailableError) as info:
        cu.data.load_dataset("mnist", root=tmp_path)
    assert "t10k-images-idx3-ubyte" in str(info.value) and "truncated" in str(info.value)


def test_corrupt_labels_are_detected_by_their_class_counts(tmp_path, no_download):
    folder = _copy_mnist(tmp_path)
    path = _raw_name(folder, "train-labels-idx1-ubyte")
    raw = bytearray(D._read_idx(path))
    raw[100] = (raw[100] + 1) % 10  # one label changed: sizes and magic still look right
    path.unlink()
    (folder / "train-labels-idx1-ubyte").write_bytes(bytes(raw))
    with pytest.raises(cu.data.DataUnavailableError, match="examples per class"):
        cu.data.load_dataset("mnist", root=tmp_path)


def test_wrong_magic_number_is_detected(tmp_path, no_download):
    folder = _copy_mnist(tmp_path)
    path = _raw_name(folder, "t10k-labels-idx1-ubyte")
    raw = bytearray(D._read_idx(path))
    raw[3] = 0x03
    path.unlink()
    (folder / "t10k-labels-idx1-ubyte").write_bytes(bytes(raw))
    with pytest.raises(cu.data.DataUnavailableError, match="magic number"):
        cu.data.load_dataset("mnist", root=tmp_path)


def test_offline_with_an_empty_folder_names_every_source_and_the_fix(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(cu.data.DataUnavailableError) as info:
        cu.data.load_dataset("mnist")
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "torchvision download" in message and "Name or service not known" in message
    assert "bash scripts/prepare_offline_data.sh" in message
    assert len(no_download) == 2  # both of torchvision's mirrors were tried for the first file, then it stopped
    assert list(tmp_path.rglob("*")) == []  # nothing half-written, not even empty folders


def test_fashion_mnist_offline_error_names_the_debian_folder(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(D, "DATASETS", {**D.DATASETS, "fashion-mnist": D.DATASETS["fashion-mnist"]._replace(
        system_dirs=(str(tmp_path / "no-debian-package"),))})
    with pytest.raises(cu.data.DataUnavailableError) as info:
        cu.data.load_dataset("fashion-mnist")
    assert "no-debian-package" in str(info.value) and "FashionMNIST" in str(info.value)


def test_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch):
    def half_then_fail(url, root, filename=None, md5=None, **kwargs):
        (Path(root) / filename).write_bytes(b"\x1f\x8b partial")
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr("torchvision.datasets.utils.download_url", half_then_fail)
    with pytest.raises(cu.data.DataUnavailableError, match="connection reset"):
        cu.data.load_dataset("mnist", root=tmp_path)
    assert list(tmp_path.rglob("*")) == []


def test_a_server_that_never_answers_fails_within_seconds(tmp_path, monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    accepted = []
    stop = threading.Event()

    def accept_and_stay_silent():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept_and_stay_silent, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    monkeypatch.setattr(D, "_mirrors", lambda name: ([f"http://127.0.0.1:{port}/"],
                                                      [("train-images-idx3-ubyte.gz", "0" * 32)]))
    try:
        start = time.perf_counter()
        with pytest.raises(cu.data.DataUnavailableError, match="timed out"):
            D.find_files("mnist", root=tmp_path, timeout=1.0)
        assert time.perf_counter() - start < 6
        assert accepted, "the download never reached the silent server"
    finally:
        stop.set()
        thread.join()
        server.close()
        for conn in accepted:
            conn.close()
    assert list(tmp_path.rglob("*")) == []


def test_prepare_command_reports_failure_with_exit_code_1(tmp_path, monkeypatch, capsys, no_download):
    from course_utils.__main__ import main

    monkeypatch.setattr(D, "DATASETS", {"mnist": D.DATASETS["mnist"]})
    monkeypatch.setattr(D, "prepare", lambda names=("mnist",), root=None: {
        n: D.find_files(n, root)[1] for n in names})
    assert main(["prepare", str(tmp_path)]) == 1
    assert "mnist is not available" in capsys.readouterr().err
    assert main(["prepare", str(_mnist_raw_dir())]) == 0
    assert main(["nonsense"]) == 2


def test_warm_command_caches_every_shared_model_and_refuses_an_unknown_dataset(monkeypatch, capsys):
    from course_utils import baselines
    from course_utils.__main__ import main

    built = []
    monkeypatch.setattr(D, "load_dataset", lambda name: name)
    for name in ("lenet300_100", "lenet5", "lenet300_100_pruned", "teacher"):
        monkeypatch.setattr(baselines, name, lambda splits, name=name: built.append((name, splits)))
    assert main(["warm", "Fashion_MNIST"]) == 0
    assert built == [(n, "fashion-mnist") for n in ("lenet300_100", "lenet5", "lenet300_100_pruned", "teacher")]
    assert "cached for fashion-mnist" in capsys.readouterr().out
    assert main(["warm", "cifar10"]) == 1
    assert "unknown dataset 'cifar10'" in capsys.readouterr().err
    assert main(["warm", "mnist", "extra"]) == 2


# ---------------------------------------------------------------- batches and jitter


def test_batches_cover_every_example_once_and_return_their_index():
    split = cu.data.Split(torch.arange(10.0).view(10, 1, 1, 1), torch.arange(10))
    seen = []
    for x, y, idx in cu.data.batches(split, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0)):
        assert torch.equal(split.y[idx], y) and torch.equal(split.x[idx], x)
        seen += y.tolist()
    assert sorted(seen) == list(range(10)) and seen != list(range(10))
    sizes = [len(y) for _, y, _ in cu.data.batches(split, batch_size=4)]
    assert sizes == [4, 4, 2]
    first = [y.tolist() for _, y, _ in cu.data.batches(split, 4, True, torch.Generator().manual_seed(3))]
    again = [y.tolist() for _, y, _ in cu.data.batches(split, 4, True, torch.Generator().manual_seed(3))]
    assert first == again


def test_batches_refuse_a_non_positive_batch_size():
    split = cu.data.Split(torch.zeros(3, 1, 2, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="batch_size"):
        list(cu.data.batches(split, batch_size=0))


def test_jitter_moves_each_image_by_at_most_max_shift_pixels():
    x = torch.zeros(200, 1, 9, 9)
    x[:, 0, 4, 4] = 1.0
    out = cu.data.jitter(x, max_shift=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    pos = out.flatten(1).argmax(1)
    rows, cols = pos // 9, pos % 9
    assert out.flatten(1).sum(1).eq(1).all()  # the bright pixel is never lost at a shift of 2
    assert rows.min() == 2 and rows.max() == 6 and cols.min() == 2 and cols.max() == 6
    assert len(set(zip(rows.tolist(), cols.tolist()))) == 25  # all 5×5 shifts occur
    assert torch.equal(cu.data.jitter(x, 0), x)
