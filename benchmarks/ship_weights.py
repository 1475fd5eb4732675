"""Store a run's weights as the package's shipped weights, and show the stored form changes nothing.

    OMP_NUM_THREADS=2 python benchmarks/ship_weights.py runs/fast/fast-seed0 --name fast-seed0

Writes resnet_gluon/weights/resnet18_fashion_mnist.{params,json} (float16 on disk, with the
SHA-256 and where the weights came from), then evaluates the run's own float32 model.params and
the shipped weights (as load_pretrained gives them) on the 10,000 test images: both accuracies,
their difference and the top-1 agreement.  The lines go to stdout and to
benchmarks/results/shipped-weights.txt.
"""
import argparse
import json
import os
import sys

from resnet_gluon.config import option_fields, recipe
from resnet_gluon.data import BatchIter, load_fashion_mnist
from resnet_gluon.evaluate import agreement, evaluate
from resnet_gluon.pretrained import load_pretrained, pack_pretrained
from resnet_gluon.run import METRICS_FILE, MODEL_FILE, read_config
from resnet_gluon.trained import load_trained

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def train_command(config: dict) -> str:
    """The ``train`` command that reproduces a run: its recipe, then each option whose value
    differs from the recipe's (config.json records every field)."""
    name = config.get("recipe", "book")
    base, words = recipe(name).to_dict(), ["python -m resnet_gluon train", f"--recipe {name}"]
    for field in option_fields():
        value = config.get(field.name, base[field.name])
        if value == base[field.name] and field.name != "seed":
            continue
        flag = field.metadata["flag"] or "--" + field.name.replace("_", "-")
        words.append(flag if value is True else f"{flag} {value}")
    return " ".join(words)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="the run whose model.params to ship")
    parser.add_argument("--name", required=True,
                        help="the run's name in benchmarks/results (e.g. fast-seed0)")
    args = parser.parse_args(argv)

    params = os.path.join(args.run_dir, MODEL_FILE)
    net, info = load_trained(params)
    net.hybridize(static_alloc=True)
    images, labels = load_fashion_mnist("test")
    data = BatchIter(images, labels, 250, resize=info.resize)
    run_result = evaluate(net, data)

    config = read_config(args.run_dir)
    with open(os.path.join(args.run_dir, METRICS_FILE)) as f:
        last = [json.loads(line) for line in f if line.strip()][-1]
    source = {"run": f"benchmarks/results/{args.name}",
              "command": train_command(config),
              "epochs": last["epoch"], "dtype": config["dtype"],
              "test_acc": round(run_result.accuracy, 4),
              "test_acc_note": "float32 inference of the run's model.params, no TTA",
              "stored_as": "float16 (float32 once loaded)"}
    stored, meta = pack_pretrained(params, info, source)
    shipped, shipped_info = load_pretrained()
    assert shipped_info == info, (shipped_info, info)
    shipped.hybridize(static_alloc=True)
    shipped_result = evaluate(shipped, data)
    stored = os.path.relpath(stored)
    agree = agreement(shipped_result.predictions, run_result.predictions)
    lines = [
        f"$ OMP_NUM_THREADS=2 python benchmarks/ship_weights.py {args.run_dir} --name {args.name}",
        f"stored {stored}: {os.path.getsize(stored) / 2**20:.1f} MiB (float16), "
        f"{os.path.basename(meta)} beside it",
        f"run's float32 weights:  test acc {run_result.accuracy:.4f}",
        f"shipped float16 weights: test acc {shipped_result.accuracy:.4f} "
        f"(difference {shipped_result.accuracy - run_result.accuracy:+.4f})",
        f"top-1 agreement on the {run_result.count} test images: {agree:.4f}",
    ]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(RESULTS, "shipped-weights.txt"), "w") as f:
        f.write(text)
    ok = abs(shipped_result.accuracy - run_result.accuracy) <= 0.001 and agree >= 0.999
    if not ok:
        print("the stored form changes the results: difference > 0.001 or agreement < 0.999",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
