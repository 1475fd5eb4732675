"""Your own images, on real data, offline (issue 25, item 6): three runs through the CLI.

parity   Fashion-MNIST's 60,000 training and 10,000 test images written as a folder of PNGs
         (the book's layout) and trained through ``--data``, against the IDX path with the
         same recipe (the fast one, 5 epochs: 64x64, bfloat16) and seed.  The two differ where
         they should: the folder's images are enlarged once by Pillow when decoded, the IDX
         path's per batch by BilinearResize2D, and the folder run normalises with the training
         set's mean and std.
digits   scikit-learn's handwritten digits (1,797 real 8x8 scans) as a folder: fine-tuned
         from the shipped weights (``--init pretrained``) against trained from scratch, same
         recipe, epochs and seed; both read on the same 360 held-out images (``--val-split``;
         nothing is chosen on them).
colour   48x48 crops of scikit-learn's two sample photographs (train and test from separate
         parts of each photo): trained in colour, exported to ONNX, and the test crops labelled
         by onnxruntime with only the file's metadata and Pillow, against MXNet's ``predict``.

Each command is printed before it runs; the figures go to ``--json``.  Run alone:
    OMP_NUM_THREADS=2 python benchmarks/own_images.py parity digits colour \\
        --work /tmp/own-images --json benchmarks/results/own-images.json
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run(*argv: str, quiet: bool = False) -> str:
    """``python -m resnet_gluon ARGV``, echoed; its stdout.  A training run whose run
    directory already holds its model is not run again (the script resumes where it
    stopped); its figures are read from the run directory."""
    shown = argv if len(argv) < 20 else [*argv[:8], f"... ({len(argv) - 8} more)"]
    print("$ python -m resnet_gluon " + " ".join(shown), flush=True)
    if argv[0] == "train":
        out = argv[argv.index("--out") + 1]
        if os.path.isfile(os.path.join(out, "model.params")):
            print(f"  (done before: {out} holds its model)", flush=True)
            return ""
    tic = time.time()
    result = subprocess.run([sys.executable, "-m", "resnet_gluon", *argv], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    print(f"  ({len(result.stdout.splitlines())} lines)\n" if quiet else result.stdout, end="",
          flush=True)
    if result.returncode:
        print(result.stderr, file=sys.stderr)
        raise SystemExit(f"failed ({result.returncode})")
    print(f"  ({time.time() - tic:.0f} s)", flush=True)
    return result.stdout


def curve(run_dir: str, key: str) -> list:
    """Each epoch's ``KEY_acc`` from the run's metrics.jsonl (to 4 decimals; the epoch lines
    round to 3)."""
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as f:
        return [round(json.loads(line)[f"{key}_acc"], 4) for line in f if line.strip()]


def last(run_dir: str, key: str) -> float:
    """The last epoch's ``KEY_acc``."""
    return curve(run_dir, key)[-1]


def parity(work: str, recipe: list) -> dict:
    from resnet_gluon.data import CLASS_NAMES, load_fashion_mnist

    root = os.path.join(work, "fashion-png")
    if not os.path.exists(root):
        for split in ("train", "test"):
            images, labels = load_fashion_mnist(split)
            for name in CLASS_NAMES:
                os.makedirs(os.path.join(root, split, name))
            for i, (image, label) in enumerate(zip(images, labels)):
                Image.fromarray(image).save(os.path.join(root, split, CLASS_NAMES[label],
                                                         f"{i}.png"))
    idx, folder = os.path.join(work, "parity-idx"), os.path.join(work, "parity-folder")
    run("train", "--out", idx, *recipe)
    run("train", "--data", root, "--out", folder, *recipe)
    a, b = last(idx, "test"), last(folder, "test")
    print(f"parity: IDX test acc {a:.4f}, folder test acc {b:.4f}, difference {b - a:+.4f}")
    return {"recipe": recipe, "idx_test_acc": a, "folder_test_acc": b, "difference": b - a}


def digits(work: str, recipe: list) -> dict:
    from sklearn.datasets import load_digits

    root = os.path.join(work, "digits")
    if not os.path.exists(root):
        scans = load_digits()
        for i, (image, label) in enumerate(zip(scans.images, scans.target)):
            os.makedirs(os.path.join(root, str(label)), exist_ok=True)
            # 0..16 ink levels -> light digits on dark, as Fashion-MNIST's objects are
            Image.fromarray((image * 255 / 16).round().astype(np.uint8)).save(
                os.path.join(root, str(label), f"{i}.png"))
    common = ["--data", root, "--val-split", "360", *recipe]
    scratch, tuned = os.path.join(work, "digits-scratch"), os.path.join(work, "digits-finetuned")
    run("train", "--out", scratch, *common)
    run("train", "--out", tuned, "--init", "pretrained", *common)
    a, b = last(scratch, "val"), last(tuned, "val")
    print(f"digits: held-out accuracy from scratch {a:.4f}, fine-tuned {b:.4f}")
    return {"recipe": common[2:], "scratch_val_acc": a, "finetuned_val_acc": b,
            "scratch_curve": curve(scratch, "val"), "finetuned_curve": curve(tuned, "val")}


