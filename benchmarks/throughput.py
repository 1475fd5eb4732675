"""Images per second of ResNet-18 implementations on this CPU, side by side, in one run.

Inference (predict mode) and one training step (forward, backward, SGD update)
of: resnet_gluon imperative, hybridized (also with AMX turned off), bfloat16
(``resnet_gluon.precision``) and INT8 (also with AMX off); the notebook's literal
``nn.Block`` net; MXNet's model zoo ``resnet18_v1``; torchvision ``resnet18``
fp32 eager and bf16 autocast with channels_last (when torch is installed:
``pip install torch==2.14.1 torchvision==0.29.1``; never a dependency of the
library).  Every net takes 1-channel images and has 10 classes.  Each figure
is the median of ``--repeats`` timed calls after ``--warmup`` untimed ones, in
a fresh process (no memory or thread pool carried over); the implementations
run one after another within each configuration, so that they are compared
minutes apart at most on a shared machine.  The table gives each figure's
ratio to torchvision fp32 eager and its GFLOP/s as a share of a float32 matmul
peak measured in the same run (the best of MXNet's ``dot``, its oneDNN
``FullyConnected`` and ``torch.mm``, at 2048 and 4096).  ``--rounds N`` runs the
whole set N times, alternating, and keeps each figure's median.  Each row names
the ISA its convolutions ran on, read from oneDNN's verbose log of one extra
step in a process of its own (MXNet's oneDNN and torch's alike; ``-``: none ran
through oneDNN).

Then, unless ``--no-extras``: a real training epoch (``resnet_gluon.fit`` on real
Fashion-MNIST: batching, resize, loss and accuracy included) against the pure
training step at the same batch size; how one epoch's time grows with the input
size (28, 64, 96, 224); how throughput grows with batch size at 1 and 2 threads
(each thread count in its own process, as OpenMP reads it at start-up); and
where a hybridized training step spends its time (MXNet's profiler).

Run:  OMP_NUM_THREADS=2 python benchmarks/throughput.py [--quick] [--out benchmarks/results]
bf16 against torchvision on an AMX machine (issue 15):
      OMP_NUM_THREADS=2 python benchmarks/throughput.py --batches 32,128 --sizes 96 \
          --no-extras --rounds 3 --out benchmarks/results/amx
"""
import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))

import resnet_gluon  # noqa: E402,F401  first: it lets MXNet import with numpy >= 1.24
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import autograd, gluon, nd  # noqa: E402

from resnet_gluon import build_resnet  # noqa: E402
from resnet_gluon.cpu import ISA_FLAGS, amx_status, cpu_flags, cpu_model  # noqa: E402
from resnet_gluon.precision import mixed_precision  # noqa: E402
from resnet_gluon.quantize import calibration_images, quantize  # noqa: E402

Runner = Callable[[], None]


def _torch():
    try:
        import torch
        import torchvision
    except ImportError:
        return None, None
    return torch, torchvision


