import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import course_utils as cu  # noqa: E402


def test_distinct_colors_are_all_different_up_to_twenty():
    for n in (0, 1, 10, 11, 20):
        colors = [mcolors.to_hex(c) for c in cu.plots.distinct_colors(n)]
        assert len(colors) == n == len(set(colors))
    with pytest.raises(ValueError, match="at most 20"):
        cu.plots.distinct_colors(21)


def test_pareto_gives_each_of_eleven_labels_its_own_colour_and_draws_every_panel():
    points = [{"label": f"route {i}", "marker": "o", "results": [10 + i, 12 + i], "bytes": 100 * (i + 1), "ms": 1 + i}
              for i in range(11)]
    fig = cu.plots.pareto(points, {"bytes": "file (bytes)", "ms": "latency (ms)"}, title="t")
    legend_colors = [mcolors.to_hex(h.get_color()) for h in fig.legends[0].legend_handles]
    assert len(fig.axes) == 2 and len(set(legend_colors)) == 11
    plt.close(fig)
