"""Notebook cell 8 as functions: layer_shapes, print_shapes, count_parameters."""
import io

import mxnet as mx
import pytest
from mxnet import nd

from common import CELL_8
from notebook import notebook_net
from resnet_gluon import (build_resnet, build_resnet18, count_parameters, format_shapes,
                          layer_shapes, print_shapes, shapes)


def test_print_shapes_prints_cell_8(capsys):
    net = build_resnet18()
    net.initialize()
    X = nd.random.uniform(shape=(1, 1, 224, 224))
    rows = print_shapes(net, X)
    assert capsys.readouterr().out == CELL_8
    assert rows[0] == ("conv0", (1, 64, 112, 112)) and rows[-1] == ("dense0", (1, 10))


def test_same_format_as_the_notebooks_print():
    # cell 8 is print(layer.name, 'output shape:\t', X.shape)
    buf = io.StringIO()
    print("conv5", "output shape:\t", (1, 64, 112, 112), file=buf)
    assert format_shapes([("conv5", (1, 64, 112, 112))]) + "\n" == buf.getvalue()


def test_a_shape_tuple_is_enough_and_the_default_is_the_notebooks():
    net = build_resnet18()
    net.initialize()
    assert layer_shapes(net)[-1] == ("dense0", (1, 10))
    assert layer_shapes(net, (8, 1, 96, 96))[7] == ("hybridsequential3", (8, 512, 3, 3))


def test_works_on_the_notebooks_own_net():
    net = notebook_net()
    net.initialize()
    shapes = [s for _, s in layer_shapes(net, (1, 1, 224, 224))]
    assert shapes[4:8] == [(1, 64, 56, 56), (1, 128, 28, 28), (1, 256, 14, 14), (1, 512, 7, 7)]


def test_file_argument():
    net = build_resnet(18, small_input=True)
    net.initialize()
    buf = io.StringIO()
    print_shapes(net, (2, 1, 28, 28), file=buf)
    assert buf.getvalue().splitlines()[-1] == "dense0 output shape:\t (2, 10)"


def test_uninitialised_net_is_named_not_initialised_silently():
    net = build_resnet18()
    with pytest.raises(RuntimeError, match=r"not initialised.*Call net.initialize\(\) first"):
        layer_shapes(net)
    assert all(p._data is None for p in net.collect_params().values())


@pytest.mark.parametrize("bad, error, message", [
    ((1, 224, 224), ValueError, r"four positive integers \(N, C, H, W\), got \(1, 224, 224\)"),
    ((1, 0, 224, 224), ValueError, "four positive integers"),
    ((1, 3, 224, 224), ValueError, "initialised for 1-channel input but got 3"),
])
def test_bad_input_shape(bad, error, message):
    net = build_resnet(18, in_channels=1)
    net.initialize()
    with pytest.raises(error, match=message):
        layer_shapes(net, bad)


def test_count_parameters_needs_known_shapes():
    net = build_resnet18()
    net.initialize()
    with pytest.raises(RuntimeError, match=r"shape of conv0_weight is not known yet: \(64, 0, 7, 7\)"):
        count_parameters(net)
    net(nd.random.uniform(shape=(1, 3, 32, 32)))
    # 3 input channels: the stem has 2 * 64 * 49 more weights than at 1 channel
    assert count_parameters(net) == (11_186_186 + 6272, 11_178_378 + 6272)


def test_runs_on_the_nets_context():
    # cpu(1), not the default context: a random batch made on cpu(0) would not meet the
    # weights there
    net = build_resnet18()
    net.initialize(ctx=mx.cpu(1))
    assert layer_shapes(net, (1, 1, 32, 32))[-1][1] == (1, 10)


def test_shapes_shows_cell_8_in_a_terminal_and_a_table_in_jupyter():
    net = build_resnet18()
    net.initialize()
    table = shapes(net, (1, 1, 224, 224))
    assert repr(table) + "\n" == str(table) + "\n" == CELL_8
    assert [row.type for row in table] == [
        "Conv2D", "BatchNorm", "Activation", "MaxPool2D", "HybridSequential",
        "HybridSequential", "HybridSequential", "HybridSequential", "GlobalAvgPool2D", "Dense"]
    assert [row.params for row in table] == [
        3200, 256, 0, 0, 148736, 526976, 2102528, 8399360, 0, 5130]
    assert table.total_params == 11186186 == count_parameters(net)[0]
    assert table.input_shape == (1, 1, 224, 224)
    page = table._repr_html_()
    assert page.count("<tr>") == 12  # header, ten layers, total
    assert "<td style='text-align:left'>(1, 512, 7, 7)</td>" in page
    assert "11,186,186" in page and "hybridsequential3" in page