def _timings(run: Callable[[], None], warmup: int, repeats: int) -> List[float]:
    """Seconds of each of ``repeats`` calls of ``run`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        run()
        times.append(time.perf_counter() - tic)
    return times


def _best_rate(run: Callable[[], None], flop: float, repeats: int) -> float:
    return flop / min(_timings(run, 1, repeats)) / 1e9


def matmul_peak(sizes=(2048, 4096), repeats: int = 5) -> Dict[str, float]:
    """Best float32 GFLOP/s of an n x n matmul per library routine (best of ``repeats``).

    MXNet's ``dot`` goes to its BLAS, ``FullyConnected`` to oneDNN (the
    library convolutions use); torch's ``mm`` to its own BLAS. The peak that
    the table divides by is the best of all of them.
    """
    out: Dict[str, float] = {}
    torch, _ = _torch()
    for n in sizes:
        a, b = nd.random.uniform(shape=(n, n)), nd.random.uniform(shape=(n, n))
        flop = 2.0 * n ** 3
        rates = {
            "mxnet dot": _best_rate(lambda: nd.dot(a, b).wait_to_read(), flop, repeats),
            "mxnet FullyConnected": _best_rate(
                lambda: nd.FullyConnected(a, b, no_bias=True, num_hidden=n).wait_to_read(),
                flop, repeats),
        }
        if torch is not None:
            x, y = torch.rand(n, n), torch.rand(n, n)
            rates["torch mm"] = _best_rate(lambda: torch.mm(x, y), flop, repeats)
        for k, v in rates.items():
            out[k] = max(out.get(k, 0.0), v)
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


def ours_bf16(batch, size):
    net = build_resnet(18, in_channels=1)
    net.initialize(mx.init.Xavier())
    bf16 = mixed_precision(net, "bfloat16")  # shares net's float32 weights
    bf16.hybridize(static_alloc=True, static_shape=True)
    return _mx_runners(bf16, batch, size, train=True)


def ours_bf16_whole(batch, size):
    """bf16 with the stem in bf16 too, as ``mixed_precision`` runs it only with AMX: on
    AVX512-BF16 alone it keeps the stem in float32; this is the graph before that choice."""
    from resnet_gluon import precision
    precision.bfloat16_case = lambda: ("amx", "the bf16 stem, for the comparison")
    return ours_bf16(batch, size)


def ours_int8(batch, size):
    net = build_resnet(18, in_channels=1)
    net.initialize(mx.init.Xavier())
    qnet = quantize(net, calibration_images(max(batch, 64), size))
    return _mx_runners(qnet, batch, size, train=False)


def notebook_literal(batch, size):
    from notebook import notebook_net  # benchmarks/notebook.py: the notebook's literal code
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
    "resnet_gluon hybridized (AMX off)": ours_hybridized,
    "resnet_gluon bf16": ours_bf16,
    "resnet_gluon bf16 (AMX off)": ours_bf16,
    "resnet_gluon bf16 (AMX off; bf16 stem)": ours_bf16_whole,
    "resnet_gluon int8": ours_int8,
    "resnet_gluon int8 (AMX off)": ours_int8,
    "notebook nn.Block": notebook_literal,
    "model zoo resnet18_v1": model_zoo,
    "torchvision fp32 eager": torch_fp32,
    "torchvision bf16 channels_last": torch_bf16,
    "torchvision bf16 channels_last (AMX off)": torch_bf16,
}
BASELINE = "torchvision fp32 eager"
TORCH_BF16 = "torchvision bf16 channels_last"
#: What a child process of an implementation has in its environment besides ours.
#: "(AMX off)": oneDNN at most AVX512-BF16 on an AMX machine, both libraries alike (what an
#: AMD EPYC or a Cooper Lake Xeon has; torch's oneDNN reads ONEDNN_MAX_CPU_ISA).
CHILD_ENV = {"resnet_gluon hybridized (AMX off)": {"RESNET_GLUON_AMX": "0"},
             "resnet_gluon bf16 (AMX off)": {"RESNET_GLUON_AMX": "0"},
             "resnet_gluon bf16 (AMX off; bf16 stem)": {"RESNET_GLUON_AMX": "0"},
             "resnet_gluon int8 (AMX off)": {"RESNET_GLUON_AMX": "0"},
             "torchvision bf16 channels_last (AMX off)": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}}


def _median_rate(run: Runner, batch: int, warmup: int, repeats: int) -> float:
    return batch / statistics.median(_timings(run, warmup, repeats))


def measure(names: List[str], batches: List[int], sizes: List[int], warmup: int,
            repeats: int, log=print) -> List[Dict]:
    """Measure in this process (what each child process does)."""
    rows = []
    for size in sizes:
        for batch in batches:
            for name in names:
                infer, step = IMPLEMENTATIONS[name](batch, size)
                rows.append({"implementation": name, "batch": batch, "size": size,
                             "infer_img_s": _median_rate(infer, batch, warmup, repeats),
                             "train_img_s": (_median_rate(step, batch, warmup, repeats)
                                             if step else None)})
                del infer, step
    return rows


def _child(args: List[str], threads: Optional[int] = None, env: Optional[Dict] = None,
           verbose: bool = False):
    """Run this script with ``args`` plus ``--child-json PATH`` in a fresh process; its JSON
    (and, with ``verbose``, oneDNN's verbose log of it as the second item)."""
    env = dict(os.environ, **(env or {}))
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    if verbose:
        env.update(DNNL_VERBOSE="1", ONEDNN_VERBOSE="1")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "out.json")
        done = subprocess.run([sys.executable, os.path.abspath(__file__), *args,
                               "--child-json", path], env=env, check=True, timeout=1800,
                              stdout=subprocess.PIPE if verbose else subprocess.DEVNULL,
                              text=True)
        with open(path, encoding="utf-8") as f:
            out = json.load(f)
    return (out, done.stdout) if verbose else out


