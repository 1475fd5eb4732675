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
import shlex
import sys
import time
import traceback
from typing import List, Optional, Sequence, Tuple

from . import __version__
from ._checks import (ANY_INT, NONNEGATIVE_INT, POSITIVE_INT, POSITIVE_NUMBER, RESIZE,
                      add_knobs, error_exit, printable)
from .config import ARCHITECTURE, RECIPES, option_fields, parse_ctx
from .inputs import DataRef
from .model import ResNetSpec
from .recordio import PACK_SIZE
from .run import RunSettings
from .shapes import check_input_size, count_parameters, format_shapes, layer_shapes

__all__ = ["main", "build_parser"]

_PARAMS_HELP = ("RUN_DIR/model.params, a checkpoint's net.params, or the PREFIX of an "
                "exported symbol model")
#: What ``train`` offers of TrainConfig: all but the class count, which the data decides.
_RECIPE = [f.name for f in option_fields() if f.name != "num_classes"]
#: Which data: DataRef's fields, --data first; and which devices.
_DATA = [f.name for f in option_fields(record=DataRef)]
_DEVICES = [f.name for f in option_fields(record=RunSettings)]
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


def _add_config_options(parser, names: Optional[Sequence[str]] = None,
                        defaults: bool = False, shown: Optional[str] = None,
                        record: Optional[type] = None) -> None:
    """:class:`TrainConfig`'s knobs (or ``record``'s), all or ``names``, as options
    (see :func:`~resnet_gluon._checks.add_knobs` for ``defaults`` and ``shown``)."""
    add_knobs(parser, option_fields(names, record), defaults, shown)


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


def _add_data(parser, names: Sequence[str] = ("data",), shown: Optional[str] = None) -> None:
    """The data options (:class:`DataRef`'s fields), ``--data-dir`` as --data's older name."""
    _add_config_options(parser, names[:1], shown=shown, record=DataRef)
    parser.add_argument("--data-dir", metavar="DIR",
                        help="the same as --data (its name for Fashion-MNIST's directory)")
    _add_config_options(parser, names[1:], record=DataRef)


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
    _add_data(parser, ("data", "skip_bad_images"), " (default: what the run recorded, with "
              "its options; of a folder, its test/ or valid/ is read)")
    _add_config_options(parser, ARCHITECTURE, shown=_FROM_WEIGHTS)
    _add_config_options(parser, ("dtype",), defaults=True)
    parser.add_argument("--int8", action="store_true",
                        help="quantize to INT8 first (oneDNN, calibrated on training images)")
    parser.add_argument("--calib-images", type=POSITIVE_INT, default=512, metavar="N",
                        help="training images for the INT8 calibration (512)")
    return parser


def _lower(net, info, args: argparse.Namespace):
    """The inference graph at --int8 (calibrated on training images of the net's data) or at
    a --dtype other than float32; None at float32."""
    from .inference import for_inference
    from .quantize import quantize
    from .sources import open_for_model

    if args.int8 and args.dtype != "float32":
        raise ValueError(f"--int8 and --dtype {args.dtype} are two lower precisions; "
                         f"pick one (INT8 is quantized from the float32 weights).")
    if args.int8:
        source = open_for_model(info, args.params, args.data, test=False,
                                skip_bad_images=bool(args.skip_bad_images))
        return quantize(net, source.calibration_images(info, args.calib_images))
    return None if args.dtype == "float32" else for_inference(net, args.dtype)


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
    _add_data(p.add_argument_group("the data (default: Fashion-MNIST; on --resume, the run's)"),
              _DATA, "; classes, channels and normalisation come from it")
    p.add_argument("--out", metavar="RUN_DIR",
                   help="run directory (default: a new one, runs/resnetDEPTH-TIMESTAMP)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its newest valid checkpoint")
    _add_config_options(p.add_argument_group("devices (on --resume, the run's)"), _DEVICES,
                        record=RunSettings)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-hybridize", action="store_true",
                   help="run imperatively: slower, for debugging")


