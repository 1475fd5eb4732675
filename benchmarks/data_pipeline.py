"""How much of a training step the data pipeline costs (resize per batch).

Measures, with OMP_NUM_THREADS as set: producing one batch from the uint8 images
(scale, optional shifts/flips, one BilinearResize2D call for the whole batch), and
one hybridized training step of ResNet-18 on that batch. Median of repeats.

Run:  OMP_NUM_THREADS=2 python benchmarks/data_pipeline.py [--resize 96] [--batch-size 256]
"""
import argparse
import json
import os
import statistics
import time

import mxnet as mx
from mxnet import autograd, gluon

from resnet_gluon import build_resnet
from resnet_gluon.data import BatchIter, load_fashion_mnist

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--resize", type=int, default=96)
parser.add_argument("--batch-size", type=int, default=256)
parser.add_argument("--repeats", type=int, default=10)
parser.add_argument("--augment", action="store_true")
parser.add_argument("--json", help="also write the figures here")
args = parser.parse_args()

images, labels = load_fashion_mnist("train")
data = BatchIter(images, labels, args.batch_size, shuffle=True, resize=args.resize,
                 augment=args.augment)


def batch_time(b):
    tic = time.perf_counter()
    X, y = next(data.batches(0, b))
    X.wait_to_read()
    return time.perf_counter() - tic, X, y


net = build_resnet(18, in_channels=1)
net.initialize(mx.init.Xavier())
net.hybridize(static_alloc=True, static_shape=True)
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05})
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()


def step_time(X, y):
    tic = time.perf_counter()
    with autograd.record():
        loss = loss_fn(net(X), y).sum()
    loss.backward()
    trainer.step(X.shape[0])
    mx.nd.waitall()
    return time.perf_counter() - tic


_, X, y = batch_time(0)
for _ in range(2):  # warm-up: graph building, memory planning
    step_time(X, y)
batches, steps = [], []
for b in range(args.repeats):
    t, X, y = batch_time(b)
    batches.append(t)
    steps.append(step_time(X, y))
result = {
    "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    "resize": args.resize, "batch_size": args.batch_size, "augment": args.augment,
    "batch_ms": 1000 * statistics.median(batches),
    "step_ms": 1000 * statistics.median(steps),
}
result["data_share"] = result["batch_ms"] / (result["batch_ms"] + result["step_ms"])
print(f"batch of {args.batch_size} at {args.resize}x{args.resize}: data {result['batch_ms']:.1f} ms, "
      f"training step {result['step_ms']:.1f} ms; the data is "
      f"{100 * result['data_share']:.1f}% of a step done one after the other")
if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
