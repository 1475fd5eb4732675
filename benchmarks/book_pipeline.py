"""The book's own code on this machine: is the book's 0.913 within reach here?

Everything as d2l-zh 5.11 runs it, nothing of resnet_gluon's training path:
the notebook's ``nn.Block`` net (``benchmarks/notebook.py``: cells 1-7 as the book
wrote them), Gluon's ``Resize(96)`` + ``ToTensor()`` applied per image by a
shuffling ``DataLoader`` (as ``d2l.load_data_fashion_mnist`` does), Xavier
initialisation, ``gluon.Trainer`` plain SGD at lr 0.05 and ``d2lzh.train_ch5``.
Only the files are read offline (``d2l.load_data_fashion_mnist`` would
download them); ``num_workers=0`` because worker processes would fight the
net for the two cores.

Run:  OMP_NUM_THREADS=2 python benchmarks/book_pipeline.py [--epochs 5] [--seed 0]
"""
import argparse

import resnet_gluon  # noqa: F401  first: it lets MXNet import with numpy >= 1.24
import d2lzh as d2l
import mxnet as mx
import numpy as np
from mxnet import gluon, init, nd
from mxnet.gluon.data.vision import transforms

from notebook import notebook_net  # benchmarks/notebook.py, beside this script

from resnet_gluon.data import load_fashion_mnist

BATCH_SIZE, LR, RESIZE = 256, 0.05, 96


def parse_args(description: str = __doc__, epochs: int = 5) -> argparse.Namespace:
    """The scripts' options (shared with ``book_pipeline_fit.py``)."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--limit-test", type=int, default=None)
    return parser.parse_args()


def _dataset(split, limit):
    images, labels = load_fashion_mnist(split)
    # The same (28, 28, 1) uint8 images and labels gluon.data.vision.FashionMNIST yields.
    return gluon.data.ArrayDataset(nd.array(images[:limit, :, :, None], dtype="uint8"),
                                   labels[:limit].astype("int32"))


def book_setup(args):
    """Seed, then build the book's loaders and net in the book's order.

    Returns ``(net, train_iter, test_iter)``; the net is not initialised yet
    (the book's deferred Xavier draw happens at its first forward).
    """
    mx.random.seed(args.seed)
    np.random.seed(args.seed)
    transformer = transforms.Compose([transforms.Resize(RESIZE), transforms.ToTensor()])
    train_iter = gluon.data.DataLoader(
        _dataset("train", args.limit_train).transform_first(transformer), BATCH_SIZE,
        shuffle=True, num_workers=0)
    test_iter = gluon.data.DataLoader(
        _dataset("test", args.limit_test).transform_first(transformer), BATCH_SIZE,
        shuffle=False, num_workers=0)
    return notebook_net(), train_iter, test_iter


if __name__ == "__main__":
    args = parse_args()
    net, train_iter, test_iter = book_setup(args)
    ctx = mx.cpu()
    net.initialize(ctx=ctx, init=init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": LR})
    d2l.train_ch5(net, train_iter, test_iter, BATCH_SIZE, trainer, ctx, args.epochs)