def colour(work: str, recipe: list) -> dict:
    import onnx
    import onnxruntime
    from sklearn.datasets import load_sample_images

    root = os.path.join(work, "photos")
    if not os.path.exists(root):
        rng = np.random.default_rng(0)
        for name, photo in zip(("china", "flower"), load_sample_images().images):
            for split, count, cols in (("train", 200, (0, 380)), ("test", 50, (420, 592))):
                os.makedirs(os.path.join(root, split, name))
                for i in range(count):
                    y, x = rng.integers(0, 379), rng.integers(*cols)
                    Image.fromarray(photo[y:y + 48, x:x + 48]).save(
                        os.path.join(root, split, name, f"{i}.jpg"), quality=90)
    run_dir = os.path.join(work, "colour")
    run("train", "--data", root, "--out", run_dir, *recipe)
    prefix = os.path.join(work, "colour-onnx")
    run("export", "--params", os.path.join(run_dir, "model.params"), "--format", "onnx",
        "--out", prefix)
    files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(root, "test"))
                   for f in fs)
    out = run("predict", "--model", os.path.join(run_dir, "model.params"), "--json", "--topk",
              "1", *files, quiet=True)
    mxnet = [json.loads(line)["top"][0]["class"] for line in out.splitlines()]
    meta = {p.key: json.loads(p.value) for p in onnx.load(prefix + ".onnx").metadata_props}
    side, batch = meta["resize"], []
    for path in files:  # only Pillow, numpy and the metadata: a server without resnet_gluon
        im = Image.open(path).convert("RGB")
        scale = side / min(im.size)
        im = im.resize((max(side, round(im.size[0] * scale)),
                        max(side, round(im.size[1] * scale))), Image.BILINEAR)
        left, top = (im.size[0] - side) // 2, (im.size[1] - side) // 2
        x = np.asarray(im.crop((left, top, left + side, top + side)), np.float32) / 255
        batch.append(((x - meta["mean"]) / meta["std"]).transpose(2, 0, 1))
    session = onnxruntime.InferenceSession(prefix + ".onnx", providers=["CPUExecutionProvider"])
    logits = session.run(None, {"data": np.stack(batch).astype(np.float32)})[0]
    onnx_labels = [meta["classes"][i] for i in logits.argmax(1)]
    truth = [os.path.basename(os.path.dirname(f)) for f in files]
    same = sum(a == b for a, b in zip(onnx_labels, mxnet))
    print(f"colour: onnxruntime and MXNet give the same label for {same} of {len(files)} test "
          f"crops; test acc {last(run_dir, 'test'):.4f}")
    return {"recipe": recipe, "test_images": len(files), "same_labels": same,
            "test_acc": last(run_dir, "test"),
            "onnx_acc": float(np.mean([a == b for a, b in zip(onnx_labels, truth)]))}


PARTS = {
    "parity": (parity, ["--recipe", "fast", "--epochs", "5", "--seed", "0", "--no-progress"]),
    "digits": (digits, ["--resize", "64", "--batch-size", "64", "--lr", "0.05", "--momentum",
                        "0.9", "--lr-schedule", "cosine", "--epochs", "4", "--seed", "0",
                        "--no-progress"]),
    "colour": (colour, ["--resize", "48", "--batch-size", "32", "--lr", "0.05", "--momentum",
                        "0.9", "--augment", "--epochs", "3", "--seed", "0", "--no-progress"]),
}

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", choices=sorted(PARTS))
    parser.add_argument("--work", default="/tmp/own-images", help="folders and runs go here")
    parser.add_argument("--json", help="add the figures to this file")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    figures = {}
    if args.json and os.path.exists(args.json):
        with open(args.json, encoding="utf-8") as f:
            figures = json.load(f)
    for part in args.parts:
        func, recipe = PARTS[part]
        print(f"# {part}: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, {cpu_name()}, "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}", flush=True)
        figures[part] = dict(func(args.work, recipe), cpu=cpu_name(),
                             omp_num_threads=os.environ.get("OMP_NUM_THREADS"))
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(figures, f, indent=1)
