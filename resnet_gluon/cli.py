"""Command line: ``python -m resnet_gluon`` / ``resnet-gluon``.

A skin over the library: each command parses its options, calls the functions a script
calls (:func:`resnet_gluon.sources.open_source` and ``fit``, ``load_model`` and
:func:`resnet_gluon.sources.open_for_model`, ``evaluate``, ``export_*``, ``predict_files``)
and prints what they return.  Which data a command reads is decided in
:mod:`resnet_gluon.sources`, never here.
"""
import argparse
import inspect
import json
import os
import sys
import time
import traceback
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import __version__
from ._checks import (ANY_INT, NONNEGATIVE_INT, POSITIVE_INT, POSITIVE_NUMBER, Rule,
                      error_exit)
from .config import (ARCHITECTURE, KVSTORES, RECIPES, TrainConfig, option_fields, parse_ctx,
                     recipe)
from .inputs import DataRef
from .model import ResNetSpec
from .shapes import check_input_size, count_parameters, format_shapes, layer_shapes

__all__ = ["main", "build_parser"]

_PARAMS_HELP = ("RUN_DIR/model.params, a checkpoint's net.params, or the PREFIX of an "
                "exported symbol model")
_DATA_HELP = "directory of the four Fashion-MNIST .gz files"
#: What ``train`` offers of TrainConfig: all but the class count, which the data decides.
_RECIPE = [f.name for f in option_fields() if f.name != "num_classes"]
#: What the commands that load weights say of an architecture option left out.
_FROM_WEIGHTS = " (default: the weights' own, from their config.json or info file)"


def _input_shape(text: str) -> Tuple[int, int, int, int]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"expected four positive integers N,C,H,W such as 1,1,224,224, got {text!r}")
    return shape  # type: ignore[return-value]


def _typed(rule: Rule):
    """An argparse ``type`` from a rule: its words become argparse's error."""
    def convert(text: str):
        try:
            return rule.parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return convert


def _add_config_options(parser, names: Optional[Sequence[str]] = None,
                        defaults: bool = False, shown: Optional[str] = None) -> None:
    """Add :class:`TrainConfig` fields as options, all of them or ``names``.

    With ``defaults`` an option left out takes the field's default; without, it is None,
    so the caller can tell "not given" (a run's saved value) from "given".  ``shown`` is
    what the help says of the default instead of the field's.
    """
    for f in option_fields(names):
        meta = f.metadata
        default = "" if f.default is None or isinstance(f.default, bool) else f" ({f.default})"
        kwargs: Dict[str, Any] = dict(dest=f.name, default=f.default if defaults else None,
                                      help=meta["help"] + (default if shown is None else shown))
        if isinstance(f.default, bool):
            # --no-X too where a recipe or a saved run may have turned X on.
            kwargs["action"] = "store_true" if defaults else argparse.BooleanOptionalAction
        elif meta["choices"]:
            kwargs.update(choices=list(meta["choices"]), type=type(meta["choices"][0]))
        else:
            kwargs.update(type=_typed(meta["rule"]), metavar=meta["metavar"])
        parser.add_argument(meta["flag"] or "--" + f.name.replace("_", "-"), **kwargs)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _load(args: argparse.Namespace, option: str, ctx=None, dtype: str = "float32"):
    """``(net, info)`` of the weights ``option`` names (``--params``, ``--model``), or of the
    weights shipped in the package without it (then no architecture option may be given)."""
    from .trained import load_model, pretrained_info

    source = getattr(args, option[2:])
    overrides = {name: getattr(args, name, None) for name in ARCHITECTURE}
    if source is None:
        given = [k for k, v in overrides.items() if v is not None]
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')} describes the net of {option}; "
                             f"without {option} the shipped weights are used, whose net is "
                             f"fixed. Give {option} RUN_DIR/model.params for a run of your own.")
        run = pretrained_info()["source"].get("run", "a trained run")
        print(f"using the weights shipped in the package ({run})", file=sys.stderr, flush=True)
    return load_model(source, ctx=ctx, log=_warn, dtype=dtype, **overrides)


