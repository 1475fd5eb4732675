"""Interop with the book: the notebook's own net and d2lzh's blocks compute what ours does."""
import re

import d2lzh
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, nd

from common import resnet18_like
from notebook import Residual as NotebookResidual
from notebook import notebook_net
from resnet_gluon import Residual, build_resnet18, copy_weights
from resnet_gluon.data import load_data_fashion_mnist


def _forward_backward(net, X):
    with autograd.record():
        out = net(X)
    out.backward()
    grads = [p.grad().asnumpy() for p in net.collect_params().values() if p.grad_req != "null"]
    return out.asnumpy(), grads


def _pair(residual):
    """The book's net with ``residual`` blocks, and ours holding the same weights."""
    X = nd.random.uniform(shape=(4, 1, 96, 96))
    book = notebook_net(residual)
    return book, resnet18_like(book, X), X


@pytest.mark.parametrize("residual", [NotebookResidual, d2lzh.Residual],
                         ids=["notebook", "d2lzh"])
def test_identical_outputs_in_predict_mode(residual):
    book, ours, X = _pair(residual)
    np.testing.assert_array_equal(ours(X).asnumpy(), book(X).asnumpy())


@pytest.mark.parametrize("residual", [NotebookResidual, d2lzh.Residual],
                         ids=["notebook", "d2lzh"])
def test_identical_outputs_and_gradients_in_train_mode(residual):
    book, ours, X = _pair(residual)
    book_out, book_grads = _forward_backward(book, X)
    our_out, our_grads = _forward_backward(ours, X)
    np.testing.assert_array_equal(our_out, book_out)
    assert len(our_grads) == len(book_grads) == 76
    for ours_g, book_g in zip(our_grads, book_grads):
        np.testing.assert_array_equal(ours_g, book_g)
    # and the running statistics moved the same way
    for a, b in zip(ours.collect_params().values(), book.collect_params().values()):
        np.testing.assert_array_equal(a.data().asnumpy(), b.data().asnumpy())


@pytest.mark.parametrize("use_1x1conv, strides", [(False, 1), (True, 2)])
def test_block_weights_map_one_to_one_from_d2lzh_residual(use_1x1conv, strides):
    X = nd.random.uniform(shape=(4, 3 if not use_1x1conv else 5, 6, 6))
    book = d2lzh.Residual(3, use_1x1conv=use_1x1conv, strides=strides)
    book.initialize(mx.init.Xavier())
    book(X)
    ours = Residual(3, use_1x1conv=use_1x1conv, strides=strides, in_channels=X.shape[1])
    ours.initialize()
    assert [k for k in ours._collect_params_with_prefix()] == \
           [k for k in book._collect_params_with_prefix()]
    copy_weights(book, ours)
    np.testing.assert_array_equal(ours(X).asnumpy(), book(X).asnumpy())
    book_out, book_grads = _forward_backward(book, X)
    our_out, our_grads = _forward_backward(ours, X)
    np.testing.assert_array_equal(our_out, book_out)
    for ours_g, book_g in zip(our_grads, book_grads):
        np.testing.assert_array_equal(ours_g, book_g)


@pytest.mark.slow
def test_d2lzh_train_ch5_trains_our_net_on_real_fashion_mnist(capsys):
    # A short epoch: the first 4,096 real training images at the native 28x28
    # (the book resizes to 96; 28 keeps the test to seconds), the book's lr 0.05.
    train_iter, test_iter = load_data_fashion_mnist(64, limit_train=4096, limit_test=1000)
    net = build_resnet18()
    net.initialize(init=mx.init.Xavier())
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05})
    d2lzh.train_ch5(net, train_iter, test_iter, 64, trainer, mx.cpu(), 1)
    out = capsys.readouterr().out
    match = re.search(r"epoch 1, loss (\S+), train acc (\S+), test acc (\S+), time \S+ sec", out)
    assert match, out
    loss, train_acc, test_acc = map(float, match.groups())
    assert np.isfinite(loss) and loss < 1.8  # ln(10) = 2.30 is guessing
    assert train_acc > 0.4 and test_acc > 0.5  # chance is 0.1
