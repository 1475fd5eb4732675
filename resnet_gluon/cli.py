"""Command line: ``python -m resnet_gluon`` / ``resnet-gluon``.

A thin skin over the library's functions: it parses arguments, calls them
and prints what they return.  Nothing here is needed from a script.
"""
import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from . import __version__
from .model import RESNET_SPEC, build_resnet
from .shapes import count_parameters, format_shapes, layer_shapes

__all__ = ["main", "build_parser"]


def _input_shape(text: str) -> Tuple[int, int, int, int]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"expected four positive integers N,C,H,W such as 1,1,224,224, got {text!r}")
    return shape  # type: ignore[return-value]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _finite_float(text: str, allow_zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 <= value if allow_zero else 0 < value) or value == float("inf"):
        bound = ">= 0" if allow_zero else "> 0"
        raise argparse.ArgumentTypeError(f"expected a number {bound}, got {text!r}")
    return value


def _nonneg_float(text: str) -> float:
    return _finite_float(text, allow_zero=True)


def _positive_float(text: str) -> float:
    return _finite_float(text, allow_zero=False)


def _probability(text: str) -> float:
    value = _finite_float(text, allow_zero=True)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text!r}")
    return value


_PARAMS_HELP = "RUN_DIR/model.params, or a checkpoint's net.params"

# Options that make up TrainConfig: (flag, config field, argparse keywords).
_RECIPE = [
    ("--depth", "depth", dict(type=int, choices=sorted(RESNET_SPEC), help="ResNet depth (18)")),
    ("--small-input", "small_input", dict(action="store_true", default=None,
                                          help="3x3 stride-1 stem, no max-pool")),
    ("--lr", "lr", dict(type=_positive_float, help="peak learning rate (0.05)")),
    ("--batch-size", "batch_size", dict(type=_positive_int, help="batch size (256)")),
    ("--epochs", "epochs", dict(type=_positive_int, help="epochs (5)")),
    ("--resize", "resize", dict(type=_positive_int, help="input side; 28 = native (96)")),
    ("--momentum", "momentum", dict(type=_nonneg_float, help="SGD momentum (0)")),
    ("--wd", "wd", dict(type=_nonneg_float, help="weight decay (0)")),
    ("--lr-schedule", "lr_schedule", dict(choices=["constant", "cosine"],
                                          help="learning rate schedule (constant)")),
    ("--warmup-epochs", "warmup_epochs", dict(type=_nonneg_float,
                                              help="linear warm-up epochs (0)")),
    ("--label-smoothing", "label_smoothing", dict(type=_nonneg_float,
                                                  help="label smoothing (0)")),
    ("--augment", "augment", dict(action="store_true", default=None,
                                  help="random 2-pixel shifts and horizontal flips")),
    ("--random-erasing", "random_erasing",
     dict(type=_probability, metavar="P", help="erase a random rectangle of each training "
                                               "image with probability P (0)")),
    ("--seed", "seed", dict(type=int, help="seed of init, order and augmentation (0)")),
    ("--limit-train", "limit_train", dict(type=_positive_int,
                                          help="use the first N training examples")),
    ("--limit-test", "limit_test", dict(type=_positive_int,
                                        help="use the first N test examples")),
    ("--checkpoint-every", "checkpoint_every",
     dict(type=int, help="also checkpoint every N steps (0: at epoch ends only)")),
]


def _model_options(parser: argparse.ArgumentParser, classes: bool = True) -> None:
    # Overrides of the run's config.json, for weights found without it.
    parser.add_argument("--depth", type=int, choices=sorted(RESNET_SPEC), default=None)
    if classes:
        parser.add_argument("--classes", type=_positive_int, default=None)
    parser.add_argument("--small-input", action="store_true", default=None)
    parser.add_argument("--resize", type=_positive_int, default=None)


def _int8_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--int8", action="store_true",
                        help="quantize to INT8 first (oneDNN, calibrated on training images)")
    parser.add_argument("--calib-images", type=_positive_int, default=512, metavar="N",
                        help="training images for the INT8 calibration (512)")


