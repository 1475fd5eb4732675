"""resnet_gluon's ``fit`` on the book pipeline's own batches and initialisation.

``benchmarks/book_pipeline.py`` runs the book's code: the notebook's net,
Gluon's shuffling ``DataLoader`` with per-image ``Resize(96)`` + ``ToTensor()``,
``d2lzh.train_ch5``.  This script seeds and builds exactly the same things
(the same data order, the same Xavier draw at the first forward) and hands
them to ``resnet_gluon.train.fit`` instead of ``train_ch5``.  If ``fit``
takes the steps ``train_ch5`` takes, its epoch lines repeat
``benchmarks/results/book-pipeline.log`` digit for digit (time aside); any
difference between our book-recipe run and the book's then comes from the
random draws (data order, initial weights), not from the training code.

Run:  OMP_NUM_THREADS=2 python benchmarks/book_pipeline_fit.py [--epochs 1] [--seed 0]
"""
import argparse
import os
import sys

import mxnet as mx
import numpy as np
from mxnet import gluon, nd
from mxnet.gluon.data.vision import transforms

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from notebook import notebook_net  # noqa: E402

from resnet_gluon.data import load_fashion_mnist  # noqa: E402
from resnet_gluon.train import TrainConfig, fit  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=1)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--limit-train", type=int, default=None)
parser.add_argument("--limit-test", type=int, default=None)
args = parser.parse_args()


class Batches:
    """A Gluon DataLoader as fit's data: float32 labels, a new shuffle each pass."""

    def __init__(self, loader):
        self.loader = loader

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for X, y in self.loader:
            yield X, y.astype("float32")


def dataset(split, limit):
    # As benchmarks/book_pipeline.py: the (28, 28, 1) uint8 images Gluon's FashionMNIST yields.
    images, labels = load_fashion_mnist(split)
    return gluon.data.ArrayDataset(nd.array(images[:limit, :, :, None], dtype="uint8"),
                                   labels[:limit].astype("int32"))


# Seeded and built in book_pipeline.py's order; fit seeds again with the same seed.
mx.random.seed(args.seed)
np.random.seed(args.seed)
transformer = transforms.Compose([transforms.Resize(96), transforms.ToTensor()])
train_iter = gluon.data.DataLoader(dataset("train", args.limit_train).transform_first(transformer),
                                   256, shuffle=True, num_workers=0)
test_iter = gluon.data.DataLoader(dataset("test", args.limit_test).transform_first(transformer),
                                  256, shuffle=False, num_workers=0)
fit(notebook_net(), Batches(train_iter), Batches(test_iter),
    TrainConfig(epochs=args.epochs, seed=args.seed), progress=False)
