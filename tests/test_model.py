"""build_resnet18 and the family: the notebook's layers, shapes, counts, and MXNet's model contract."""
import re

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn

from common import resnet18_like
from resnet_gluon import (RESNET_SPEC, Bottleneck, Residual, build_resnet, build_resnet18,
                          copy_weights, count_parameters, layer_shapes, resnet_block)

NOTEBOOK_SHAPES = [  # notebook cell 8, printed output
    (1, 64, 112, 112), (1, 64, 112, 112), (1, 64, 112, 112), (1, 64, 56, 56),
    (1, 64, 56, 56), (1, 128, 28, 28), (1, 256, 14, 14), (1, 512, 7, 7),
    (1, 512, 1, 1), (1, 10)]

# depth -> (all parameters, trainable) at 1 input channel and 10 classes.
PARAMETER_COUNTS = {
    18: (11_186_186, 11_178_378),
    34: (21_305_482, 21_290_250),
    50: (23_586_570, 23_541_130),
    101: (42_657_034, 42_559_370),
    152: (58_369_802, 58_226_058),
}


def test_ten_children_in_the_notebooks_order():
    net = build_resnet18()
    assert isinstance(net, nn.HybridSequential)
    assert len(net) == 10
    kinds = [type(layer) for layer in net]
    assert kinds == [nn.Conv2D, nn.BatchNorm, nn.Activation, nn.MaxPool2D,
                     nn.HybridSequential, nn.HybridSequential, nn.HybridSequential,
                     nn.HybridSequential, nn.GlobalAvgPool2D, nn.Dense]
    stem, _, relu, pool = net[0], net[1], net[2], net[3]
    assert stem._channels == 64 and stem._kwargs["kernel"] == (7, 7)
    assert stem._kwargs["stride"] == (2, 2) and stem._kwargs["pad"] == (3, 3)
    assert relu._act_type == "relu"
    assert pool._kwargs["kernel"] == (3, 3) and pool._kwargs["stride"] == (2, 2)
    assert pool._kwargs["pad"] == (1, 1)
    for stage, channels in zip(net[4:8], (64, 128, 256, 512)):
        assert [type(b) for b in stage] == [Residual, Residual]
        assert [b.conv1._channels for b in stage] == [channels, channels]
    # the notebook's rule: only the first block of stages 2-4 projects and strides
    assert [[b.conv3 is not None for b in stage] for stage in net[4:8]] == [
        [False, False], [True, False], [True, False], [True, False]]
    assert net[9]._units == 10


def test_notebook_shapes_and_names(x224):
    net = build_resnet18()
    net.initialize()
    rows = layer_shapes(net, x224)
    assert [shape for _, shape in rows] == NOTEBOOK_SHAPES
    assert [name for name, _ in rows] == [
        "conv0", "batchnorm0", "relu0", "pool0", "hybridsequential0", "hybridsequential1",
        "hybridsequential2", "hybridsequential3", "pool1", "dense0"]
    assert net(x224).shape == (1, 10)


def test_parameter_count_of_the_notebook(x224):
    net = build_resnet18()
    net.initialize()
    net(x224)
    assert count_parameters(net) == (11_186_186, 11_178_378)


@pytest.mark.parametrize("depth", sorted(RESNET_SPEC))
def test_family_counts_and_shapes(depth):
    net = build_resnet(depth, in_channels=1)
    assert count_parameters(net) == PARAMETER_COUNTS[depth]  # known before any forward
    kind, blocks = RESNET_SPEC[depth]
    assert [len(stage) for stage in net[4:8]] == list(blocks)
    assert {type(b) for stage in net[4:8] for b in stage} == {
        {"basic": Residual, "bottleneck": Bottleneck}[kind]}
    net.initialize()
    assert net(nd.random.uniform(shape=(2, 1, 64, 64))).shape == (2, 10)


@pytest.mark.parametrize("depth", sorted(RESNET_SPEC))
def test_family_counts_are_mxnets_own(depth, capsys):
    # MXNet's Block.summary counts each layer's parameters itself: the literals above are
    # not just our count_parameters' output.
    net = build_resnet(depth, in_channels=1)
    net.initialize()
    net.summary(nd.zeros((1, 1, 32, 32)))
    out = capsys.readouterr().out
    total, trainable = (int(re.search(rf"{name} params: ([\d,]+)", out).group(1).replace(",", ""))
                        for name in ("Total", "Trainable"))
    assert (total, trainable) == PARAMETER_COUNTS[depth]


def test_depth_18_is_build_resnet18():
    a, b = build_resnet18(7), build_resnet(18, 7)
    assert [type(x) for x in a] == [type(x) for x in b]
    assert [p.shape for p in a.collect_params().values()] == \
           [p.shape for p in b.collect_params().values()]


