"""The shipped net's inference, ours against OpenVINO on our own ONNX file, on this CPU.

    OMP_NUM_THREADS=2 python benchmarks/vs_openvino.py --ov-python .venv-ov/bin/python \\
        --out benchmarks/results/vs-openvino

Ours runs through the loaders the commands use: float32 ``for_inference(load_model()[0])``
(as ``evaluate`` and ``predict``), bf16 ``load_model(dtype='bfloat16')``, INT8 ``quantize``
on 512 training images (as ``evaluate --int8``).  OpenVINO reads the ONNX file that
``export --format onnx`` writes: float32 (``INFERENCE_PRECISION_HINT`` f32), its bf16 hint,
and INT8 from NNCF's post-training quantization on 300 training images; onnxruntime's CPU
provider runs the same ONNX file at float32.  OpenVINO and NNCF
are never the library's dependencies: give them their own venv
(``python -m venv .venv-ov && .venv-ov/bin/pip install openvino nncf``) and pass its python.

Every figure is one fresh process timing ``--iters`` batches after 3 warm-ups; the cases
alternate within each of ``--rounds`` rounds, and the table gives each case's median
(images/s) and ours / OpenVINO.  Both sides get the same threads (``OMP_NUM_THREADS``; for
OpenVINO ``INFERENCE_NUM_THREADS`` and one stream) and the same random input of the net's
shape.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PRECISIONS = ("float32", "bfloat16", "int8")


def _threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS", "2"))


def _time(run, batch: int, iters: int) -> float:
    for _ in range(3):
        run()
    tic = time.perf_counter()
    for _ in range(iters):
        run()
    return iters * batch / (time.perf_counter() - tic)


def ours(precision: str, batch: int, iters: int) -> float:
    """img/s of our net at ``precision``, prepared as the commands prepare it."""
    import resnet_gluon  # noqa: F401  first: numpy's alias for MXNet
    import mxnet as mx

    from resnet_gluon.inference import for_inference
    from resnet_gluon.quantize import quantize
    from resnet_gluon.sources import FashionMNIST
    from resnet_gluon.trained import load_model

    net, info = load_model()
    if precision == "float32":
        net = for_inference(net)
    elif precision == "bfloat16":
        net, _ = load_model(dtype="bfloat16")
    else:
        net = quantize(net, FashionMNIST().calibration_images(info, 512))
    x = mx.nd.random.uniform(shape=(batch,) + tuple(info.input_shape[1:]))
    return _time(lambda: net(x).wait_to_read(), batch, iters)


def openvino(precision: str, batch: int, iters: int, model: str) -> float:
    """img/s of OpenVINO on ``model`` (the ONNX file, or NNCF's INT8 IR) at ``precision``."""
    import numpy as np
    import openvino as ov

    core = ov.Core()
    read = core.read_model(model)
    shape = [batch] + [d.get_length() for d in read.inputs[0].get_partial_shape()[1:]]
    read.reshape({read.inputs[0]: shape})
    config = {"INFERENCE_NUM_THREADS": _threads(), "NUM_STREAMS": 1,
              "INFERENCE_PRECISION_HINT": "bf16" if precision == "bfloat16" else "f32"}
    compiled = core.compile_model(read, "CPU", config)
    request = compiled.create_infer_request()
    x = np.random.RandomState(0).uniform(size=shape).astype(np.float32)
    return _time(lambda: request.infer({0: x}), batch, iters)


def onnxruntime(batch: int, iters: int, model: str) -> float:
    """img/s of onnxruntime's CPU provider on the ONNX file (float32)."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = _threads()
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    shape = [batch] + list(session.get_inputs()[0].shape[1:])
    x = np.random.RandomState(0).uniform(size=shape).astype(np.float32)
    return _time(lambda: session.run(None, {name: x}), batch, iters)


def nncf_int8(onnx_file: str, calib_file: str, out: str) -> None:
    """NNCF's INT8 model of the ONNX file, calibrated on the images in ``calib_file``."""
    import nncf
    import numpy as np
    import openvino as ov

    images = np.load(calib_file)
    model = ov.Core().read_model(onnx_file)
    data = nncf.Dataset([images[i:i + 1] for i in range(len(images))])
    ov.save_model(nncf.quantize(model, data, subset_size=len(images)), out)


def _child(argv, python=sys.executable) -> float:
    result = subprocess.run([python, os.path.abspath(__file__), *argv], capture_output=True,
                            text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def _cpu() -> str:
    name = platform.processor() or "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    from resnet_gluon.cpu import cpu_flags

    flags = [f for f in ("avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")
             if f in cpu_flags()]
    return f"{name} ({' '.join(flags) or 'no AVX512-BF16, VNNI or AMX'})"


def prepare(out: str, ov_python: str) -> dict:
    """The ONNX file (by the export command), calibration images, NNCF's INT8 model, in
    ``out`` (reused when there)."""
    import numpy as np

    from resnet_gluon.sources import FashionMNIST
    from resnet_gluon.trained import load_model

    os.makedirs(out, exist_ok=True)
    onnx_prefix = os.path.join(out, "model")
    if not os.path.exists(onnx_prefix + ".onnx"):
        subprocess.run([sys.executable, "-m", "resnet_gluon", "export", "--format", "onnx",
                        "--out", onnx_prefix], check=True)
    _, info = load_model()
    calib = os.path.join(out, "calib300.npy")
    np.save(calib, FashionMNIST().calibration_images(info, 300).asnumpy())
    int8 = os.path.join(out, "model-int8.xml")
    if not os.path.exists(int8):
        subprocess.run([ov_python, os.path.abspath(__file__), "--nncf", onnx_prefix + ".onnx",
                        calib, int8], check=True)
    return {"onnx": onnx_prefix + ".onnx", "int8": int8}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ov-python", default=sys.executable,
                        help="the python of a venv with openvino and nncf")
    parser.add_argument("--batches", default="128,1")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--out", default="benchmarks/results/vs-openvino",
                        help="where results.md and results.json go")
    parser.add_argument("--work", default="runs/vs-openvino",
                        help="where the ONNX file, NNCF's INT8 model and the calibration "
                             "images go (not results)")
    parser.add_argument("--only", default="", help="comma-separated precisions (all)")
    parser.add_argument("--child", nargs=3, metavar=("SIDE", "PRECISION", "BATCH"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--nncf", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.nncf:
        return nncf_int8(*args.nncf)
    if args.child:
        side, precision, batch = args.child
        rate = (ours(precision, int(batch), args.iters) if side == "ours" else
                onnxruntime(int(batch), args.iters, args.model) if side == "onnxruntime" else
                openvino(precision, int(batch), args.iters, args.model))
        return print(rate)
    os.makedirs(args.out, exist_ok=True)
    files = prepare(args.work, args.ov_python)
    precisions = [p for p in PRECISIONS if not args.only or p in args.only.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    rates = {}
    for r in range(args.rounds):
        for batch in batches:
            iters = args.iters if batch > 1 else args.iters * 10
            for precision in precisions:
                # onnxruntime (a test dependency of ours) at float32, beside
                sides = ("ours", "openvino") + (("onnxruntime",) if precision == "float32"
                                                else ())
                for side in sides:
                    argv = ["--child", side, precision, str(batch), "--iters", str(iters)]
                    if side != "ours":
                        argv += ["--model", files["int8" if precision == "int8" else "onnx"]]
                    rate = _child(argv, args.ov_python if side == "openvino" else sys.executable)
                    rates.setdefault(f"{side} {precision} {batch}", []).append(rate)
                    print(f"round {r + 1}: {side} {precision} batch {batch}: {rate:.0f} img/s",
                          flush=True)
    _report(args, rates, precisions, batches)


def _report(args, rates, precisions, batches) -> None:
    """The table (markdown, printed and written to OUT/results.md) and every figure (JSON)."""
    import mxnet

    ov_version = subprocess.run([args.ov_python, "-c", "import openvino, nncf; print("
                                 "openvino.__version__.split('-')[0], nncf.__version__)"],
                                capture_output=True, text=True).stdout.split()
    head = [f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {_cpu()}; "
            f"OMP_NUM_THREADS={_threads()}; mxnet {mxnet.__version__}, openvino "
            f"{ov_version[0] if ov_version else '?'}, nncf {ov_version[1] if ov_version else '?'}",
            f"$ OMP_NUM_THREADS={_threads()} python benchmarks/vs_openvino.py "
            + " ".join(a for a in sys.argv[1:]),
            "", f"medians of {args.rounds} alternating rounds, images/s (the range in brackets)",
            "", "| precision | batch | ours | OpenVINO | ours / OpenVINO |", "|---|---|---|---|---|"]
    table = {}
    for batch in batches:
        for precision in precisions:
            a, b = rates[f"ours {precision} {batch}"], rates[f"openvino {precision} {batch}"]
            ma, mb = statistics.median(a), statistics.median(b)
            table[f"{precision} {batch}"] = {"ours": a, "openvino": b, "ratio": ma / mb}
            head.append(f"| {precision} | {batch} | {ma:.0f} ({min(a):.0f}-{max(a):.0f}) | "
                        f"{mb:.0f} ({min(b):.0f}-{max(b):.0f}) | **{ma / mb:.2f}x** |")
    for batch in batches:
        if f"onnxruntime float32 {batch}" in rates:
            c = rates[f"onnxruntime float32 {batch}"]
            ma, mc = statistics.median(rates[f"ours float32 {batch}"]), statistics.median(c)
            table[f"onnxruntime float32 {batch}"] = {"onnxruntime": c, "ratio": ma / mc}
            head.append(f"\nonnxruntime, float32, batch {batch}: {mc:.0f} ({min(c):.0f}-"
                        f"{max(c):.0f}); ours / onnxruntime **{ma / mc:.2f}x**")
    text = "\n".join(head) + "\n"
    print(text)
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"cpu": _cpu(), "threads": _threads(), "argv": sys.argv[1:],
                   "rates": table}, f, indent=1)


if __name__ == "__main__":
    main()