def _data(args: argparse.Namespace) -> Optional[str]:
    """The data named by ``--data`` or ``--data-dir`` (Fashion-MNIST's directory), not both."""
    if args.data and args.data_dir:
        raise ValueError(f"--data {args.data} and --data-dir {args.data_dir} name two data "
                         f"sets; give one (--data-dir is Fashion-MNIST's).")
    return args.data or args.data_dir


def _command(sub, name: str, func, help: str, more: str = "") -> argparse.ArgumentParser:
    """The parser of subcommand ``name``, which runs ``func(args)``; ``func``'s
    docstring (and ``more``) is the command's ``--help`` description."""
    parser = sub.add_parser(name, help=help,
                            description=" ".join(inspect.cleandoc(func.__doc__).split()) + more)
    parser.set_defaults(func=func)
    return parser


def _weights_command(sub, name: str, func, help: str) -> argparse.ArgumentParser:
    """A subcommand that loads trained weights: --params, the data, INT8, and the
    architecture options, which override what the weights' own files say."""
    parser = _command(sub, name, func, help, " Depth, classes, small-input and resize are "
                      "the weights' own (config.json beside the params, or the export's "
                      "info file); an option given overrides that.")
    parser.add_argument("--params", help=_PARAMS_HELP + " (default: the trained weights "
                                               "shipped in the package)")
    parser.add_argument("--data-dir", help=_DATA_HELP)
    parser.add_argument("--data", metavar="PATH",
                        help="the data to read: an image folder (its test/ or valid/), a .rec, "
                             "or Fashion-MNIST's directory (default: what the run recorded)")
    _add_config_options(parser, ARCHITECTURE, shown=_FROM_WEIGHTS)
    _add_config_options(parser, ("dtype",), defaults=True)
    parser.add_argument("--int8", action="store_true",
                        help="quantize to INT8 first (oneDNN, calibrated on training images)")
    parser.add_argument("--calib-images", type=_typed(POSITIVE_INT), default=512, metavar="N",
                        help="training images for the INT8 calibration (512)")
    return parser


def _check_lower_precision(args: argparse.Namespace) -> None:
    if args.int8 and args.dtype != "float32":
        raise ValueError(f"--int8 and --dtype {args.dtype} are two lower precisions; "
                         f"pick one (INT8 is quantized from the float32 weights).")


def _quantized(net, info, args):
    """The INT8 net, calibrated on the training images of the net's data."""
    from .quantize import quantize
    from .sources import open_for_model

    source = open_for_model(info, args.params, _data(args), test=False)
    return quantize(net, source.calibration_images(info, args.calib_images))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="resnet-gluon",
        description="The ResNet of Dive into Deep Learning (d2l-zh 5.11) on MXNet Gluon.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in (_add_shapes, _add_train, _add_evaluate, _add_export, _add_predict, _add_pack,
                _add_launch, _add_info):
        add(sub)
    return parser


# --------------------------------------------------------------------------- shapes

def _add_shapes(sub) -> None:
    p = _command(sub, "shapes", _cmd_shapes,
                 help="print each layer's output shape, as notebook cell 8 does")
    p.add_argument("--input", type=_input_shape, default=(1, 1, 224, 224),
                   metavar="N,C,H,W", help="input shape (default: 1,1,224,224)")
    _add_config_options(p, ("depth", "num_classes", "small_input"), defaults=True)


def _cmd_shapes(args: argparse.Namespace) -> int:
    """Run a random batch through the net's top-level layers and print each output shape as
    notebook cell 8 does, then the parameter count.
    """
    check_input_size(args.input, args.small_input)
    # Channels inferred at the first forward, as the book does (a channels-last shape is
    # caught there).
    net = ResNetSpec(args.depth, args.num_classes, args.small_input, in_channels=0).build()
    net.initialize()
    print(format_shapes(layer_shapes(net, args.input)))
    total, trainable = count_parameters(net)
    print(f"parameters: {total:,} ({trainable:,} trainable, "
          f"{total - trainable:,} BatchNorm running statistics)")
    return 0


# --------------------------------------------------------------------------- train

