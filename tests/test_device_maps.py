"""course_utils.device_maps: the per-device table and the picture of a device map."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from course_utils import device_maps  # noqa: E402

MAP = {"embed": 0, "layers.0": 0, "layers.1": "cpu", "layers.2": "disk", "lm_head": "disk"}
SIZES = {"embed": 10, "layers.0": 20, "layers.1": 20, "layers.2": 20, "lm_head": 10, "": 80}


def test_place_names_gpus_cpu_and_disk():
    assert [device_maps.place(d) for d in (0, "cuda:1", "cpu", "disk", "mps")] == \
        ["gpu", "gpu", "cpu", "disk", "mps"]


def test_table_sums_bytes_per_device_in_order():
    table = device_maps.device_map_table(MAP, SIZES)
    assert list(table["device"]) == ["0", "cpu", "disk"]
    assert list(table["bytes"]) == [30, 20, 30] and list(table["modules"]) == [2, 1, 2]
    assert table.loc[2, "first"] == "layers.2" and table.loc[2, "last"] == "lm_head"


def test_plot_colours_each_module_by_device():
    fig = device_maps.plot_device_map(MAP, SIZES, "test")
    ax = fig.axes[0]
    colours = [bar.get_facecolor() for bar in ax.patches[:len(MAP)]]
    gpu, cpu, disk = (matplotlib.colors.to_rgba(device_maps.DEVICE_COLOURS[p])
                      for p in ("gpu", "cpu", "disk"))
    assert colours == [gpu, gpu, cpu, disk, disk]
    assert ax.get_xlabel() and ax.get_ylabel() == "weights (GB)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["gpu", "cpu", "disk"]