def convolution_isa(log: str) -> str:
    """The ISA most of a verbose log's convolutions ran on, with its share when not all.

    Reads MXNet's oneDNN 2.4 (``dnnl_verbose,exec,cpu,convolution,IMPL,...``) and
    torch's oneDNN 3 (``onednn_verbose,...,exec,cpu,convolution,IMPL,...``), where IMPL
    is ``kind:isa`` such as ``brgconv:avx512_core_amx_bf16``.
    """
    isas: Counter = Counter()
    for line in log.splitlines():
        parts = line.strip().split(",")
        if "exec" in parts and "convolution" in parts[parts.index("exec"):]:
            impl = parts[parts.index("convolution", parts.index("exec")) + 1]
            isas[impl.split(":", 1)[-1]] += 1
    if not isas:
        return "-"
    isa, count = isas.most_common(1)[0]
    share = count / sum(isas.values())
    return isa if share == 1 else f"{isa} ({100 * share:.0f}%)"


def measure_isolated(names: List[str], batches: List[int], sizes: List[int], warmup: int,
                     repeats: int, threads: Optional[int] = None, log=print,
                     rounds: int = 1) -> List[Dict]:
    """Each implementation and configuration in its own process, ``rounds`` times.

    A fresh process per figure: no memory pool, thread pool or allocator
    state carries over from one implementation to the next (and 224x224
    training at batch 128 would not fit seven nets in memory at once).  The
    rounds alternate the implementations; each row keeps the median of its rounds.
    """
    runs: Dict[Tuple, List[Dict]] = {}
    for r in range(rounds):
        for size in sizes:
            for batch in batches:
                for name in names:
                    row, = _child(["--only", name, "--batches", str(batch), "--sizes",
                                   str(size), "--warmup", str(warmup), "--repeats",
                                   str(repeats)], threads, CHILD_ENV.get(name))
                    row["implementation"] = name
                    runs.setdefault((size, batch, name), []).append(row)
                    log(f"  {name:<34} batch {batch:>3} {size}x{size}: inference "
                        f"{row['infer_img_s']:8.1f} img/s, train step "
                        f"{row['train_img_s'] or float('nan'):8.1f} img/s"
                        + (f" ({threads} thread{'s' if threads > 1 else ''})" if threads
                           else "") + (f" (round {r + 1})" if rounds > 1 else ""))
    rows = []
    for got in runs.values():
        row = dict(got[0], rounds=len(got))
        for key in ("infer_img_s", "train_img_s"):
            if row[key] is not None:
                row[key] = statistics.median(g[key] for g in got)
        rows.append(row)
    return rows


def isa_of(names: List[str], batch: int, size: int) -> Dict[str, str]:
    """The ISA each implementation's convolutions ran on (one step, oneDNN's verbose log)."""
    found = {}
    for name in names:
        _, log = _child(["--only", name, "--batches", str(batch), "--sizes", str(size),
                         "--warmup", "1", "--repeats", "1"], env=CHILD_ENV.get(name),
                        verbose=True)
        found[name] = convolution_isa(log)
    return found


def table(rows: List[Dict], gflop: Dict[int, float], peak: float) -> str:
    """The side-by-side table; an ISA column when the rows carry one (``isa``)."""
    base = {(r["batch"], r["size"]): r for r in rows if r["implementation"] == BASELINE}
    isa = any("isa" in r for r in rows)
    lines = ["| implementation | batch | size | inference img/s | x torch | % peak | "
             "train img/s | x torch | % peak |" + (" convolutions ran on |" if isa else ""),
             "|---|---|---|---|---|---|---|---|---|" + ("---|" if isa else "")]
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
                     " | ".join(cells) + " |" + (f" {r.get('isa', '-')} |" if isa else ""))
    return "\n".join(lines)