def _add_train(sub) -> None:
    p = _command(sub, "train", _cmd_train,
                 help="train on Fashion-MNIST or your own images (the book's recipe by default)")
    group = p.add_argument_group(
        "recipe (the options given, over --recipe's values, over the book's shown here; "
        "all saved in RUN_DIR/config.json; on --resume, taken from there unless given)")
    group.add_argument("--recipe", choices=sorted(RECIPES),
                       help="named recipe: book (the defaults) or fast (bfloat16, 64x64, "
                            "SGD with momentum, cosine, label smoothing, shifts and flips, "
                            "weight average, 16 epochs; see docs/training.md) (book)")
    _add_config_options(group, _RECIPE)
    p.add_argument("--data-dir", help=_DATA_HELP + " (on --resume, the run's)")
    own = p.add_argument_group("your own images (instead of Fashion-MNIST)")
    own.add_argument("--data", metavar="PATH",
                     help="an image folder (CLASS/IMAGE, or train/ and test/ or valid/ of "
                          "them, the book's layout) or a RecordIO file written by 'pack' "
                          "(X.rec); classes, channels and normalisation come from it")
    own.add_argument("--test-data", metavar="PATH",
                     help="the test folder or .rec (default: the layout's test/ or valid/; "
                          "without one, hold images out with --val-split)")
    own.add_argument("--channels", type=int, choices=(1, 3),
                     help="1: gray, 3: colour (default: 3 if any image is colour)")
    own.add_argument("--skip-bad-images", action="store_true", default=None,
                     help="skip unreadable images, naming each, instead of stopping")
    p.add_argument("--out", metavar="RUN_DIR",
                   help="run directory (default: runs/resnetDEPTH-TIMESTAMP)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its newest valid checkpoint")
    p.add_argument("--ctx", help="devices, comma-separated: cpu:0,cpu:1 or gpu:0,gpu:1 "
                                 "(cpu:0; on --resume, the run's)")
    p.add_argument("--kvstore", choices=KVSTORES,
                   help="gradient aggregation (device; dist_* through 'launch')")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-hybridize", action="store_true",
                   help="run imperatively (slower; for debugging)")


def _train_settings(args: argparse.Namespace) -> Tuple[TrainConfig, Dict[str, Any]]:
    """The recipe, and the run's data and devices: the options given, over the run's saved
    ones (on --resume) or the named recipe's, over the defaults."""
    from .run import RunRecord

    if args.resume and not args.out:
        raise ValueError("--resume needs --out RUN_DIR, the run to continue.")
    run = RunRecord.read(args.out) if args.resume else None  # its data is checked by fit
    values = run.config.to_dict() if run else recipe(args.recipe or "book").to_dict()
    settings = dict(run.data.to_dict(), ctx=run.ctx, kvstore=run.kvstore) if run else dict(
        DataRef().to_dict(), ctx="cpu:0", kvstore="device")
    given = dict(recipe=args.recipe, ctx=args.ctx, kvstore=args.kvstore, data=_data(args),
                 test_data=args.test_data, channels=args.channels,
                 skip_bad_images=args.skip_bad_images)
    for key in ("recipe", "ctx", "kvstore"):
        saved = values["recipe"] if key == "recipe" else settings[key]
        if run and given[key] is not None and given[key] != saved:
            raise ValueError(f"the run in {args.out} was trained with --{key} {saved}; resuming "
                             f"with --{key} {given[key]} would not reproduce it. Leave --{key} "
                             f"out.")
    settings.update({k: v for k, v in given.items() if v is not None and k != "recipe"})
    values.update({k: getattr(args, k) for k in _RECIPE if getattr(args, k) is not None})
    return TrainConfig.from_dict(values), settings