def test_small_input_stem_as_d2lzh_resnet18():
    net = build_resnet(18, small_input=True)
    net.initialize()
    rows = layer_shapes(net, (1, 1, 28, 28))
    assert [type(layer) for layer in net][:4] == [nn.Conv2D, nn.BatchNorm, nn.Activation,
                                                  nn.HybridSequential]
    assert net[0]._kwargs["kernel"] == (3, 3) and net[0]._kwargs["stride"] == (1, 1)
    assert [shape for _, shape in rows] == [
        (1, 64, 28, 28), (1, 64, 28, 28), (1, 64, 28, 28), (1, 64, 28, 28),
        (1, 128, 14, 14), (1, 256, 7, 7), (1, 512, 4, 4), (1, 512, 1, 1), (1, 10)]


def test_resnet_block_rule():
    first = resnet_block(64, 2, first_block=True)
    later = resnet_block(128, 3)
    assert isinstance(first, nn.HybridSequential) and len(later) == 3
    assert [b.conv3 is None for b in first] == [True, True]
    assert [b.conv3 is None for b in later] == [False, True, True]
    assert later[0].conv1._kwargs["stride"] == (2, 2)
    later.initialize()
    assert later(nd.random.uniform(shape=(2, 64, 8, 8))).shape == (2, 128, 4, 4)
    wide = resnet_block(64, 2, first_block=True, block="bottleneck")
    assert [b.conv4 is None for b in wide] == [False, True]  # 64 -> 256 needs the projection


@pytest.mark.parametrize("call, error, message", [
    (lambda: build_resnet(19), ValueError, r"depth must be one of \[18, 34, 50, 101, 152\], got 19"),
    (lambda: build_resnet("18"), ValueError, "depth must be one of"),
    (lambda: build_resnet18(0), ValueError, "num_classes must be a positive integer, got 0"),
    (lambda: build_resnet18(2.0), TypeError, "num_classes must be a positive integer"),
    (lambda: build_resnet(18, in_channels=-1), ValueError, "in_channels must be a non-negative"),
    (lambda: resnet_block(64, 0), ValueError, "num_residuals must be a positive integer, got 0"),
    (lambda: resnet_block(0, 2), ValueError, "num_channels must be a positive integer, got 0"),
    (lambda: resnet_block(64, 2, block="wide"), ValueError, r"block must be one of \['basic', 'bottleneck'\]"),
])
def test_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("hybridize", [False, True])
def test_bad_inputs_get_clear_errors(hybridize, x224):
    net = build_resnet18()
    net.initialize()
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    net(x224)  # initialised for 1 channel
    with pytest.raises(ValueError, match=r"ResNet-18 expects a 4-D batch.*got a 3-D input of shape \(1, 224, 224\)"):
        net(nd.random.uniform(shape=(1, 224, 224)))
    with pytest.raises(ValueError, match=r"got a 2-D input.*reshape"):
        net(nd.random.uniform(shape=(4, 784)))
    with pytest.raises(ValueError, match=r"initialised for 1-channel input but got 3 channels"):
        net(nd.random.uniform(shape=(1, 3, 224, 224)))
    with pytest.raises(TypeError, match=r"floating-point input, got dtype uint8.*/ 255"):
        net(nd.ones((1, 1, 28, 28), dtype="uint8"))
    with pytest.raises(TypeError, match=r"float32 parameters but got a float64 input.*astype\('float32'\)"):
        net(nd.ones((1, 1, 28, 28), dtype="float64"))
    with pytest.raises(TypeError, match="expects an mxnet NDArray"):
        net([[1.0]])
    assert net(x224).shape == (1, 10)  # still works afterwards


def test_channel_count_given_up_front_is_enforced_before_first_forward():
    net = build_resnet(18, in_channels=3)
    net.initialize()
    with pytest.raises(ValueError, match="initialised for 3-channel input but got 1 channels"):
        net(nd.random.uniform(shape=(1, 1, 32, 32)))


def _train_step_output(net, X):
    with autograd.record():
        out = net(X)
    out.backward()
    return out.asnumpy()


@pytest.mark.parametrize("train_mode", [False, True])
def test_hybridize_matches_imperative(train_mode):
    X = nd.random.uniform(shape=(4, 1, 96, 96))
    ref = build_resnet18()
    hyb = resnet18_like(ref, X)
    hyb.hybridize(static_alloc=True, static_shape=True)
    if train_mode:
        expected, got = _train_step_output(ref, X), _train_step_output(hyb, X)
    else:
        expected, got = ref(X).asnumpy(), hyb(X).asnumpy()
    assert np.abs(got - expected).max() <= 1e-5


