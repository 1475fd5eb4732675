"""Fine-tuning from the shipped weights: what is copied, widened and new, and a frozen body."""
import numpy as np
import pytest
from mxnet import nd

from resnet_gluon.config import TrainConfig
from resnet_gluon.data import BatchIter, resize_batch
from resnet_gluon.finetune import init_from
from resnet_gluon.model import ResNetSpec
from resnet_gluon.pretrained import load_pretrained
from resnet_gluon.train import fit


def _features(net, X):
    for layer in list(net)[:-1]:  # all but the dense layer: the pooled features
        X = layer(X)
    return X.asnumpy()


def test_a_colour_net_with_other_classes_starts_from_the_gray_net_it_came_from(test_images):
    shipped, info = load_pretrained()
    net = ResNetSpec(num_classes=5, in_channels=3).build()
    notes = init_from(net)
    assert notes == ["0.weight: the 1-channel stem widened to 3 channels (gray kernel / 3)",
                     "9.weight: new, (5, 512) (the source has (10, 512))",
                     "9.bias: new, (5,) (the source has (10,))"]
    gray = resize_batch(test_images[0][:8], info.resize)
    colour = nd.concat(gray, gray, gray, dim=1)  # a gray image in three channels
    np.testing.assert_allclose(_features(net, colour), _features(shipped, gray),
                               rtol=1e-4, atol=1e-5)
    assert net(colour).shape == (8, 5)
    again = ResNetSpec(num_classes=5, in_channels=3).build()
    init_from(again)  # seeded: the same new head
    np.testing.assert_array_equal(again[9].weight.data().asnumpy(),
                                  net[9].weight.data().asnumpy())


def test_lr_body_zero_freezes_all_but_the_new_head(test_images):
    images, labels = test_images
    net = ResNetSpec(num_classes=10).build()
    init_from(net, lr_body=0)
    before = {k: p.data().asnumpy().copy() for k, p in net._collect_params_with_prefix().items()}
    data = BatchIter(images[:128], labels[:128], 64, resize=64)
    fit(net, data, data, TrainConfig(epochs=1, resize=64), progress=False, log=lambda line: None)
    after = {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}
    moved = sorted(k for k in after if not np.array_equal(before[k], after[k]))
    # the head learns; the body's weights and BatchNorm's statistics stay as they came
    assert moved == ["9.bias", "9.weight"], moved
    half = ResNetSpec().build()
    init_from(half, lr_body=0.1)
    assert half[0].weight.lr_mult == 0.1 and half[9].weight.lr_mult == 1.0


@pytest.mark.parametrize("spec, message", [
    (ResNetSpec(depth=34), r"do not map onto this net: 4\.2\.bn1\.beta is in the net only"),
    (ResNetSpec(small_input=True), "do not map onto this net"),
    (ResNetSpec(in_channels=4), r"0\.weight is \(64, 1, 7, 7\) in the weights and "
                                r"\(64, 4, 7, 7\) in the net"),
    (ResNetSpec(in_channels=0), "input channels are still to be inferred"),
])
def test_an_architecture_the_weights_cannot_start_is_named(spec, message):
    with pytest.raises(ValueError, match=message):
        init_from(spec.build())


def test_bad_lr_body_is_named():
    with pytest.raises(ValueError, match="lr_body must be a number >= 0"):
        init_from(ResNetSpec().build(), lr_body=-1)
