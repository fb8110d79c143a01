import pytest
from torch import nn
from torch.nn.utils import prune

import course_utils as cu
from conftest import blobs


def test_macs_of_known_networks():
    assert cu.metrics.macs(cu.models.mlp()) == 784 * 300 + 300 * 100 + 100 * 10
    # LeNet-5: conv1 28·28·6·25, conv2 10·10·16·6·25, then 400·120 + 120·84 + 84·10
    assert cu.metrics.macs(cu.models.lenet5()) == 117_600 + 240_000 + 48_000 + 10_080 + 840
    assert cu.metrics.macs(nn.Sequential(nn.Linear(8, 4)), input_shape=(8,)) == 32


def test_masked_model_counts_zeros_but_keeps_its_macs():
    model = cu.models.mlp(hidden=(20, 10))
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    assert cu.metrics.count_parameters(model) == cu.metrics.count_parameters(cu.models.mlp(hidden=(20, 10)))
    zeros = 784 * 20 // 2
    assert cu.metrics.count_nonzero(model) == cu.metrics.count_parameters(model) - zeros
    per_layer = cu.metrics.layer_sparsity(model)
    assert per_layer["fc1"] == pytest.approx(0.5) and per_layer["fc2"] == 0.0
    total = 784 * 20 + 20 * 10 + 10 * 10
    assert cu.metrics.sparsity(model) == pytest.approx(zeros / total)
    assert cu.metrics.macs(model) == total  # dense kernels multiply the zeros too


def test_state_dict_size_raw_tracks_parameters_and_zeros_compress():
    dense = cu.models.mlp(hidden=(100,))
    size = cu.metrics.state_dict_size(dense)
    n = cu.metrics.count_parameters(dense)
    assert 4 * n < size.raw < 4 * n + 4096  # float32 plus a small container overhead
    assert size.compressed > 0.85 * size.raw  # random float weights barely compress
    zeros = cu.models.mlp(hidden=(100,))
    prune.l1_unstructured(zeros.fc1, "weight", amount=0.9)
    masked = cu.metrics.state_dict_size(zeros)
    assert masked.raw == pytest.approx(size.raw, rel=0.01)  # masks do not shrink the raw file
    assert masked.compressed < 0.35 * size.compressed


def test_summary_row_and_tables():
    data = blobs(dim=8)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    cu.train.fit(model, data, 3, lr=1e-2)
    row = cu.metrics.summary(model, data, name="tiny", batch_sizes=(1, 4), min_run_time=0.02)
    expected_acc = cu.train.evaluate(model, data.test).accuracy
    assert row["model"] == "tiny" and row["test_acc"] == expected_acc
    assert row["test_errors"] == round((1 - expected_acc) * len(data.test))
    assert row["params"] == 8 * 16 + 16 + 16 * 3 + 3 and row["macs"] == 8 * 16 + 16 * 3
    assert row["latency_ms_b1"] > 0 and row["latency_ms_b4"] > 0 and row["threads"] >= 1
    text = str(cu.metrics.table([row]))
    assert "tiny" in text and f"{100 * expected_acc:.2f}%" in text and "195" in text  # params formatted
    smaller = dict(row, model="half", params=row["params"] // 2, test_acc=row["test_acc"] - 0.01)
    comparison = str(cu.metrics.compare(row, smaller))
    assert "2.01× smaller" in comparison and "-1.00 points" in comparison
    assert "<table>" in cu.metrics.table([row])._repr_html_()
    with pytest.raises(ValueError, match="no rows"):
        cu.metrics.table([])


def test_summaries_time_each_model_in_interleaved_rounds():
    data = blobs(dim=64)
    small = nn.Sequential(nn.Linear(64, 4), nn.ReLU(), nn.Linear(4, 3))
    large = nn.Sequential(nn.Linear(64, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 3))
    rows = cu.metrics.summaries({"large": large, "small": small}, data, batch_sizes=(64,), rounds=2, block_ms=2)
    assert [r["model"] for r in rows] == ["large", "small"]
    alone = cu.metrics.summary(small, data, "small", batch_sizes=(64,), min_run_time=0.02)
    assert list(rows[1]) == list(alone)                          # the same columns, in the same order
    assert {k: v for k, v in rows[1].items() if "latency" not in k} == {k: v for k, v in alone.items() if "latency" not in k}
    assert rows[0]["latency_ms_b64"] > 3 * rows[1]["latency_ms_b64"]   # each row has its own model's time
    with pytest.raises(ValueError, match="no models"):
        cu.metrics.summaries({}, data)


def test_sparsity_needs_prunable_layers():
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        cu.metrics.sparsity(nn.Sequential(nn.ReLU()))


def test_modules_without_parameters_can_be_measured():
    assert cu.metrics.macs(nn.Sequential(nn.Flatten(), nn.ReLU())) == 0
    t = cu.latency.latency(nn.ReLU(), batch_size=4, min_run_time=0.01, min_block=0.001)
    assert t.median > 0 and t.repeats >= 15




def test_ranking_orders_by_mean_and_ties_what_is_within_the_seed_spread():
    rows = cu.metrics.ranking({"a": [100, 110, 120], "b": [90, 95, 100], "c": [200, 201, 202], "d": [101, 102, 103],
                               "e": [120, 121, 122]})
    assert [r["method"] for r in rows] == ["b", "d", "a", "e", "c"]
    tied = {r["method"]: r["tied_with_best"] for r in rows}
    # d is 7 from b and a 15 (spreads 10 and 20: within); e is 26 from b with spreads 10 and 2: beyond
    assert tied == {"b": True, "d": True, "a": True, "e": False, "c": False}
    assert rows[0]["minus_best"] == 0 and rows[2]["spread"] == 20 and rows[1]["mean"] == 102
    assert rows[3]["minus_best"] == 26
    with pytest.raises(ValueError):
        cu.metrics.ranking({})


def test_pareto_front_keeps_the_points_no_other_point_beats_on_both_axes():
    points = [(1, 10), (2, 5), (3, 6), (4, 1), (2, 5), (5, 1), (0.5, 20)]
    assert cu.metrics.pareto_front(points) == [6, 0, 1, 4, 3]
    assert cu.metrics.pareto_front([(1, 1)]) == [0]
    assert cu.metrics.pareto_front([]) == []