def test_export_then_symbolblock_imports(tmp_path):
    X = nd.random.uniform(shape=(2, 1, 96, 96))
    net = build_resnet18()
    net.initialize(mx.init.Xavier())
    net.hybridize()
    expected = net(X).asnumpy()
    net.export(str(tmp_path / "resnet18"))
    loaded = gluon.SymbolBlock.imports(str(tmp_path / "resnet18-symbol.json"), ["data"],
                                       str(tmp_path / "resnet18-0000.params"))
    assert np.abs(loaded(X).asnumpy() - expected).max() <= 1e-5


def test_save_and_load_parameters_round_trip(tmp_path):
    X = nd.random.uniform(shape=(2, 1, 96, 96))
    net = build_resnet18()
    net.initialize(mx.init.Xavier())
    expected = net(X).asnumpy()
    net.save_parameters(str(tmp_path / "model.params"))
    other = build_resnet18()
    other.load_parameters(str(tmp_path / "model.params"))
    np.testing.assert_array_equal(other(X).asnumpy(), expected)


def test_summary_before_hybridize(capsys, x224):
    net = build_resnet18()
    net.initialize()
    net.summary(x224)
    out = capsys.readouterr().out
    assert "Total params: 11186186" in out
    assert "Trainable params: 11178378" in out
    assert "(1, 10)" in out


def test_copy_weights_reports_mismatch():
    a, b = build_resnet(18, in_channels=1), build_resnet(34, in_channels=1)
    a.initialize()
    b.initialize()
    with pytest.raises(ValueError, match="not the same architecture"):
        copy_weights(a, b)
    c = build_resnet(18, num_classes=5, in_channels=1)
    c.initialize()
    with pytest.raises(ValueError, match=r"shape \(10, 512\) but destination .* shape \(5, 512\)"):
        copy_weights(a, c)
    d = build_resnet18()  # deferred stem, no forward yet
    d.initialize()
    with pytest.raises(ValueError, match="not initialised.*run one batch"):
        copy_weights(a, d)


# --------------------------------------------------------------------------- the record

def test_the_architecture_record_builds_the_net_it_describes(tmp_path):
    from resnet_gluon.model import ResNetSpec

    spec = ResNetSpec(depth=34, num_classes=5, small_input=True, in_channels=3)
    assert spec.to_dict() == {"depth": 34, "num_classes": 5, "small_input": True,
                              "in_channels": 3}
    # A run's config.json holds the recipe too: other keys are ignored; a key a file
    # predates (in_channels) takes its default.
    assert ResNetSpec.from_dict({**spec.to_dict(), "lr": 0.1}) == spec
    assert ResNetSpec.from_dict({"depth": 50}) == ResNetSpec(50, 10, False, 1)
    net = spec.build()
    net.initialize()
    assert net(nd.zeros((2, 3, 32, 32))).shape == (2, 5)
    assert count_parameters(net) == count_parameters(build_resnet(34, 5, True, 3)) and \
        net[0].weight.shape == (64, 3, 3, 3)
    net.save_parameters(str(tmp_path / "w.params"))
    again = spec.build(str(tmp_path / "w.params"))
    X = nd.random.uniform(shape=(2, 3, 32, 32))
    np.testing.assert_array_equal(again(X).asnumpy(), net(X).asnumpy())


@pytest.mark.parametrize("values, error, message", [
    (dict(depth=19), ValueError, r"depth must be one of \[18, 34, 50, 101, 152\], got 19"),
    (dict(num_classes=0), ValueError, "num_classes must be a positive integer, got 0"),
    (dict(small_input="no"), TypeError, "small_input must be True or False"),
    (dict(in_channels=-1), ValueError, "in_channels must be a non-negative integer"),
])
def test_the_record_refuses_what_the_factory_refuses(values, error, message):
    from resnet_gluon.model import ResNetSpec

    with pytest.raises(error, match=message):
        ResNetSpec(**values)
    with pytest.raises(error, match=message):  # from a file, the same words
        ResNetSpec.from_dict(values)


def test_a_channels_last_first_batch_is_refused_and_the_net_stays_usable():
    net = build_resnet18()
    net.initialize()
    # Before: taken as 28 channels, (1, 10) returned, and every NCHW batch refused after.
    with pytest.raises(ValueError, match=r"\(1, 28, 28, 1\), which looks channels-last"):
        net(nd.zeros((1, 28, 28, 1)))
    assert net(nd.zeros((1, 1, 28, 28))).shape == (1, 10)
    colour = build_resnet18()
    colour.initialize()
    assert colour(nd.zeros((2, 3, 32, 32))).shape == (2, 10)  # channels first: inferred as ever
    wide = build_resnet(18, in_channels=28)  # asked for explicitly: taken as given
    wide.initialize()
    assert wide(nd.zeros((1, 28, 28, 1))).shape == (1, 10)