def _quantized(net, info, args):
    from .quantize import calibration_images, quantize

    return quantize(net, calibration_images(args.calib_images, info.resize, args.data_dir))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="resnet-gluon",
        description="The ResNet of Dive into Deep Learning (d2l-zh 5.11) on MXNet Gluon.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    shapes = sub.add_parser(
        "shapes", help="print each layer's output shape, as notebook cell 8 does",
        description="Run a random batch through the net's top-level layers and print "
                    "each output shape as notebook cell 8 does, then the parameter count.")
    shapes.add_argument("--input", type=_input_shape, default=(1, 1, 224, 224),
                        metavar="N,C,H,W", help="input shape (default: 1,1,224,224)")
    shapes.add_argument("--depth", type=int, choices=sorted(RESNET_SPEC), default=18,
                        help="ResNet depth (default: 18)")
    shapes.add_argument("--classes", type=_positive_int, default=10,
                        help="number of classes (default: 10)")
    shapes.add_argument("--small-input", action="store_true",
                        help="3x3 stride-1 stem without max-pool, as d2lzh.resnet18")
    shapes.set_defaults(func=_cmd_shapes)

    train = sub.add_parser(
        "train", help="train on Fashion-MNIST (the book's recipe by default)",
        description="Train a ResNet on the real Fashion-MNIST. With no options: the book's "
                    "recipe (lr 0.05, plain SGD, batch 256, 5 epochs, resize 96, Xavier).")
    recipe = train.add_argument_group("recipe (saved in RUN_DIR/config.json; on --resume, "
                                      "taken from there unless given)")
    for flag, dest, kwargs in _RECIPE:
        recipe.add_argument(flag, dest=dest, **dict({"default": None}, **kwargs))
    train.add_argument("--data-dir", help="directory of the four Fashion-MNIST .gz files")
    train.add_argument("--out", metavar="RUN_DIR",
                       help="run directory (default: runs/resnetDEPTH-TIMESTAMP)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its newest valid checkpoint")
    train.add_argument("--ctx", default="cpu:0",
                       help="devices, comma-separated: cpu:0,cpu:1 or gpu:0,gpu:1 (cpu:0)")
    train.add_argument("--kvstore", default="device",
                       help="gradient aggregation: device, local, dist_sync (device)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--no-hybridize", action="store_true",
                       help="run imperatively (slower; for debugging)")
    train.set_defaults(func=_cmd_train)

    ev = sub.add_parser(
        "evaluate", help="test accuracy, per-class accuracy and the confusion matrix",
        description="Evaluate saved weights on the Fashion-MNIST test set. Depth, "
                    "small-input and resize come from config.json beside the params "
                    "when it is there, else from the options.")
    ev.add_argument("--params", required=True, help=_PARAMS_HELP)
    ev.add_argument("--data-dir", help="directory of the four Fashion-MNIST .gz files")
    _model_options(ev, classes=False)
    ev.add_argument("--batch-size", type=_positive_int, default=256)
    ev.add_argument("--limit-test", type=_positive_int, default=None)
    ev.add_argument("--ctx", default="cpu:0")
    ev.add_argument("--tta", action="store_true",
                    help="also average over each image's mirror image (test-time augmentation)")
    _int8_options(ev)
    ev.set_defaults(func=_cmd_evaluate)

    ex = sub.add_parser(
        "export", help="write the trained net as an MXNet symbol or ONNX model",
        description="Export RUN_DIR/model.params for serving without this library. Depth, "
                    "classes, small-input and resize come from config.json beside the "
                    "params when it is there, else from the options. ONNX export runs the "
                    "file in onnxruntime on real test images and reports the largest "
                    "difference from MXNet's output.")
    ex.add_argument("--params", required=True, help=_PARAMS_HELP)
    ex.add_argument("--format", choices=["symbol", "onnx"], default="symbol",
                    help="symbol: PREFIX-symbol.json + PREFIX-0000.params; onnx: PREFIX.onnx")
    ex.add_argument("--out", required=True, metavar="PREFIX", help="path prefix of the files")
    _model_options(ex)
    ex.add_argument("--check-images", type=int, default=256, metavar="N",
                    help="real test images the ONNX check runs (256; 0: no check)")
    ex.add_argument("--data-dir", help="directory of the four Fashion-MNIST .gz files")
    _int8_options(ex)
    ex.set_defaults(func=_cmd_export)

    pr = sub.add_parser(
        "predict", help="label image files with a trained net",
        description="Read PNG/JPEG/BMP files of any size (or the images in directories), "
                    "turn them into what training saw (gray, 28x28, the run's resize, "
                    "[0, 1]) and print the top classes of each, one line per image.")
    pr.add_argument("--model", required=True,
                    help="RUN_DIR/model.params, or the PREFIX of an exported symbol model")
    pr.add_argument("images", nargs="+", metavar="IMAGE", help="image files or directories")
    pr.add_argument("--topk", type=_positive_int, default=3, help="classes per image (3)")
    pr.add_argument("--json", action="store_true", help="one JSON object per line")
    pr.add_argument("--invert", action="store_true",
                    help="dark object on a light background (photos): invert the gray levels")
    _model_options(pr)
    pr.set_defaults(func=_cmd_predict)

    la = sub.add_parser(
        "launch", help="run a command on MXNet's parameter server over 127.0.0.1",
        description="Start a scheduler, SERVERS servers and WORKERS workers on this machine "
                    "(loopback only) and run 'python -m resnet_gluon COMMAND...' on each "
                    "worker, e.g.: launch -n 2 -s 1 -- train --kvstore dist_sync --epochs 1. "
                    "If a worker fails, all processes are stopped.")
    la.add_argument("-n", "--num-workers", type=_positive_int, required=True)
    la.add_argument("-s", "--num-servers", type=_positive_int, default=1)
    la.add_argument("--timeout", type=_positive_float, default=3600.0,
                    help="seconds before every process is stopped (3600)")
    la.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    la.set_defaults(func=_cmd_launch)
    return parser