def _cmd_train(args: argparse.Namespace) -> int:
    """Train a ResNet on the real Fashion-MNIST, or on your own images (--data). With no
    options: the book's recipe (lr 0.05, plain SGD, batch 256, 5 epochs, resize 96, Xavier).
    """
    from .sources import open_source
    from .train import fit, make_kvstore

    run = RunSettings.resolve(args.out, args.resume, args.recipe,
                              **{name: getattr(args, name) for name in _RECIPE + _DATA + _DEVICES})
    data = run.data
    source = open_source(data.data, data.test, data.channels, data.skip_bad_images)
    config = source.configure(run.config)
    args.out = args.out or os.path.join(  # named for the --resume hint if interrupted
        "runs", f"resnet{config.model.depth}-{time.strftime('%Y%m%d-%H%M%S')}")
    kvstore, rank, workers = make_kvstore(run.kvstore)
    if rank == 0:
        print(f"training ResNet-{config.model.depth}"
              f"{f' in {config.dtype}' if config.dtype != 'float32' else ''} on "
              f"{', '.join(str(c) for c in parse_ctx(run.ctx))}"
              f"{f' ({workers} workers)' if workers > 1 else ''}; run directory {args.out}",
              flush=True)
    fit(source.build_net(config), source, config, ctx=run.ctx, kvstore=kvstore,
        run_dir=args.out, resume=args.resume, progress=not args.no_progress,
        hybridize=not args.no_hybridize, log=lambda line: print(printable(line), flush=True))
    return 0