# ----------------------------------------------------------------- extras

def real_epochs(sizes: List[int], batch: int, steps: int, warmup: int, repeats: int
                ) -> List[Dict]:
    """A real epoch (``fit`` on real data) against the pure step, per input size.

    Each epoch is ``steps`` batches of real Fashion-MNIST (batching, resize,
    loss, accuracy and the per-step NaN check included); the second of two
    epochs is timed, less its test pass, which is timed on its own.
    """
    from resnet_gluon.data import load_data_fashion_mnist
    from resnet_gluon.train import TrainConfig, evaluate, fit

    rows = []
    for size in sizes:
        train_iter, test_iter = load_data_fashion_mnist(
            batch, resize=size, limit_train=batch * steps, limit_test=2 * batch)
        config = TrainConfig(batch_size=batch, epochs=2, resize=size,
                             limit_train=batch * steps, limit_test=2 * batch)
        net = build_resnet(18, in_channels=1)
        history = fit(net, train_iter, test_iter, config, progress=False, log=lambda line: None)
        tic = time.perf_counter()
        evaluate(net, test_iter)
        test_time = time.perf_counter() - tic
        epoch_rate = batch * steps / (history[-1]["time"] - test_time)
        eval_rate = 2 * batch / test_time
        _, step = ours_hybridized(batch, size)
        step_rate = _median_rate(step, batch, warmup, repeats)
        row = {"size": size, "batch": batch, "epoch_train_img_s": epoch_rate,
               "step_img_s": step_rate, "epoch_vs_step": epoch_rate / step_rate,
               "eval_img_s": eval_rate,
               # the book's epoch: 60,000 training and 10,000 test images
               "full_epoch_s": 60000 / epoch_rate + 10000 / eval_rate}
        rows.append(row)
    return rows


def thread_scaling(threads: List[int], batches: List[int], size: int, warmup: int,
                   repeats: int, log=print) -> Dict[str, List[Dict]]:
    """Throughput against batch size at each thread count (OpenMP reads it at start-up)."""
    names = ["resnet_gluon hybridized", BASELINE]
    if _torch()[0] is None:
        names = names[:1]
    return {str(t): measure_isolated(names, batches, [size], warmup, repeats, threads=t, log=log)
            for t in threads}


#: The implementations whose training step ``--profile`` breaks down.
PROFILED = ("resnet_gluon hybridized", "resnet_gluon bf16")


def profile_step(batch: int, size: int, top: int = 12,
                 implementation: str = "resnet_gluon hybridized") -> str:
    """Time per operator of a few training steps of ``implementation`` (MXNet's profiler).

    Runs in a child process with MXNet's bulk execution off, so that each
    operator is timed on its own instead of as one fused segment.
    """
    env = dict(os.environ, MXNET_EXEC_BULK_EXEC_TRAIN="0", MXNET_EXEC_BULK_EXEC_INFERENCE="0")
    cmd = [sys.executable, os.path.abspath(__file__), "--profile-child",
           f"{batch},{size},{implementation}"]
    text = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True,
                          timeout=900).stdout
    rows = []
    for line in text.split("operator\n", 1)[-1].splitlines():
        m = re.match(r"^(\S+)\s+(\d+)\s+([\d.]+)\s", line)
        if m:
            rows.append((m.group(1), int(m.group(2)), float(m.group(3))))
    total = sum(r[2] for r in rows)
    rows.sort(key=lambda r: -r[2])
    lines = [f"{'operator':<34}{'calls':>7}{'ms':>10}{'share':>8}"]
    lines += [f"{n:<34}{c:>7}{t:>10.1f}{100 * t / total:>7.1f}%" for n, c, t in rows[:top]]
    rest = sum(r[2] for r in rows[top:])
    lines.append(f"{'(other operators)':<34}{'':>7}{rest:>10.1f}{100 * rest / total:>7.1f}%")
    return "\n".join(lines)


