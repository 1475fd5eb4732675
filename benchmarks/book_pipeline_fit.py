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
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from book_pipeline import book_setup, parse_args  # noqa: E402

from resnet_gluon.train import TrainConfig, fit  # noqa: E402


class Batches:
    """A Gluon DataLoader as fit's data: float32 labels, a new shuffle each pass."""

    def __init__(self, loader):
        self.loader = loader

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for X, y in self.loader:
            yield X, y.astype("float32")


if __name__ == "__main__":
    args = parse_args(__doc__, epochs=1)
    # Seeded and built as book_pipeline.py does; fit seeds again with the same seed
    # and initialises the net as the book does (Xavier, deferred to the first forward).
    net, train_iter, test_iter = book_setup(args)
    fit(net, Batches(train_iter), Batches(test_iter),
        TrainConfig(epochs=args.epochs, seed=args.seed), progress=False)
