"""Where one forward pass of the shipped net spends its time, by oneDNN primitive kind.

    OMP_NUM_THREADS=2 python benchmarks/dnnl_breakdown.py > benchmarks/results/vs-openvino/dnnl.md

Each case runs in a fresh process under ``DNNL_VERBOSE=1`` (oneDNN prints every primitive it
executes with its kernel and milliseconds); after 3 warm-up passes, one pass of batch 128 at
the net's input size is summed by primitive kind (convolution, batch normalisation, reorder,
...) and by kernel.  The cases: the layered float32 net, hybridized (``load_model()``), and
the bf16 graph of MXNet's AMP pass over it (``mixed_precision``, what training runs), against
the inference graphs (``for_inference``: BatchNorm folded, then oneDNN's fusions) in float32
and bf16.

With ``MODE=train``, one bf16 training step instead (a fresh ResNet-18, 1 channel, batch
128 at 96x96, SGD; forward, backward and update), as ``mixed_precision`` builds it, against
the same graph with its stem in bf16 too (what it builds on a CPU with AMX).  Where bf16
runs on AVX512-BF16 alone the first is what training runs; on an AMX Xeon, simulate that
with ``RESNET_GLUON_AMX=0``:

    RESNET_GLUON_AMX=0 MODE=train OMP_NUM_THREADS=2 python benchmarks/dnnl_breakdown.py
"""
import collections
import os
import subprocess
import sys

CASES = {
    "float32, layered net": "plain32",
    "float32, for_inference": "fast32",
    "bfloat16, mixed_precision (AMP over the layered net)": "plain16",
    "bfloat16, for_inference": "fast16",
}


def run_case(case: str, batch: int) -> None:
    import resnet_gluon  # noqa: F401
    import mxnet as mx

    from resnet_gluon.inference import for_inference
    from resnet_gluon.precision import mixed_precision
    from resnet_gluon.trained import load_model

    net, info = load_model()
    net = {"plain32": lambda: net, "fast32": lambda: for_inference(net),
           "plain16": lambda: mixed_precision(net), "fast16": lambda: for_inference(
               net, "bfloat16")}[case]()
    net.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.random.uniform(shape=(batch,) + tuple(info.input_shape[1:]))
    for _ in range(3):
        net(x).wait_to_read()
    mx.nd.waitall()
    print("=== measured pass", flush=True)
    net(x).wait_to_read()
    mx.nd.waitall()


TRAIN_CASES = {
    "bfloat16 training step, stem in bf16": "train16",
    "bfloat16 training step, `mixed_precision` (stem in float32 without AMX)": "train32stem",
}


def run_train_case(case: str, batch: int) -> None:
    # The very graphs and step benchmarks/throughput.py times.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from throughput import ours_bf16, ours_bf16_whole

    _, step = (ours_bf16_whole if case == "train16" else ours_bf16)(batch, 96)
    for _ in range(3):
        step()
    print("=== measured pass", flush=True)
    step()


def breakdown(case: str, batch: int):
    env = dict(os.environ, DNNL_VERBOSE="1")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--case", case,
                          str(batch)], capture_output=True, text=True, env=env,
                         timeout=600, check=True).stdout
    lines = out.split("=== measured pass", 1)[1].splitlines()
    kinds, kernels, counts = collections.Counter(), collections.Counter(), collections.Counter()
    for line in lines:
        parts = line.split(",")
        if not line.startswith("dnnl_verbose,exec") or len(parts) < 5:
            continue
        kind, kernel, ms = parts[3], parts[4], float(parts[-1])
        kinds[kind] += ms
        kernels[f"{kind} {kernel}"] += ms
        counts[kind] += 1
    return kinds, kernels, counts


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--case":
        run = run_train_case if sys.argv[2].startswith("train") else run_case
        return run(sys.argv[2], int(sys.argv[3]))
    batch = int(os.environ.get("BATCH", "128"))
    train = os.environ.get("MODE") == "train"
    what = "One bf16 training step" if train else "One forward pass"
    amx = os.environ.get("RESNET_GLUON_AMX", "on (where granted)")
    print(f"{what}, batch {batch}, `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')}`, "
          f"RESNET_GLUON_AMX={amx}, oneDNN's own milliseconds:\n")
    print("| case | total ms | by primitive kind: ms (primitives) |\n|---|---|---|")
    details = []
    for name, case in (TRAIN_CASES if train else CASES).items():
        kinds, kernels, counts = breakdown(case, batch)
        parts = ", ".join(f"{k} {v:.1f} ({counts[k]})" for k, v in kinds.most_common())
        print(f"| {name} | {sum(kinds.values()):.1f} | {parts} |")
        details.append((name, kernels))
    for name, kernels in details:
        print(f"\n{name}: " + "; ".join(f"{k} {v:.1f}" for k, v in kernels.most_common(6)))


if __name__ == "__main__":
    main()