def _cmd_launch(args: argparse.Namespace) -> int:
    from .launch import launch

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise ValueError("give the workers' command after --, e.g. "
                         "launch -n 2 -- train --kvstore dist_sync --epochs 1")
    if cmd[0] == "train" and not any(a.startswith("--kvstore") for a in cmd):
        cmd = cmd + ["--kvstore", "dist_sync"]
    return launch(cmd, args.num_workers, args.num_servers, timeout=args.timeout)


def _recipe_from_args(args: argparse.Namespace, base: Dict[str, Any]) -> Dict[str, Any]:
    values = dict(base)
    for _, dest, _ in _RECIPE:
        given = getattr(args, dest)
        if given is not None:
            values[dest] = given
    return values


def _cmd_train(args: argparse.Namespace) -> int:
    from .data import load_data_fashion_mnist
    from .train import CONFIG_FILE, TrainConfig, fit, parse_ctx

    base = TrainConfig().to_dict()
    if args.resume:
        if not args.out:
            raise ValueError("--resume needs --out RUN_DIR, the run to continue.")
        config_file = os.path.join(args.out, CONFIG_FILE)
        if not os.path.isfile(config_file):
            raise ValueError(f"--resume: {config_file} not found; is {args.out} a run "
                             f"directory? Start a new run without --resume.")
        with open(config_file, encoding="utf-8") as f:
            saved = json.load(f)
        base.update({k: v for k, v in saved.items() if k in base})
    config = TrainConfig.from_dict(_recipe_from_args(args, base))
    ctxs = parse_ctx(args.ctx)
    out = args.out or os.path.join(
        "runs", f"resnet{config.depth}-{time.strftime('%Y%m%d-%H%M%S')}")

    num_parts, part_index = 1, 0
    kvstore: Any = args.kvstore
    if args.kvstore.startswith("dist"):
        import mxnet as mx
        kvstore = mx.kv.create(args.kvstore)
        num_parts, part_index = kvstore.num_workers, kvstore.rank
        if config.batch_size % num_parts:
            raise ValueError(f"--batch-size {config.batch_size} does not split evenly over "
                             f"{num_parts} workers; use a multiple of {num_parts}.")
    train_iter, test_iter = load_data_fashion_mnist(
        config.batch_size // num_parts, resize=config.resize, root=args.data_dir,
        limit_train=config.limit_train, limit_test=config.limit_test,
        augment=config.augment, seed=config.seed, num_parts=num_parts, part_index=part_index,
        erase=config.random_erasing)
    net = build_resnet(config.depth, config.num_classes, small_input=config.small_input,
                       in_channels=1)
    if part_index == 0:
        print(f"training ResNet-{config.depth} on {', '.join(str(c) for c in ctxs)}"
              f"{f' ({num_parts} workers)' if num_parts > 1 else ''}; run directory {out}",
              flush=True)
    fit(net, train_iter, test_iter, config, ctx=ctxs, kvstore=kvstore, run_dir=out,
        resume=args.resume, progress=not args.no_progress, hybridize=not args.no_hybridize,
        log=lambda line: print(line if part_index == 0 else f"[worker {part_index}] {line}",
                               flush=True),
        extra_config={"ctx": args.ctx, "kvstore": args.kvstore, "data_dir": args.data_dir})
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .data import BatchIter, load_fashion_mnist
    from .export import load_trained
    from .quantize import agreement
    from .train import evaluate, parse_ctx

    ctxs = parse_ctx(args.ctx)
    if args.int8 and (len(ctxs) > 1 or ctxs[0].device_type != "cpu"):
        raise ValueError(f"--int8 runs on one CPU context (oneDNN), got --ctx {args.ctx}; "
                         f"drop --ctx.")
    net, info = load_trained(args.params, depth=args.depth, small_input=args.small_input,
                             resize=args.resize, ctx=ctxs)
    net.hybridize(static_alloc=True, static_shape=True)
    images, labels = load_fashion_mnist("test", args.data_dir)
    data = BatchIter(images[:args.limit_test], labels[:args.limit_test], args.batch_size,
                     resize=info.resize)
    result = evaluate(net, data, ctxs, info.num_classes, flip=args.tta)
    print(f"test acc {result.accuracy:.4f} ({result.count} images, "
          f"ResNet-{info.depth}, resize {info.resize}"
          f"{', with flip test-time augmentation' if args.tta else ''})")
    if args.int8:
        fp32 = result
        result = evaluate(_quantized(net, info, args), data, ctxs, info.num_classes,
                          flip=args.tta)
        agree = agreement(result.predictions, fp32.predictions)
        print(f"int8 test acc {result.accuracy:.4f}, top-1 agreement with fp32 {agree:.4f} "
              f"(calibrated on {args.calib_images} training images); the tables below are "
              f"the int8 model's")
    print("per-class accuracy:")
    width = max(len(n) for n in info.classes)
    for name, acc in zip(info.classes, result.per_class):
        print(f"  {name:<{width}}  {acc:.3f}")
    print("confusion matrix (rows: true class, columns: predicted):")
    short = [n[:7] for n in info.classes]
    print(" " * (width + 2) + " ".join(f"{s:>7}" for s in short))
    for name, row in zip(info.classes, result.confusion):
        print(f"  {name:<{width}}" + " ".join(f"{v:>7d}" for v in row))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_onnx, export_symbol, load_trained, onnx_max_abs_diff

    net, info = load_trained(args.params, depth=args.depth, num_classes=args.classes,
                             small_input=args.small_input, resize=args.resize)
    if args.int8:
        if args.format != "symbol":
            raise ValueError("--int8 exports as an MXNet symbol only (oneDNN operators have "
                             "no ONNX form); use --format symbol.")
        net = _quantized(net, info, args)
    if args.format == "symbol":
        for path in export_symbol(net, args.out, info):
            print(f"wrote {path}")
        return 0
    path = export_onnx(net, args.out, info)
    print(f"wrote {path} (input 'data': N x 1 x {info.resize} x {info.resize}, N dynamic)")
    if args.check_images <= 0:
        return 0
    from .data import load_fashion_mnist, resize_batch

    images, _ = load_fashion_mnist("test", args.data_dir)
    X = resize_batch(images[:args.check_images], info.resize)
    diff = onnx_max_abs_diff(path, net, X)
    ok = diff <= 1e-4
    print(f"onnxruntime vs MXNet on {X.shape[0]} Fashion-MNIST test images: max abs "
          f"difference {diff:.2e} ({'ok' if ok else 'FAILED'}: limit 1e-4)")
    return 0 if ok else 1


