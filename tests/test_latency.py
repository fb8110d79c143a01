"""Tests of course_utils.latency: the one timer, interleaved latencies, speed-ups against the MAC ratio, layer and kernel timings."""

import pytest
import torch
import torch.nn.utils.prune
import course_utils as cu
from test_surgery import Residual
from course_utils import metrics, models


def test_latencies_and_speedups():
    model = models.mlp(hidden=(64, 32), in_features=16, classes=3)
    timed = cu.latency.latencies({"a": model, "b": cu.hard_pruning.prune_neurons(model, 0.5)}, batch_size=8, input_shape=(16,),
                         rounds=3, min_run_time=0.01)
    assert set(timed) == {"a", "b"} and all(t.median > 0 and t.batch_size == 8 for t in timed.values())
    pruned = {f: cu.hard_pruning.prune_neurons(model, f) for f in (0.5, 0.75)}
    rows = cu.latency.speedups(model, pruned, batch_size=8, input_shape=(16,), rounds=1, min_run_time=0.01)
    assert [r["model"] for r in rows] == [0.5, 0.75] and all(r["device"] == "cpu" for r in rows)
    with pytest.raises(ValueError, match="no models"):
        cu.latency.speedups(model, {})
    dense_macs = 16 * 64 + 64 * 32 + 32 * 3
    assert [r["macs"] for r in rows] == [16 * 32 + 32 * 16 + 16 * 3, 16 * 16 + 16 * 8 + 8 * 3]
    assert rows[0]["mac_ratio"] == pytest.approx(dense_macs / rows[0]["macs"])
    assert all(r["speedup"] > 0 and r["latency_ms"] > 0 and r["threads"] >= 1 for r in rows)
    short_blocks = cu.latency.latencies({"a": model}, batch_size=8, input_shape=(16,), rounds=1, min_run_time=0.01,
                                block_ms=0.5)
    assert short_blocks["a"].repeats >= 7 and short_blocks["a"].median > 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: on a loaded machine two threads wait for each other a time slice per call
    try:
        long_blocks = cu.latency.latencies({"a": model}, batch_size=8, input_shape=(16,), rounds=1,
                                           min_run_time=0.01, block_ms=5)
    finally:
        torch.set_num_threads(threads)
    assert long_blocks["a"].median < 5e-3  # per forward pass, not per block of many passes
    for bad in (-1, 0):
        with pytest.raises(ValueError, match="block_ms"):
            cu.latency.latencies({"a": model}, block_ms=bad)
    with pytest.raises(ValueError, match="rounds"):
        cu.latency.latencies({"a": model}, rounds=0)
    with pytest.raises(ValueError, match="no models"):
        cu.latency.latencies({})


def test_layer_latencies_cover_every_layer():
    model = models.lenet5(channels=(2, 3), hidden=(8, 6))
    rows = cu.latency.layer_latencies(model, batch_size=4, min_run_time=0.01)
    assert [r["layer"] for r in rows] == [name for name, _ in model.named_children()]
    macs = {r["layer"]: r["macs"] for r in rows}
    assert macs["conv1"] == 28 * 28 * 2 * 25 and macs["conv2"] == 10 * 10 * 3 * 2 * 25 and macs["pool1"] == 0
    assert macs["fc1"] == 75 * 8 and sum(macs.values()) == metrics.macs(model)
    assert all(r["latency_ms"] > 0 for r in rows)
    with pytest.raises(ValueError, match="cannot follow"):
        cu.latency.layer_latencies(Residual())


def test_matmul_latency_rows():
    rows = cu.latency.matmul_latency([0.0, 0.9], out_features=20, in_features=30, batch_size=4, threads=1,
                             min_run_time=0.01)
    assert [r["sparsity"] for r in rows] == [0.0, 0.9]
    for r in rows:
        assert r["dense_ms"] > 0 and r["csr_ms"] > 0
        assert r["csr_speedup"] == pytest.approx(r["dense_ms"] / r["csr_ms"])
        assert r["batch_size"] == 4 and r["threads"] == 1 and r["shape"] == "20x30"


def test_latency_reports_a_positive_median_with_its_settings():
    model = cu.models.mlp(hidden=(32,))
    t = cu.latency.latency(model, batch_size=8, threads=1, min_run_time=0.05)
    assert t.median > 0 and t.iqr >= 0 and t.batch_size == 8 and t.threads == 1 and t.repeats >= 15
    big = cu.latency.latency(cu.models.mlp(hidden=(2000, 2000)), batch_size=64, threads=1, min_run_time=0.05)
    assert big.median > 5 * t.median  # ~250x the arithmetic should be clearly slower
    with pytest.raises(ValueError, match="batch_size"):
        cu.latency.latency(model, batch_size=0)


def test_time_call_times_any_callable():
    x = torch.randn(64, 64)
    t = cu.latency.time_call(lambda: x @ x, threads=1, min_run_time=0.01, min_block=0.001)
    assert t.median > 0 and t.threads == 1 and t.repeats >= 15
