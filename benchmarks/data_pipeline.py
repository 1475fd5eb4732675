"""How much of a training step the data pipeline costs (resize per batch).

Measures, with OMP_NUM_THREADS as set: producing one batch from the uint8 images
(scale, optional shifts/flips, one BilinearResize2D call for the whole batch), and
one hybridized training step of ResNet-18 on that batch. Median of repeats.

Run:  OMP_NUM_THREADS=2 python benchmarks/data_pipeline.py [--resize 96] [--batch-size 256]

With ``--folder DIR``: your own images against the IDX path (issue 25's target: >= 90% of its
images/s at 64x64, decoding the 60,000 training PNGs in under a minute).  DIR/train/CLASS/*.png
is written from the Fashion-MNIST training set first if DIR does not exist; then the folder is
decoded (timed), and training steps fed by the IDX BatchIter and by the folder's BatchIter
(normalised, decoded at the training size) alternate, ``--repeats`` rounds of ``--steps``
steps each; the ratio of their images/s is the median over rounds.

Run:  OMP_NUM_THREADS=2 python benchmarks/data_pipeline.py --folder /tmp/fashion-png \
          --resize 64 --batch-size 128 --augment --repeats 5 --steps 20
"""
import argparse
import json
import os
import statistics
import time

import resnet_gluon  # noqa: F401  first: it lets MXNet import with numpy >= 1.24
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
parser.add_argument("--folder", help="compare training from this image folder with the IDX path")
parser.add_argument("--steps", type=int, default=20, help="steps a round with --folder (20)")
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


def write_folder(root):
    from PIL import Image

    from resnet_gluon.data import CLASS_NAMES

    tic = time.perf_counter()
    for name in CLASS_NAMES:
        os.makedirs(os.path.join(root, "train", name))
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image).save(os.path.join(root, "train", CLASS_NAMES[label], f"{i}.png"))
    print(f"wrote {len(images):,} PNGs into {root}/train in {time.perf_counter() - tic:.0f} s")


def images_per_second(source, rounds_at):
    tic = time.perf_counter()
    for b, (X, y) in enumerate(source.batches(rounds_at)):
        step_time(X, y)
        if b + 1 == args.steps:
            break
    return args.steps * args.batch_size / (time.perf_counter() - tic)


if args.folder:
    from resnet_gluon.folders import load_image_folder

    if not os.path.exists(args.folder):
        write_folder(args.folder)
    tic = time.perf_counter()
    own = load_image_folder(os.path.join(args.folder, "train"), args.resize)
    decode_s = time.perf_counter() - tic
    print(f"decoded {len(own.images):,} PNGs at {args.resize}x{args.resize} in {decode_s:.1f} s "
          f"({os.cpu_count()} cores)")
    folder = BatchIter(own.images, own.labels, args.batch_size, shuffle=True,
                       augment=args.augment, normalize=own.channel_stats())
    step_time(*next(data.batches(0)))  # warm-up: graph building, memory planning
    step_time(*next(data.batches(0)))
    ratios, rates = [], {"idx": [], "folder": []}
    for r in range(args.repeats):  # alternating, so a slow minute hits both
        rates["idx"].append(images_per_second(data, r))
        rates["folder"].append(images_per_second(folder, r))
        ratios.append(rates["folder"][-1] / rates["idx"][-1])
        print(f"round {r + 1}: IDX {rates['idx'][-1]:.1f} img/s, folder "
              f"{rates['folder'][-1]:.1f} img/s, ratio {ratios[-1]:.3f}", flush=True)
    result = {"omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "resize": args.resize,
              "batch_size": args.batch_size, "augment": args.augment, "images": len(own.images),
              "decode_s": decode_s, "idx_img_s": statistics.median(rates["idx"]),
              "folder_img_s": statistics.median(rates["folder"]),
              "ratio_median": statistics.median(ratios), "ratios": ratios}
    print(f"folder / IDX images/s: median {result['ratio_median']:.3f} over {args.repeats} "
          f"rounds of {args.steps} steps (target >= 0.90); decoding {decode_s:.1f} s "
          f"(target < 60 s)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    raise SystemExit(0)

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
