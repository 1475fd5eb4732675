"""The book's ResNet chapter end to end with d2lzh: our net, the book's training loop.

d2l-zh 5.11 trains ResNet-18 on Fashion-MNIST resized to 96x96 with
``d2l.train_ch5`` (lr 0.05, batch 256, 5 epochs, Xavier).  ``d2l.load_data_
fashion_mnist`` downloads; here the real files are read offline instead.

Run:  python examples/book_chapter.py                       # the book's recipe
      python examples/book_chapter.py --limit-train 2048 --epochs 1   # a quick look
"""
import argparse

import resnet_gluon  # noqa: F401  first: it lets MXNet import with numpy >= 1.24
import d2lzh as d2l
from mxnet import gluon, init

from resnet_gluon import build_resnet18
from resnet_gluon.data import load_data_fashion_mnist

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--batch-size", type=int, default=256)
parser.add_argument("--lr", type=float, default=0.05)
parser.add_argument("--resize", type=int, default=96)
parser.add_argument("--limit-train", type=int, default=None)
parser.add_argument("--limit-test", type=int, default=None)
parser.add_argument("--data-dir", default=None)
args = parser.parse_args()

net = build_resnet18()
ctx = d2l.try_gpu()
net.initialize(ctx=ctx, init=init.Xavier())
net.hybridize(static_alloc=True, static_shape=True)
train_iter, test_iter = load_data_fashion_mnist(
    args.batch_size, resize=args.resize, root=args.data_dir,
    limit_train=args.limit_train, limit_test=args.limit_test)
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": args.lr})
d2l.train_ch5(net, train_iter, test_iter, args.batch_size, trainer, ctx, args.epochs)