def _cmd_train(args: argparse.Namespace) -> int:
    """Train a ResNet on the real Fashion-MNIST, or on your own images (--data). With no
    options: the book's recipe (lr 0.05, plain SGD, batch 256, 5 epochs, resize 96, Xavier).
    """
    from .sources import open_source
    from .train import fit, make_kvstore

    config, settings = _train_settings(args)
    source = open_source(settings["data"], settings["test_data"], settings["channels"],
                         bool(settings["skip_bad_images"]))
    config = source.configure(config)
    args.out = args.out or os.path.join(  # named for the --resume hint if interrupted
        "runs", f"resnet{config.model.depth}-{time.strftime('%Y%m%d-%H%M%S')}")
    kvstore, rank, workers = make_kvstore(settings["kvstore"])
    if rank == 0:
        print(f"training ResNet-{config.model.depth}"
              f"{f' in {config.dtype}' if config.dtype != 'float32' else ''} on "
              f"{', '.join(str(c) for c in parse_ctx(settings['ctx']))}"
              f"{f' ({workers} workers)' if workers > 1 else ''}; run directory {args.out}",
              flush=True)
    fit(source.build_net(config), source, config, ctx=settings["ctx"], kvstore=kvstore,
        run_dir=args.out, resume=args.resume, progress=not args.no_progress,
        hybridize=not args.no_hybridize, log=lambda line: print(line, flush=True))
    return 0


# --------------------------------------------------------------------------- evaluate

