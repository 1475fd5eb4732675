"""Images per second of ResNet-18 implementations on this CPU, side by side, in one run.

Inference (predict mode) and one training step (forward, backward, SGD update)
of: resnet_gluon imperative, hybridized and INT8; the notebook's literal
``nn.Block`` net; MXNet's model zoo ``resnet18_v1``; torchvision ``resnet18``
fp32 eager and bf16 autocast with channels_last (when torch is installed:
``pip install torch==2.14.1 torchvision==0.29.1``; never a dependency of the
library).  Every net takes 1-channel images and has 10 classes.  Each figure
is the median of ``--repeats`` timed calls after ``--warmup`` untimed ones;
the implementations run one after another within each configuration, so
that they are compared minutes apart at most on a shared machine.  The table gives each figure's ratio to
torchvision fp32 eager and its GFLOP/s as a share of a float32 matmul peak
measured in the same run.

Run:  OMP_NUM_THREADS=2 python benchmarks/throughput.py [--quick] [--json PATH]
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))  # the notebook's literal code

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import autograd, gluon, nd  # noqa: E402

from resnet_gluon import build_resnet  # noqa: E402
from resnet_gluon.quantize import calibration_images, quantize  # noqa: E402

Runner = Callable[[], None]


def _torch():
    try:
        import torch
        import torchvision
    except ImportError:
        return None, None
    return torch, torchvision


def matmul_peak(n: int = 2048, repeats: int = 5) -> Dict[str, float]:
    """float32 GFLOP/s of an n x n matmul, in MXNet and (if present) torch; best of each."""
    out = {}
    a, b = nd.random.uniform(shape=(n, n)), nd.random.uniform(shape=(n, n))
    nd.dot(a, b).wait_to_read()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        nd.dot(a, b).wait_to_read()
        times.append(time.perf_counter() - tic)
    out["mxnet"] = 2 * n ** 3 / min(times) / 1e9
    torch, _ = _torch()
    if torch is not None:
        x, y = torch.rand(n, n), torch.rand(n, n)
        torch.mm(x, y)
        times = []
        for _ in range(repeats):
            tic = time.perf_counter()
            torch.mm(x, y)
            times.append(time.perf_counter() - tic)
        out["torch"] = 2 * n ** 3 / min(times) / 1e9
    return out


def forward_gflop(size: int) -> float:
    """GFLOP (2 x multiply-adds) of one ResNet-18 forward pass at size x size, 1 channel."""
    net = build_resnet(18, in_channels=1)
    net.initialize()
    macs = []

    def hook(block, inputs, output):
        if isinstance(block, gluon.nn.Conv2D):
            k = block.weight.shape  # (out, in, kh, kw)
            macs.append(np.prod(output.shape[1:]) * k[1] * k[2] * k[3])
        elif isinstance(block, gluon.nn.Dense):
            macs.append(np.prod(block.weight.shape))

    for block in _walk(net):
        if isinstance(block, (gluon.nn.Conv2D, gluon.nn.Dense)):
            block.register_forward_hook(hook)
    net(nd.zeros((1, 1, size, size)))
    return 2 * float(sum(macs)) / 1e9


def _walk(block):
    yield block
    for child in block._children.values():
        yield from _walk(child)


# ----------------------------------------------------------------- implementations

def _mx_runners(net, batch: int, size: int, train: bool) -> Tuple[Runner, Optional[Runner]]:
    X = nd.random.uniform(shape=(batch, 1, size, size))
    y = nd.array(np.random.randint(0, 10, size=batch))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    net(X).wait_to_read()

    def infer():
        net(X).wait_to_read()

    if not train:
        return infer, None
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.01})

    def step():
        with autograd.record():
            loss = loss_fn(net(X), y)
        loss.backward()
        trainer.step(batch)
        mx.nd.waitall()

    return infer, step


def ours_imperative(batch, size):
    net = build_resnet(18, in_channels=1)
    net.initialize(mx.init.Xavier())
    return _mx_runners(net, batch, size, train=True)


def ours_hybridized(batch, size):
    net = build_resnet(18, in_channels=1)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    return _mx_runners(net, batch, size, train=True)


def ours_int8(batch, size):
    net = build_resnet(18, in_channels=1)
    net.initialize(mx.init.Xavier())
    qnet = quantize(net, calibration_images(max(batch, 64), size))
    return _mx_runners(qnet, batch, size, train=False)


def notebook_literal(batch, size):
    from notebook import notebook_net
    net = notebook_net()
    net.initialize(mx.init.Xavier())
    return _mx_runners(net, batch, size, train=True)


def model_zoo(batch, size):
    net = gluon.model_zoo.vision.resnet18_v1(classes=10)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    return _mx_runners(net, batch, size, train=True)


def _torch_runners(batch, size, bf16: bool):
    torch, torchvision = _torch()
    net = torchvision.models.resnet18(num_classes=10)
    net.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    X = torch.rand(batch, 1, size, size)
    y = torch.randint(0, 10, (batch,))
    if bf16:
        net = net.to(memory_format=torch.channels_last)
        X = X.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

    def infer():
        net.eval()
        with torch.no_grad(), autocast():
            net(X)

    def step():
        net.train()
        opt.zero_grad()
        with autocast():
            loss = loss_fn(net(X), y)
        loss.backward()
        opt.step()

    return infer, step


def torch_fp32(batch, size):
    return _torch_runners(batch, size, bf16=False)


def torch_bf16(batch, size):
    return _torch_runners(batch, size, bf16=True)


IMPLEMENTATIONS = {
    "resnet_gluon imperative": ours_imperative,
    "resnet_gluon hybridized": ours_hybridized,
    "resnet_gluon int8": ours_int8,
    "notebook nn.Block": notebook_literal,
    "model zoo resnet18_v1": model_zoo,
    "torchvision fp32 eager": torch_fp32,
    "torchvision bf16 channels_last": torch_bf16,
}
BASELINE = "torchvision fp32 eager"


def _median_rate(run: Runner, batch: int, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        run()
        times.append(time.perf_counter() - tic)
    return batch / statistics.median(times)


def measure(names: List[str], batches: List[int], sizes: List[int], warmup: int,
            repeats: int, log=print) -> List[Dict]:
    rows = []
    for size in sizes:
        for batch in batches:
            for name in names:
                infer, step = IMPLEMENTATIONS[name](batch, size)
                row = {"implementation": name, "batch": batch, "size": size,
                       "infer_img_s": _median_rate(infer, batch, warmup, repeats),
                       "train_img_s": (_median_rate(step, batch, warmup, repeats)
                                       if step else None)}
                rows.append(row)
                log(f"  {name:<32} batch {batch:>3} {size}x{size}: inference "
                    f"{row['infer_img_s']:8.1f} img/s, train step "
                    f"{row['train_img_s'] or float('nan'):8.1f} img/s")
    return rows


def table(rows: List[Dict], gflop: Dict[int, float], peak: float) -> str:
    base = {(r["batch"], r["size"]): r for r in rows if r["implementation"] == BASELINE}
    lines = ["| implementation | batch | size | inference img/s | x torch | % peak | "
             "train img/s | x torch | % peak |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        b = base.get((r["batch"], r["size"]))
        cells = []
        for key, flop_factor in (("infer_img_s", 1), ("train_img_s", 3)):  # backward ~ 2x forward
            v = r[key]
            if v is None:
                cells += ["-", "-", "-"]
                continue
            ratio = f"{v / b[key]:.2f}" if b and b[key] else "-"
            share = 100 * v * flop_factor * gflop[r["size"]] / peak
            cells += [f"{v:.1f}", ratio, f"{share:.0f}%"]
        lines.append(f"| {r['implementation']} | {r['batch']} | {r['size']} | " +
                     " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,32,128", help="batch sizes (1,32,128)")
    parser.add_argument("--sizes", default="96,224", help="input sides (96,224)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", help="comma-separated implementations (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="batch 32 at 96x96, 1 warm-up, 3 repeats: a smoke run")
    parser.add_argument("--json", help="write the figures here as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.sizes, args.warmup, args.repeats = "32", "96", 1, 3
    torch, _ = _torch()
    names = args.only.split(",") if args.only else list(IMPLEMENTATIONS)
    unknown = [n for n in names if n not in IMPLEMENTATIONS]
    if unknown:
        parser.error(f"unknown implementations {unknown}; known: {list(IMPLEMENTATIONS)}")
    if torch is None:
        print("torch is not installed: torchvision rows skipped "
              "(pip install torch==2.14.1 torchvision==0.29.1)")
        names = [n for n in names if not n.startswith("torchvision")]
    else:
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    batches = [int(v) for v in args.batches.split(",")]
    sizes = [int(v) for v in args.sizes.split(",")]
    peaks = matmul_peak()
    peak = max(peaks.values())
    gflop = {s: forward_gflop(s) for s in sizes}
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, {os.cpu_count()} CPUs, "
          f"float32 matmul peak {peak:.0f} GFLOP/s "
          f"({', '.join(f'{k} {v:.0f}' for k, v in peaks.items())}); forward GFLOP per image: "
          + ", ".join(f"{s}x{s} {g:.3f}" for s, g in gflop.items()))
    rows = measure(names, batches, sizes, args.warmup, args.repeats)
    print(table(rows, gflop, peak))
    if args.json:
        result = {"machine": platform.processor() or platform.machine(),
                  "cpus": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                  "mxnet": mx.__version__, "torch": getattr(torch, "__version__", None),
                  "matmul_peak_gflops": peaks, "forward_gflop": gflop,
                  "warmup": args.warmup, "repeats": args.repeats, "rows": rows}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