def _add_evaluate(sub) -> None:
    from .report import DEFAULT_MISTAKES

    p = _weights_command(sub, "evaluate", _cmd_evaluate,
                         help="test accuracy, per-class accuracy and the confusion matrix")
    _add_config_options(p, ("batch_size", "limit_test"), defaults=True)
    _add_config_options(p, ("ctx",), defaults=True, record=RunSettings)
    p.add_argument("--tta", action="store_true",
                   help="also average over each image's mirror image (test-time augmentation)")
    p.add_argument("--tta-shift", type=NONNEGATIVE_INT, default=0, metavar="PIXELS",
                   help="also average over each view moved by PIXELS input pixels left, "
                        "right, up and down (test-time augmentation; 0)")
    p.add_argument("--val-split", type=NONNEGATIVE_INT, default=0, metavar="N",
                   help="evaluate the N training images a run with --val-split N --seed "
                        "SEED held out, instead of the test set (to choose on; 0)")
    p.add_argument("--seed", type=ANY_INT, default=0,
                   help="the seed of that run, and of --limit-test's sample (0)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object: accuracy, and per class its count, accuracy and row "
                        "of the confusion matrix (the text report shows the most confused "
                        "pairs past 20 classes)")
    p.add_argument("--report", metavar="FILE.html",
                   help="also write one self-contained HTML page (pictures inside; no "
                        "network, no scripts): accuracy, per class, the confusion, the most "
                        "confident mistakes with their Grad-CAM, and the run's curves, "
                        "recipe and data; computed on the float32 net")
    p.add_argument("--mistakes", type=NONNEGATIVE_INT, default=DEFAULT_MISTAKES, metavar="N",
                   help=f"the most confident mistakes the report shows ({DEFAULT_MISTAKES})")
    p.add_argument("--force", action="store_true", help="replace an existing --report file")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate trained weights on the test images of their data (the run's own folder or
    .rec, or Fashion-MNIST), or on the images a run held out (--val-split).
    """
    from .evaluate import agreement, evaluate, format_report, report_dict
    from .inference import for_inference
    from .report import check_report_path, confident_mistakes, write_report
    from .sources import open_for_model

    ctxs = parse_ctx(args.ctx)
    if args.report:  # before any work
        check_report_path(args.report, args.force)
    if args.int8 and (len(ctxs) > 1 or ctxs[0].device_type != "cpu"):
        raise ValueError(f"--int8 runs on one CPU context (oneDNN), got --ctx {args.ctx}; "
                         f"drop --ctx.")
    net, info = _load(args, "--params", ctx=ctxs)
    source = open_for_model(info, args.params, args.data, args.val_split, args.seed,
                            skip_bad_images=bool(args.skip_bad_images))
    data = source.eval_batches(info, args.batch_size, args.val_split, args.seed,
                               args.limit_test)
    lower = _lower(net, info, args)  # its own accuracy, and its agreement with float32
    tta = dict(num_classes=info.model.num_classes, flip=args.tta, shift=args.tta_shift)
    name = "int8" if args.int8 else args.dtype
    result = fp32 = evaluate(for_inference(net), data.batches, ctxs, **tta)
    if lower is not None:
        result = evaluate(lower, data.batches, ctxs, **tta)
    views = " and ".join(w for w, on in (("flip", args.tta),
                                         (f"{args.tta_shift}-pixel shift", args.tta_shift)) if on)
    which, agree = "val" if args.val_split else "test", agreement(result.predictions,
                                                                    fp32.predictions)
    if args.json:  # the whole report, the confusion matrix too, at any class count
        print(json.dumps({"split": which, "data": data.what, "depth": info.model.depth,
                          "resize": info.resize, "tta": views or None,
                          "float32": report_dict(fp32, info.classes),
                          **({name: dict(report_dict(result, info.classes), agreement=agree)}
                             if lower is not None else {})}))
    else:
        print(f"{which} acc {fp32.accuracy:.4f} ({fp32.count} {data.what}, "
              f"ResNet-{info.model.depth}, resize {info.resize}"
              f"{f', with {views} test-time augmentation' if views else ''})")
        if lower is not None:
            print(f"{name} {which} acc {result.accuracy:.4f}, top-1 agreement with fp32 "
                  f"{agree:.4f}" + (f" (calibrated on {args.calib_images} training images)"
                                    if args.int8 else "")
                  + f"; the tables below are the {name} model's")
        print(format_report(result, info.classes))
    if args.report:  # on float32: Grad-CAM reads its weights
        notes = [f"Computed on the float32 net (Grad-CAM reads its weights); the {name} "
                 f"model's own accuracy is {result.accuracy:.4f}, its top-1 agreement with "
                 f"float32 {agree:.4f}."] if lower is not None else []
        if lower is not None:
            _warn(f"the report is computed on the float32 net, not the {name} one")
        write_report(args.report, fp32, info,
                     confident_mistakes(net, data.batches, fp32, args.mistakes),
                     f"{which} {data.what}", args.params, _command_line(args), notes,
                     args.force)
        print(f"wrote {args.report}", file=sys.stderr if args.json else sys.stdout)
    return 0


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
    from .export import export_onnx, export_onnx_checked, export_symbol
    from .inference import for_inference
    from .sources import open_for_model

    if args.format == "onnx" and (args.int8 or args.dtype != "float32"):
        raise ValueError(f"{'--int8' if args.int8 else '--dtype ' + args.dtype} exports as an "
                         f"MXNet symbol only (ONNX export is float32); use --format symbol.")
    net, info = _load(args, "--params")
    if args.format == "symbol":
        # bfloat16 is written folded and cast, not fused: a loader fuses for its own CPU.
        lower = (_lower(net, info, args) if args.int8 else
                 for_inference(net, args.dtype, fuse=False) if args.dtype != "float32" else net)
        for path in export_symbol(lower, args.out, info):
            print(f"wrote {path}")
        return 0
    c, r = info.model.in_channels, info.resize
    shape = f"input 'data': N x {c} x {r} x {r}, N dynamic; its metadata says how an image " \
            f"becomes it"
    if args.check_images <= 0:
        print(f"wrote {export_onnx(net, args.out, info)} ({shape}; not checked)")
        return 0
    X, which = open_for_model(info, args.params, args.data, skip_bad_images=bool(
        args.skip_bad_images)).first_images(info, args.check_images)  # before writing
    check = export_onnx_checked(net, args.out, info, X)
    print(f"onnxruntime vs MXNet on {check.count} {which}: {check}")
    print(f"wrote {args.out}.onnx ({shape})" if check.ok else "nothing written")
    return 0 if check.ok else 1


def _add_predict(sub) -> None:
    p = _command(sub, "predict", _cmd_predict,
                 help="label image files with a trained net")
    p.add_argument("--model", help="RUN_DIR/model.params, or the PREFIX of an exported "
                                   "symbol model (default: the trained weights shipped in "
                                   "the package)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or directories")
    p.add_argument("--topk", type=POSITIVE_INT, default=3,
                   help="classes per image (3)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--invert", action="store_true",
                   help="dark object on a light background (photos): invert the gray levels")
    p.add_argument("--explain", metavar="DIR",
                   help="also write DIR/IMAGE-explained.png for each image, DIR created if "
                        "missing: the image as the net saw it, the Grad-CAM of its top class "
                        "over it, its top classes; Grad-CAM reads the float32 weights")
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
    from .inference import for_inference
    from .predict import image_files, predict_files
    from .report import check_explain_directory, explain_files

    files = image_files(args.images)
    if not files:
        raise ValueError(f"no images in {' '.join(args.images)} (looked for .png, .jpg, "
                         f".jpeg and .bmp files).")
    if args.explain:  # before any work
        check_explain_directory(args.explain)
    net, info = _load(args, "--model")
    predictions, errors = predict_files(for_inference(net, args.dtype), info, files, args.topk,
                                        invert=args.invert)
    explained = [None] * len(predictions)
    if args.explain:
        note = "" if args.dtype == "float32" else \
            f"Grad-CAM on the float32 weights; classes from the {args.dtype} net"
        if note:
            _warn(f"--explain computes Grad-CAM on the float32 weights; the classes and "
                  f"probabilities are the {args.dtype} net's")
        explained = explain_files(net, info, predictions, args.explain, args.invert, note)
    for p, png in zip(predictions, explained):
        if args.json:
            print(json.dumps(dict(p.to_dict(), **({"explanation": png} if png else {}))))
        else:
            print(f"{p} -> {printable(png)}" if png else p)
    for path, message in errors:
        if args.json:
            print(json.dumps({"file": path, "error": message}))
        print(f"resnet-gluon predict: error: {printable(message)}", file=sys.stderr)
    return 1 if errors else 0


def _add_pack(sub) -> None:
    p = _command(sub, "pack", _cmd_pack,
                 help="write an image folder as MXNet RecordIO (PREFIX.rec, .idx, .json)")
    p.add_argument("folder", metavar="DIR", help="an image folder: DIR/CLASS/IMAGE")
    p.add_argument("prefix", metavar="PREFIX", help="path prefix of the files written")
    p.add_argument("--resize", type=RESIZE, default=PACK_SIZE, metavar="SIDE",
                   help=f"side of the images stored: the input side of the runs that train on "
                        f"the pack (their --resize) ({PACK_SIZE})")
    _add_config_options(p, ("channels",), record=DataRef)


def _cmd_pack(args: argparse.Namespace) -> int:
    """Read every image of DIR whole as an image folder's are read (upright, 8-bit, the
    shorter side scaled to SIDE, the centre cropped), then write PREFIX.rec and PREFIX.idx
    (im2rec's format: the label and a PNG of the image) and PREFIX.json (class names,
    channels, size, mean and std), for 'train --data PREFIX.rec', which streams it through
    MXNet's ImageRecordIter at that size. Pack a test folder the same way and pass it as
    --test-data.
    """
    from .recordio import pack

    info = pack(args.folder, args.prefix, args.resize, args.channels, log=_warn)
    print(f"wrote {args.prefix}.rec, {args.prefix}.idx and {args.prefix}.json: {info}")
    return 0


def _add_launch(sub) -> None:
    p = _command(sub, "launch", _cmd_launch,
                 help="run a command on MXNet's parameter server over 127.0.0.1")
    p.add_argument("-n", "--num-workers", type=POSITIVE_INT, required=True)
    p.add_argument("-s", "--num-servers", type=POSITIVE_INT, default=1)
    p.add_argument("--timeout", type=POSITIVE_NUMBER, default=3600.0,
                   help="seconds before every process is stopped (3600)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")


def _cmd_launch(args: argparse.Namespace) -> int:
    """Start a scheduler, SERVERS servers and WORKERS workers on this machine (loopback
    only) and run 'python -m resnet_gluon COMMAND...' on each worker, e.g.: launch -n 2 -s 1
    -- train --kvstore dist_sync --epochs 1. If a worker fails, all processes are stopped.
    """
    from .launch import launch

    return launch(args.cmd, args.num_workers, args.num_servers, timeout=args.timeout)


def _add_info(sub) -> None:
    _command(sub, "info", _cmd_info,
             help="versions, the CPU's matrix units, and the kernels the convolutions run on")


def _cmd_info(args: argparse.Namespace) -> int:
    """Print the versions (resnet_gluon, MXNet, oneDNN, numpy, Python), the CPU and its ISA
    flags, whether AMX is on and why (not), the thread count, how bfloat16 runs here (AMX,
    AVX512-BF16, emulated or refused), and the oneDNN kernels a tiny fp32 and bf16
    convolution ran on in a fresh process.
    """
    from .precision import machine_report

    print("\n".join(machine_report(__version__)))
    return 0


def _command_line(args: argparse.Namespace) -> str:
    """The command as the user typed it (for a report to say what made it)."""
    return "python -m resnet_gluon " + shlex.join(args.argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` by default); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if getattr(args, "data_dir", None):
            if args.data:
                raise ValueError(f"--data {args.data} and --data-dir {args.data_dir} name two "
                                 f"data sets; give one (--data-dir is Fashion-MNIST's).")
            args.data = args.data_dir
        return args.func(args)
    except BaseException as err:  # the library's errors already say what to do: no trace
        ended = error_exit(err, args.command, getattr(args, "out", None))
        if ended is None:  # unforeseen: keep its trace; a worker leaves at once
            if os.environ.get("DMLC_ROLE") != "worker" or not isinstance(err, Exception):
                raise
            traceback.print_exc()
            ended = (1, "the worker failed (trace above)")
        code, message = ended
        # A message's own line breaks (a list of places looked in) stay; any other control
        # character, from a name inside it, is escaped.
        message = "\n".join(printable(line) for line in message.split("\n"))
        print(f"{parser.prog} {args.command}: error: {message}", file=sys.stderr, flush=True)
        if os.environ.get("DMLC_ROLE") == "worker":  # MXNet's shutdown would wait for peers
            sys.stdout.flush()                       # that never come; the launcher must see
            os._exit(code)                           # the failure to stop the others
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