def _add_evaluate(sub) -> None:
    p = _weights_command(sub, "evaluate", _cmd_evaluate,
                         help="test accuracy, per-class accuracy and the confusion matrix")
    _add_config_options(p, ("batch_size", "limit_test"), defaults=True)
    p.add_argument("--ctx", default="cpu:0")
    p.add_argument("--tta", action="store_true",
                   help="also average over each image's mirror image (test-time augmentation)")
    p.add_argument("--tta-shift", type=_typed(NONNEGATIVE_INT), default=0, metavar="PIXELS",
                   help="also average over each view moved by PIXELS input pixels left, "
                        "right, up and down (test-time augmentation; 0)")
    p.add_argument("--val-split", type=_typed(NONNEGATIVE_INT), default=0, metavar="N",
                   help="evaluate the N training images a run with --val-split N --seed "
                        "SEED held out, instead of the test set (to choose on; 0)")
    p.add_argument("--seed", type=_typed(ANY_INT), default=0,
                   help="the seed of that run (0)")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate trained weights on the test images of their data (the run's own folder or
    .rec, or Fashion-MNIST), or on the images a run held out (--val-split).
    """
    from .evaluate import compare, evaluate, format_report
    from .precision import mixed_precision
    from .sources import open_for_model

    ctxs = parse_ctx(args.ctx)
    _check_lower_precision(args)
    if args.int8 and (len(ctxs) > 1 or ctxs[0].device_type != "cpu"):
        raise ValueError(f"--int8 runs on one CPU context (oneDNN), got --ctx {args.ctx}; "
                         f"drop --ctx.")
    net, info = _load(args, "--params", ctx=ctxs)
    net.hybridize(static_alloc=True, static_shape=True)
    source = open_for_model(info, args.params, _data(args), args.val_split, args.seed)
    data = source.eval_batches(info, args.batch_size, args.val_split, args.seed,
                               args.limit_test)
    tta = dict(flip=args.tta, shift=args.tta_shift)
    classes, name = info.model.num_classes, "int8" if args.int8 else args.dtype
    if args.int8 or args.dtype != "float32":  # its own accuracy, and its agreement
        if args.int8:
            lower = _quantized(net, info, args)
        else:
            lower = mixed_precision(net, args.dtype)
            lower.hybridize(static_alloc=True)
        comparison = compare(net, lower, data.batches, ctxs, classes, **tta)
        result = comparison.reference
    else:
        comparison, result = None, evaluate(net, data.batches, ctxs, classes, **tta)
    views = " and ".join(w for w, on in (("flip", args.tta),
                                         (f"{args.tta_shift}-pixel shift", args.tta_shift)) if on)
    which = "val" if args.val_split else "test"
    print(f"{which} acc {result.accuracy:.4f} ({result.count} {data.what}, "
          f"ResNet-{info.model.depth}, resize {info.resize}"
          f"{f', with {views} test-time augmentation' if views else ''})")
    if comparison is not None:
        result = comparison.lower
        print(f"{name} {which} acc {result.accuracy:.4f}, top-1 agreement with fp32 "
              f"{comparison.agreement:.4f}"
              + (f" (calibrated on {args.calib_images} training images)" if args.int8 else "")
              + f"; the tables below are the {name} model's")
    print(format_report(result, info.classes))
    return 0


# --------------------------------------------------------------------------- export

def _add_export(sub) -> None:
    p = _weights_command(sub, "export", _cmd_export,
                         help="write the trained net as an MXNet symbol or ONNX model")
    p.add_argument("--format", choices=["symbol", "onnx"], default="symbol",
                   help="symbol: PREFIX-symbol.json + PREFIX-0000.params; onnx: PREFIX.onnx")
    p.add_argument("--out", required=True, metavar="PREFIX", help="path prefix of the files")
    p.add_argument("--check-images", type=int, default=256, metavar="N",
                   help="real test images the ONNX check runs (256; 0: no check)")


def _cmd_export(args: argparse.Namespace) -> int:
    """Export trained weights for serving without this library. ONNX export runs the
    file in onnxruntime on real test images of the net's data and reports the largest
    difference from MXNet's output.
    """
    from .export import export_onnx, export_symbol, onnx_difference
    from .sources import open_for_model

    _check_lower_precision(args)
    if args.dtype != "float32" and args.format != "symbol":
        raise ValueError(f"--dtype {args.dtype} exports as an MXNet symbol only (ONNX "
                         f"export is float32); use --format symbol, or drop --dtype.")
    if args.int8 and args.format != "symbol":
        raise ValueError("--int8 exports as an MXNet symbol only (oneDNN operators have "
                         "no ONNX form); use --format symbol.")
    net, info = _load(args, "--params", dtype=args.dtype)
    if args.format == "symbol":
        for path in export_symbol(_quantized(net, info, args) if args.int8 else net,
                                  args.out, info):
            print(f"wrote {path}")
        return 0
    path = export_onnx(net, args.out, info)
    c, r = info.model.in_channels, info.resize
    print(f"wrote {path} (input 'data': N x {c} x {r} x {r}, N dynamic; "
          f"its metadata says how an image becomes it)")
    if args.check_images <= 0:
        return 0
    X, which = open_for_model(info, args.params, _data(args)).first_images(
        info, args.check_images)
    diff, largest = onnx_difference(path, net, X)
    limit = 1e-4 * max(1.0, largest)  # float32 rounding grows with the outputs
    print(f"onnxruntime vs MXNet on {X.shape[0]} {which}: max abs difference {diff:.2e} "
          f"({'ok' if diff <= limit else 'FAILED'}: limit {limit:.1e}, 1e-4 of the largest "
          f"output, at least 1)")
    return 0 if diff <= limit else 1


# --------------------------------------------------------------------------- predict

def _add_predict(sub) -> None:
    p = _command(sub, "predict", _cmd_predict,
                 help="label image files with a trained net")
    p.add_argument("--model", help="RUN_DIR/model.params, or the PREFIX of an exported "
                                   "symbol model (default: the trained weights shipped in "
                                   "the package)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or directories")
    p.add_argument("--topk", type=_typed(POSITIVE_INT), default=3,
                   help="classes per image (3)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--invert", action="store_true",
                   help="dark object on a light background (photos): invert the gray levels")
    _add_config_options(p, ARCHITECTURE, shown=_FROM_WEIGHTS)
    _add_config_options(p, ("dtype",), defaults=True)


def _cmd_predict(args: argparse.Namespace) -> int:
    """Read PNG/JPEG/BMP files of any size (or the images in directories), turn each into
    the net's input as its run prepared its training images (the input record in its
    config.json: for Fashion-MNIST, gray, 28x28, then the run's resize; for your own
    images, the shorter side scaled to the run's size, the centre cropped, gray or colour,
    normalised with the training images' mean and std) and print the top classes of each,
    by name, one line per image.
    """
    from .predict import image_files, predict_files

    files = image_files(args.images)
    if not files:
        raise ValueError(f"no images in {' '.join(args.images)} (looked for .png, .jpg, "
                         f".jpeg and .bmp files).")
    net, info = _load(args, "--model", dtype=args.dtype)
    predictions, errors = predict_files(net, info, files, args.topk, invert=args.invert)
    for p in predictions:
        print(json.dumps(p.to_dict()) if args.json else
              f"{p.file}: " + ", ".join(f"{c} {v:.3f}" for c, v in p.top))
    for path, message in errors:
        if args.json:
            print(json.dumps({"file": path, "error": message}))
        print(f"resnet-gluon predict: error: {message}", file=sys.stderr)
    return 1 if errors else 0


# --------------------------------------------------------------------------- pack

def _add_pack(sub) -> None:
    p = _command(sub, "pack", _cmd_pack,
                 help="write an image folder as MXNet RecordIO (PREFIX.rec, .idx, .json)")
    p.add_argument("folder", metavar="DIR", help="an image folder: DIR/CLASS/IMAGE")
    p.add_argument("prefix", metavar="PREFIX", help="path prefix of the files written")


def _cmd_pack(args: argparse.Namespace) -> int:
    """Check every image of DIR whole, then write PREFIX.rec and PREFIX.idx (im2rec's format:
    the label and the file's bytes) and PREFIX.json (class names, channels, mean and std),
    for 'train --data PREFIX.rec', which streams it through MXNet's ImageRecordIter. Pack a
    test folder the same way and pass it as --test-data.
    """
    from .recordio import pack

    info = pack(args.folder, args.prefix, log=_warn)
    print(f"wrote {args.prefix}.rec, {args.prefix}.idx and {args.prefix}.json: "
          f"{info['count']:,} images of {len(info['classes'])} classes "
          f"({'gray' if info['channels'] == 1 else 'colour'})")
    return 0


# --------------------------------------------------------------------------- launch

def _add_launch(sub) -> None:
    p = _command(sub, "launch", _cmd_launch,
                 help="run a command on MXNet's parameter server over 127.0.0.1")
    p.add_argument("-n", "--num-workers", type=_typed(POSITIVE_INT), required=True)
    p.add_argument("-s", "--num-servers", type=_typed(POSITIVE_INT), default=1)
    p.add_argument("--timeout", type=_typed(POSITIVE_NUMBER), default=3600.0,
                   help="seconds before every process is stopped (3600)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")


def _cmd_launch(args: argparse.Namespace) -> int:
    """Start a scheduler, SERVERS servers and WORKERS workers on this machine (loopback
    only) and run 'python -m resnet_gluon COMMAND...' on each worker, e.g.: launch -n 2 -s 1
    -- train --kvstore dist_sync --epochs 1. If a worker fails, all processes are stopped.
    """
    from .launch import launch

    return launch(args.cmd, args.num_workers, args.num_servers, timeout=args.timeout)


# --------------------------------------------------------------------------- info

def _add_info(sub) -> None:
    _command(sub, "info", _cmd_info,
             help="versions, the CPU's matrix units, and the kernels the convolutions run on")


def _cmd_info(args: argparse.Namespace) -> int:
    """Print the versions (resnet_gluon, MXNet, oneDNN, numpy, Python), the CPU and its ISA
    flags, whether AMX is on and why (not), the thread count, how bfloat16 runs here (AMX,
    AVX512-BF16 or emulated), and the oneDNN kernels a tiny fp32 and bf16 convolution ran on
    in a fresh process.
    """
    from .precision import machine_report

    print("\n".join(machine_report(__version__)))
    return 0


# --------------------------------------------------------------------------- main

def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` by default); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BaseException as err:  # the library's errors already say what to do: no trace
        ended = error_exit(err, args.command, getattr(args, "out", None))
        if ended is None:  # unforeseen: keep its trace; a worker leaves at once
            if os.environ.get("DMLC_ROLE") != "worker" or not isinstance(err, Exception):
                raise
            traceback.print_exc()
            ended = (1, "the worker failed (trace above)")
        return _fail(parser, args, *ended)


def _fail(parser: argparse.ArgumentParser, args: argparse.Namespace, code: int,
          message: str) -> int:
    """Print ``message`` as one error line and end with ``code``.

    A worker of a parameter-server job leaves at once: MXNet's own shutdown
    would wait for peers that will never come, and the launcher must see the
    failure to stop the others.
    """
    print(f"{parser.prog} {args.command}: error: {message}", file=sys.stderr, flush=True)
    if os.environ.get("DMLC_ROLE") == "worker":
        sys.stdout.flush()
        os._exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