def _profile_child(batch: int, size: int, implementation: str) -> None:
    _, step = IMPLEMENTATIONS[implementation](batch, size)
    step()
    with tempfile.TemporaryDirectory() as tmp:
        mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                               filename=os.path.join(tmp, "profile.json"))
        mx.profiler.set_state("run")
        for _ in range(3):
            step()
        mx.profiler.set_state("stop")
        print(mx.profiler.dumps(reset=True, format="table", sort_by="total", ascending=False))


def plot(scaling: Dict[str, List[Dict]], epochs: List[Dict], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {("resnet_gluon hybridized", "infer_img_s"): "C0",
               ("resnet_gluon hybridized", "train_img_s"): "C1",
               (BASELINE, "infer_img_s"): "C2", (BASELINE, "train_img_s"): "C3"}
    for t, rows in sorted(scaling.items()):
        for (name, key), colour in colours.items():
            mine = [r for r in rows if r["implementation"] == name]
            if mine:
                what = "inference" if key == "infer_img_s" else "train step"
                left.plot([r["batch"] for r in mine], [r[key] for r in mine],
                          "o-" if t == "2" else "o--", color=colour, alpha=1 if t == "2" else 0.6,
                          label=f"{name.replace('resnet_gluon ', '')}, {what}, {t} thread(s)")
    left.set_xscale("log", base=2)
    left.set_xlabel("batch size")
    left.set_ylabel("images / s (96x96)")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    sizes = [r["size"] for r in epochs]
    right.plot(sizes, [r["full_epoch_s"] / 60 for r in epochs], "o-")
    for r in epochs:
        right.annotate(f"{r['full_epoch_s'] / 60:.1f}", (r["size"], r["full_epoch_s"] / 60),
                       textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    right.set_xlabel("input side (pixels)")
    right.set_ylabel("minutes per epoch (60k train + 10k test)")
    right.set_title(f"ResNet-18, batch {epochs[0]['batch']}" if epochs else "")
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _environment(torch, peaks: Dict[str, float], gflop: Dict[int, float]) -> Dict:
    return {"machine": platform.processor() or platform.machine(),
            "cpu_model": cpu_model(), "cpus": os.cpu_count(),
            "isa_flags": " ".join(sorted(f for f in ISA_FLAGS if f in cpu_flags())) or "-",
            "amx": ("on" if amx_status().enabled else "off") + f" ({amx_status().reason})",
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "mxnet": mx.__version__, "torch": getattr(torch, "__version__", None),
            "matmul_peak_gflops": peaks, "forward_gflop": gflop,
            "date": time.strftime("%Y-%m-%d %H:%M")}


def _targets(rows: List[Dict], epochs: List[Dict]) -> List[str]:
    """The issue's four targets, each as measured ratio against the bar."""
    out = []
    for (batch, size) in sorted({(r["batch"], r["size"]) for r in rows}):
        by = {r["implementation"]: r for r in rows if (r["batch"], r["size"]) == (batch, size)}
        base, ours = by.get(BASELINE), by.get("resnet_gluon hybridized")
        if not (base and ours):
            continue
        best = max((r for r in by.values() if r["implementation"].startswith("resnet_gluon")),
                   key=lambda r: r["infer_img_s"])
        bf16 = by.get(TORCH_BF16)
        parts = [f"train {ours['train_img_s'] / base['train_img_s']:.2f}x (>= 1.4)",
                 f"inference {ours['infer_img_s'] / base['infer_img_s']:.2f}x (>= 1.3)"]
        if bf16:
            parts.append(f"best inference ({best['implementation']}) "
                         f"{best['infer_img_s'] / bf16['infer_img_s']:.2f}x torch bf16 (>= 1)")
        out.append(f"batch {batch}, {size}x{size}: " + ", ".join(parts))
        out += _amx_targets(by, batch, size)
    for r in epochs:
        out.append(f"real epoch at {r['size']}x{r['size']}, batch {r['batch']}: "
                   f"{100 * r['epoch_vs_step']:.1f}% of the pure step (>= 90%)")
    return out


def _amx_targets(by: Dict[str, Dict], batch: int, size: int) -> List[str]:
    """Issue 15's ratios, where their rows were measured: bf16 and INT8 against torchvision
    bf16, and float32 with AMX on against off."""
    def ratio(a: str, b: str, key: str) -> Optional[float]:
        return by[a][key] / by[b][key] if a in by and b in by and by[b][key] else None

    parts = []
    for a, b, key, what, bar in (
            ("resnet_gluon bf16", TORCH_BF16, "train_img_s", "bf16 train step", "1.2"),
            ("resnet_gluon int8", TORCH_BF16, "infer_img_s", "INT8 inference", "2.5"),
            ("resnet_gluon bf16", TORCH_BF16, "infer_img_s", "bf16 inference", "1"),
            ("resnet_gluon hybridized", "resnet_gluon hybridized (AMX off)", "infer_img_s",
             "fp32 inference with AMX on / off", "1"),
            ("resnet_gluon hybridized", "resnet_gluon hybridized (AMX off)", "train_img_s",
             "fp32 train step with AMX on / off", "1")):
        value = ratio(a, b, key)
        if value is not None:
            versus = "" if "on / off" in what else " torch bf16"
            parts.append(f"{what} {value:.2f}x{versus} (>= {bar})")
    return [f"batch {batch}, {size}x{size}: " + ", ".join(parts)] if parts else []


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,32,128", help="batch sizes (1,32,128)")
    parser.add_argument("--sizes", default="96,224", help="input sides (96,224)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", help="comma-separated implementations (default: all)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every implementation N times, alternating; keep medians (1)")
    parser.add_argument("--no-isa", action="store_true",
                        help="skip the extra step per implementation that names its ISA")
    parser.add_argument("--quick", action="store_true",
                        help="batch 32 at 96x96, 1 warm-up, 3 repeats, no extras, no ISA: "
                             "a smoke run")
    parser.add_argument("--no-extras", action="store_true",
                        help="only the side-by-side table (no epochs, scaling, profile)")
    parser.add_argument("--profile", action="store_true",
                        help="with --no-extras: still profile the fp32 and bf16 training steps")
    parser.add_argument("--out", help="write throughput.json, throughput.md and scaling.png "
                                      "into this directory")
    # What the child processes are asked to do:
    parser.add_argument("--child-json", help=argparse.SUPPRESS)
    parser.add_argument("--epoch-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.profile_child:
        batch, size, implementation = args.profile_child.split(",", 2)
        _profile_child(int(batch), int(size), implementation)
        return 0
    if args.quick:
        args.batches, args.sizes, args.warmup, args.repeats = "32", "96", 1, 3
        args.no_extras = args.no_isa = True
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    torch, _ = _torch()
    names = args.only.split(",") if args.only else list(IMPLEMENTATIONS)
    unknown = [n for n in names if n not in IMPLEMENTATIONS]
    if unknown:
        parser.error(f"unknown implementations {unknown}; known: {list(IMPLEMENTATIONS)}")
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads is None:
        print("OMP_NUM_THREADS is not set; figures depend on it (run with OMP_NUM_THREADS=2)")
    if torch is None:
        print("torch is not installed: torchvision rows skipped "
              "(pip install torch==2.14.1 torchvision==0.29.1)")
        names = [n for n in names if not n.startswith("torchvision")]
    else:
        torch.set_num_threads(int(threads or os.cpu_count()))
    batches = [int(v) for v in args.batches.split(",")]
    sizes = [int(v) for v in args.sizes.split(",")]
    if args.child_json:
        out = (real_epochs([args.epoch_child], 128, 10, args.warmup, args.repeats)
               if args.epoch_child else measure(names, batches, sizes, args.warmup, args.repeats))
        with open(args.child_json, "w", encoding="utf-8") as f:
            json.dump(out, f)
        return 0

    # A smoke run measures the peak on a smaller matmul (seconds instead of ten or more).
    peaks = matmul_peak((1024,), 3) if args.quick else matmul_peak()
    peak = max(peaks.values())
    gflop = {s: forward_gflop(s) for s in sorted(set(sizes) | {28, 64, 96, 224})}
    env = _environment(torch, peaks, gflop)
    report = [f"{env['cpu_model']}, {env['cpus']} CPUs ({env['isa_flags']}), "
              f"OMP_NUM_THREADS={threads}, mxnet {env['mxnet']}, torch {env['torch']}; "
              f"AMX for MXNet: {env['amx']}",
              f"float32 matmul peak {peak:.0f} GFLOP/s ("
              + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()) + "); forward GFLOP per "
              "image: " + ", ".join(f"{s}x{s} {g:.3f}" for s, g in gflop.items())]
    print("\n".join(report), flush=True)
    rows = measure_isolated(names, batches, sizes, args.warmup, args.repeats,
                            rounds=args.rounds)
    if not args.no_isa:
        isas = isa_of(names, batches[0], sizes[0])
        for r in rows:
            r["isa"] = isas[r["implementation"]]
    report += ["", "## Side by side (images/s; x torch: ratio to torchvision fp32 eager; "
               "% peak: GFLOP/s over the matmul peak, a training step counted as 3 forwards)",
               "", table(rows, gflop, peak)]
    result = dict(env, warmup=args.warmup, repeats=args.repeats, rounds=args.rounds, rows=rows)
    if not args.no_extras:
        print("real epochs against the pure step:", flush=True)
        epochs = [row for size in (28, 64, 96, 224) for row in _child(
            ["--epoch-child", str(size), "--warmup", str(args.warmup),
             "--repeats", str(args.repeats)])]
        for r in epochs:
            print(f"  {r['size']}x{r['size']}: real epoch {r['epoch_train_img_s']:.1f} img/s, "
                  f"pure step {r['step_img_s']:.1f} img/s ({100 * r['epoch_vs_step']:.1f}%)",
                  flush=True)
        print("thread scaling:", flush=True)
        scaling = thread_scaling([1, 2], [1, 8, 32, 128], 96, args.warmup, args.repeats)
        result.update(epochs=epochs, thread_scaling=scaling)
        report += ["", "## A real epoch (fit on real data, batch 128) against the pure step",
                   "", "| input | real epoch img/s | pure step img/s | share | test pass img/s "
                   "| full epoch (60k + 10k images) |", "|---|---|---|---|---|---|"]
        report += [f"| {r['size']}x{r['size']} | {r['epoch_train_img_s']:.1f} | "
                   f"{r['step_img_s']:.1f} | {100 * r['epoch_vs_step']:.1f}% | "
                   f"{r['eval_img_s']:.1f} | {r['full_epoch_s'] / 60:.1f} min |" for r in epochs]
        report += ["", "## Threads and batch size (96x96, images/s: inference / train step)",
                   "", "| implementation | threads | " +
                   " | ".join(f"batch {b}" for b in [1, 8, 32, 128]) + " |",
                   "|---|---|" + "---|" * 4]
        for t, trows in sorted(scaling.items()):
            for name in ("resnet_gluon hybridized", BASELINE):
                mine = {r["batch"]: r for r in trows if r["implementation"] == name}
                if mine:
                    report.append(f"| {name} | {t} | " + " | ".join(
                        f"{mine[b]['infer_img_s']:.0f} / {mine[b]['train_img_s']:.0f}"
                        for b in sorted(mine)) + " |")
        targets = _targets(rows, epochs)
    else:
        epochs, scaling, targets = [], {}, _targets(rows, [])
    if not args.no_extras or args.profile:
        result["profile"] = {}
        for name in PROFILED:
            print(f"profiling {name}:", flush=True)
            profile = result["profile"][name] = profile_step(32, 96, implementation=name)
            report += ["", f"## Where a training step of {name} spends its time (batch 32, "
                       f"96x96, MXNet profiler, bulk execution off, 3 steps)", "", "```",
                       profile, "```"]
    report += ["", "## Targets", ""] + [f"- {t}" for t in targets]
    result["targets"] = targets
    text = "\n".join(report[2:])
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "throughput.json"), "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
        with open(os.path.join(args.out, "throughput.md"), "w", encoding="utf-8") as f:
            f.write("# Throughput\n\n" + "\n".join(report[:2]) + "\n\nCommand: "
                    "`OMP_NUM_THREADS=" + str(threads) + " python benchmarks/throughput.py "
                    + shlex.join(argv if argv is not None else sys.argv[1:]) + "`\n\n"
                    + text + "\n")
        if scaling and epochs:
            plot(scaling, epochs, os.path.join(args.out, "scaling.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