def _cmd_predict(args: argparse.Namespace) -> int:
    from .predict import image_files, load_model, predict_files

    files = image_files(args.images)
    if not files:
        raise ValueError(f"no images in {' '.join(args.images)} (looked for .png, .jpg, "
                         f".jpeg and .bmp files).")
    net, info = load_model(args.model, depth=args.depth, num_classes=args.classes,
                           small_input=args.small_input, resize=args.resize)
    predictions, errors = predict_files(net, info, files, args.topk, invert=args.invert)
    for p in predictions:
        if args.json:
            print(json.dumps({"file": p.file, "top": [{"class": c, "probability": round(v, 6)}
                                                      for c, v in p.top]}))
        else:
            print(f"{p.file}: " + ", ".join(f"{c} {v:.3f}" for c, v in p.top))
    for path, message in errors:
        if args.json:
            print(json.dumps({"file": path, "error": message}))
        print(f"resnet-gluon predict: error: {message}", file=sys.stderr)
    return 1 if errors else 0


def _cmd_shapes(args: argparse.Namespace) -> int:
    net = build_resnet(args.depth, args.classes, small_input=args.small_input)
    net.initialize()
    print(format_shapes(layer_shapes(net, args.input)))
    total, trainable = count_parameters(net)
    print(f"parameters: {total:,} ({trainable:,} trainable, "
          f"{total - trainable:,} BatchNorm running statistics)")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` by default); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError) as err:
        # The library's errors already say what to do; no trace for them.
        parser.exit(2, f"{parser.prog} {args.command}: error: {err}\n")
    except RuntimeError as err:  # TrainingDiverged, CheckpointError, uninitialised nets
        parser.exit(1, f"{parser.prog} {args.command}: error: {err}\n")
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
