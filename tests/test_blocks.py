"""Residual and Bottleneck: notebook cells 1-3, the book's children, and bad arguments."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import nd
from mxnet.gluon import nn

from resnet_gluon import Bottleneck, Residual


def test_cell2_same_shape():
    blk = Residual(3)
    blk.initialize()
    X = nd.random.uniform(shape=(4, 3, 6, 6))
    assert blk(X).shape == (4, 3, 6, 6)


def test_cell3_more_channels_half_size():
    blk = Residual(6, use_1x1conv=True, strides=2)
    blk.initialize()
    X = nd.random.uniform(shape=(4, 3, 6, 6))
    assert blk(X).shape == (4, 6, 3, 3)


def test_book_children_and_hyperparameters():
    blk = Residual(6, use_1x1conv=True, strides=2)
    assert isinstance(blk, nn.HybridBlock)
    assert list(blk._children) == ["conv1", "conv2", "conv3", "bn1", "bn2"]
    assert blk.conv1._kwargs["kernel"] == (3, 3) and blk.conv1._kwargs["stride"] == (2, 2)
    assert blk.conv1._kwargs["pad"] == (1, 1)
    assert blk.conv2._kwargs["kernel"] == (3, 3) and blk.conv2._kwargs["stride"] == (1, 1)
    assert blk.conv3._kwargs["kernel"] == (1, 1) and blk.conv3._kwargs["stride"] == (2, 2)
    # conv biases kept, as the book's nn.Conv2D defaults
    assert all(c.bias is not None for c in (blk.conv1, blk.conv2, blk.conv3))
    plain = Residual(3)
    assert plain.conv3 is None
    assert list(plain._children) == ["conv1", "conv2", "bn1", "bn2"]


def test_parameter_shapes_literal():
    blk = Residual(6, use_1x1conv=True, strides=2, in_channels=3)
    shapes = {k: v.shape for k, v in blk._collect_params_with_prefix().items()}
    assert shapes == {
        "conv1.weight": (6, 3, 3, 3), "conv1.bias": (6,),
        "conv2.weight": (6, 6, 3, 3), "conv2.bias": (6,),
        "conv3.weight": (6, 3, 1, 1), "conv3.bias": (6,),
        "bn1.gamma": (6,), "bn1.beta": (6,), "bn1.running_mean": (6,), "bn1.running_var": (6,),
        "bn2.gamma": (6,), "bn2.beta": (6,), "bn2.running_mean": (6,), "bn2.running_var": (6,),
    }  # no BatchNorm on the 1x1 projection, as in the book
    assert sum(int(np.prod(s)) for s in shapes.values()) == 570


def test_in_channels_gives_shapes_before_first_forward():
    blk = Residual(6, use_1x1conv=True, strides=2, in_channels=3)
    assert blk.conv1.weight.shape == (6, 3, 3, 3)
    assert blk.conv3.weight.shape == (6, 3, 1, 1)
    blk.initialize()
    assert blk.conv1.weight.data().shape == (6, 3, 3, 3)  # no deferred init
    deferred = Residual(6, use_1x1conv=True, strides=2)
    assert deferred.conv1.weight.shape == (6, 0, 3, 3)


def test_hybridized_block_matches_imperative():
    blk = Residual(6, use_1x1conv=True, strides=2)
    blk.initialize(mx.init.Xavier())
    X = nd.random.uniform(shape=(4, 3, 6, 6))
    expected = blk(X).asnumpy()
    blk.hybridize()
    np.testing.assert_allclose(blk(X).asnumpy(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("strides, out_hw", [(1, 8), (2, 4)])
def test_bottleneck_widens_fourfold(strides, out_hw):
    blk = Bottleneck(16, use_1x1conv=True, strides=strides)
    blk.initialize()
    assert blk(nd.random.uniform(shape=(2, 8, 8, 8))).shape == (2, 64, out_hw, out_hw)
    assert list(blk._children) == ["conv1", "conv2", "conv3", "conv4", "bn1", "bn2", "bn3"]
    assert blk.conv2._kwargs["stride"] == (strides, strides)  # stride on the 3x3 (v1.5)


def test_bottleneck_identity_needs_matching_channels():
    blk = Bottleneck(16)
    blk.initialize()
    with pytest.raises(ValueError, match="needs 64-channel input; got 16.*use_1x1conv=True"):
        blk(nd.random.uniform(shape=(2, 16, 5, 5)))
    assert blk(nd.random.uniform(shape=(2, 64, 5, 5))).shape == (2, 64, 5, 5)
    with pytest.raises(ValueError, match="initialised for 64-channel input but got 16 channels"):
        blk(nd.random.uniform(shape=(2, 16, 5, 5)))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(num_channels=0), ValueError, "num_channels must be a positive integer, got 0"),
    (dict(num_channels=-3), ValueError, "num_channels must be a positive integer, got -3"),
    (dict(num_channels=2.5), TypeError, r"num_channels must be a positive integer, got 2.5 \(float\)"),
    (dict(num_channels="64"), TypeError, "got '64' \\(str\\)"),
    (dict(num_channels=True), TypeError, "got True \\(bool\\)"),
    (dict(num_channels=6, strides=0, use_1x1conv=True), ValueError, "strides must be a positive integer, got 0"),
    (dict(num_channels=6, strides=1.5), TypeError, "strides must be a positive integer"),
    (dict(num_channels=6, strides=2), ValueError, r"shrinks height and width.*use_1x1conv=True"),
    (dict(num_channels=6, in_channels=3), ValueError, r"maps 3 input channels to 6.*use_1x1conv=True"),
    (dict(num_channels=6, in_channels=-1), ValueError, "in_channels must be a non-negative integer"),
    (dict(num_channels=6, use_1x1conv="yes"), TypeError, "use_1x1conv must be True or False"),
])
@pytest.mark.parametrize("cls", [Residual, Bottleneck])
def test_bad_arguments(cls, kwargs, error, message):
    if cls is Bottleneck and "maps 3 input channels" in message:
        message = "maps 3 input channels to 24"
    with pytest.raises(error, match=message):
        cls(**kwargs)


def test_channel_change_without_projection_is_caught_at_first_forward():
    blk = Residual(6)
    blk.initialize()
    with pytest.raises(ValueError, match=r"needs 6-channel input; got 3 channels.*use_1x1conv=True"):
        blk(nd.random.uniform(shape=(4, 3, 6, 6)))


@pytest.mark.parametrize("hybridize", [False, True])
def test_block_input_errors(hybridize):
    blk = Residual(3)
    blk.initialize()
    if hybridize:
        blk.hybridize()
    blk(nd.random.uniform(shape=(1, 3, 6, 6)))
    with pytest.raises(ValueError, match=r"4-D batch \(N, C, H, W\), got a 3-D input.*expand_dims\(0\)"):
        blk(nd.random.uniform(shape=(3, 6, 6)))
    with pytest.raises(TypeError, match="floating-point input, got dtype int32.*astype\\('float32'\\)"):
        blk(nd.ones((1, 3, 6, 6), dtype="int32"))
    with pytest.raises(TypeError, match="expects an mxnet NDArray.*got ndarray.*mx.nd.array"):
        blk(np.zeros((1, 3, 6, 6), dtype="float32"))
