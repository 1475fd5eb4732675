"""Command line: ``python -m resnet_gluon`` / ``resnet-gluon``.

A thin skin over the library's functions: it parses arguments, calls them
and prints what they return.  Nothing here is needed from a script.
"""
import argparse
import dataclasses
import errno
import inspect
import json
import os
import platform
import sys
import time
import traceback
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import __version__
from mxnet.base import MXNetError

from ._checks import ANY_INT, NONNEGATIVE_INT, POSITIVE_INT, POSITIVE_NUMBER, Rule, mxnet_reason
from .config import ARCHITECTURE, KVSTORES, RECIPES, TrainConfig, option_fields, parse_ctx
from .model import ResNetSpec
from .shapes import count_parameters, format_shapes, layer_shapes

__all__ = ["main", "build_parser"]

_PARAMS_HELP = ("RUN_DIR/model.params, a checkpoint's net.params, or the PREFIX of an "
                "exported symbol model")
_DATA_HELP = "directory of the four Fashion-MNIST .gz files"
#: What ``train`` offers of TrainConfig: all but the class count, which the data decides.
_RECIPE = [f.name for f in option_fields() if f.name != "num_classes"]


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


def _flag(field: dataclasses.Field) -> str:
    return field.metadata["flag"] or "--" + field.name.replace("_", "-")


def _add_config_options(parser, names: Optional[Sequence[str]] = None,
                        defaults: bool = False) -> None:
    """Add :class:`TrainConfig` fields as options, all of them or ``names``.

    With ``defaults`` an option left out takes the field's default; without,
    it is None, so the caller can tell "not given" (a run's saved value, a
    config.json's) from "given".
    """
    for f in option_fields(names):
        meta = f.metadata
        shown = "" if f.default is None or isinstance(f.default, bool) else f" ({f.default})"
        kwargs: Dict[str, Any] = dict(dest=f.name, default=f.default if defaults else None,
                                      help=meta["help"] + shown)
        if isinstance(f.default, bool):
            # --no-X too where a recipe or a saved run may have turned X on.
            kwargs["action"] = "store_true" if defaults else argparse.BooleanOptionalAction
        elif meta["choices"]:
            kwargs.update(choices=list(meta["choices"]), type=type(meta["choices"][0]))
        else:
            kwargs.update(type=_typed(meta["rule"]), metavar=meta["metavar"])
        parser.add_argument(_flag(f), **kwargs)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _architecture(args: argparse.Namespace) -> Dict[str, Any]:
    """The architecture options given (the others None): overrides of a run's config.json."""
    return {name: getattr(args, name, None) for name in ARCHITECTURE}


def _load(args: argparse.Namespace, option: str, ctx=None, dtype: str = "float32"):
    """``(net, info)`` of the weights ``option`` names (``--params``, ``--model``), or of the
    weights shipped in the package without it (then no architecture option may be given)."""
    from .trained import load_model, pretrained_info

    source = getattr(args, option[2:])
    if source is None:
        given = [k for k, v in _architecture(args).items() if v is not None]
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')} describes the net of {option}; "
                             f"without {option} the shipped weights are used, whose net is "
                             f"fixed. Give {option} RUN_DIR/model.params for a run of your own.")
        run = pretrained_info()["source"].get("run", "a trained run")
        print(f"using the weights shipped in the package ({run})", file=sys.stderr, flush=True)
    return load_model(source, ctx=ctx, log=_warn, dtype=dtype, **_architecture(args))


def _command(sub, name: str, func, help: str, more: str = "") -> argparse.ArgumentParser:
    """The parser of subcommand ``name``, which runs ``func(args)``; ``func``'s
    docstring (and ``more``) is the command's ``--help`` description."""
    parser = sub.add_parser(name, help=help,
                            description=" ".join(inspect.cleandoc(func.__doc__).split()) + more)
    parser.set_defaults(func=func)
    return parser


def _weights_command(sub, name: str, func, help: str) -> argparse.ArgumentParser:
    """A subcommand that loads a run's weights: --params, --data-dir, INT8, and the
    architecture options, which override what the run's config.json says."""
    parser = _command(sub, name, func, help, " Depth, classes, small-input and resize come "
                      "from config.json beside the params when it is there, else from the "
                      "options.")
    parser.add_argument("--params", help=_PARAMS_HELP + " (default: the trained weights "
                                               "shipped in the package)")
    parser.add_argument("--data-dir", help=_DATA_HELP)
    parser.add_argument("--data", metavar="PATH",
                        help="for a net trained on your own images: the image folder (its "
                             "test/ or valid/) or .rec to read (default: the run's)")
    _add_config_options(parser, ARCHITECTURE)
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


def _own_data(args: argparse.Namespace, info, key: str) -> Optional[str]:
    """The images of a net trained on your own (``--data``, else the run's ``key`` in its
    config.json: ``data`` or ``test_data``); None for a Fashion-MNIST net."""
    from .run import find_run_config, read_json

    if info.preprocess != "crop":
        if args.data:
            raise ValueError(f"--data {args.data}: this net was trained on Fashion-MNIST "
                             f"(its images are found by --data-dir); drop --data.")
        return None
    if args.data:
        return args.data
    params = getattr(args, "params", None)
    config = find_run_config(params) if params and os.path.isfile(params) else None
    path = read_json(config).get(key) if config else None
    if not path:
        why = f"its run has no {key}" if config else "no run config.json names them"
        raise ValueError(f"this net was trained on your own images and {why}; give --data "
                         f"PATH (an image folder or .rec of its classes).")
    if not os.path.exists(path):
        raise ValueError(f"{path}, the data the run recorded, is not there any more; give "
                         f"--data PATH.")
    return path


def _quantized(net, info, args):
    from .quantize import calibration_images, quantize

    own = _own_data(args, info, "data")
    if own is None:
        calib = calibration_images(args.calib_images, info.resize, args.data_dir)
    else:
        from .recordio import own_calibration_images

        calib = own_calibration_images(own, info, args.calib_images)
    return quantize(net, calib)


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
    n, c, h, w = args.input
    stride = 1 if args.small_input else 2
    stem = n * 64 * -(-h // stride) * -(-w // stride)  # the largest output of the net
    if stem >= 2**31 - 1:
        raise ValueError(f"--input {n},{c},{h},{w} is too large: the stem's output would hold "
                         f"{stem:,} numbers, more than MXNet's 2**31 per array. Give a "
                         f"smaller batch or image.")
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
                 help="train on Fashion-MNIST (the book's recipe by default)")
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


#: Settings of ``train`` outside the recipe, recorded in config.json: (option, default).
_RUN_SETTINGS = {"recipe": "book", "ctx": "cpu:0", "kvstore": "device", "data_dir": None,
                 "data": None, "test_data": None, "channels": None, "skip_bad_images": None}
#: Those a resumed run must keep: another recipe, device split, store or data changes the
#: numbers.
_FIXED_ON_RESUME = ("recipe", "ctx", "kvstore", "data", "test_data", "channels")


def _train_settings(args: argparse.Namespace) -> Tuple[TrainConfig, Dict[str, Any]]:
    """The recipe and the run settings: given options over the run's saved ones (on
    --resume) or the named recipe's, over the defaults."""
    from .run import CONFIG_FILE, read_config

    values, settings = TrainConfig().to_dict(), dict(_RUN_SETTINGS)
    for key in ("data", "test_data"):  # recorded whole: evaluate may run from elsewhere
        if getattr(args, key):
            setattr(args, key, os.path.abspath(getattr(args, key)))
    if not args.resume:
        values.update(RECIPES[args.recipe or "book"])
    if args.resume:
        if not args.out:
            raise ValueError("--resume needs --out RUN_DIR, the run to continue.")
        if not os.path.isfile(os.path.join(args.out, CONFIG_FILE)):
            raise ValueError(f"--resume: {os.path.join(args.out, CONFIG_FILE)} not found; is "
                             f"{args.out} a run directory? Start a new run without --resume.")
        saved = read_config(args.out)
        values.update({k: v for k, v in saved.items() if k in values})
        settings.update({k: v for k, v in saved.items() if k in settings})
        for key in _FIXED_ON_RESUME:
            given = getattr(args, key)
            if given is not None and given != settings[key]:
                raise ValueError(
                    f"the run in {args.out} was trained with --{key} {settings[key]}; resuming "
                    f"with --{key} {given} would not reproduce it. Leave --{key} out.")
    values.update({k: getattr(args, k) for k in _RECIPE if getattr(args, k) is not None})
    settings.update({k: getattr(args, k) for k in settings if getattr(args, k) is not None})
    return TrainConfig.from_dict(values), settings


def _training_data(config: TrainConfig, settings: Dict[str, Any], num_parts: int,
                   part_index: int):
    """``(splits, config, recorded)``: the run's batches; the config with the classes and
    channels of the data; what config.json records of the data beside the settings."""
    from .data import load_splits

    common = dict(augment=config.augment, seed=config.seed, num_parts=num_parts,
                  part_index=part_index, erase=config.random_erasing, val_split=config.val_split,
                  limit_train=config.limit_train, limit_test=config.limit_test)
    batch_size = config.batch_size // num_parts
    if settings["data"] is None:
        if settings["test_data"] or settings["channels"] or settings["skip_bad_images"]:
            raise ValueError("--test-data, --channels and --skip-bad-images are for your own "
                             "images: give --data PATH too.")
        return load_splits(batch_size, resize=config.resize, root=settings["data_dir"],
                           **common), config, {}
    if settings["data_dir"]:
        raise ValueError(f"--data {settings['data']} and --data-dir {settings['data_dir']} "
                         f"name two data sets; give one (--data-dir is Fashion-MNIST's).")
    from .recordio import load_own_splits

    own = load_own_splits(settings["data"], batch_size, config.resize,
                          channels=settings["channels"], test=settings["test_data"],
                          skip_bad_images=bool(settings["skip_bad_images"]), **common)
    if part_index == 0:
        for note in own.notes:
            print(note, flush=True)
    model = dataclasses.replace(config.model, num_classes=len(own.classes),
                                in_channels=own.channels)
    # --data as given (a layout's root): what --resume compares with
    return own.splits, dataclasses.replace(config, model=model), \
        dict(own.record(), data=settings["data"])


def _check_same_classes(run_dir: str, classes: List[str]) -> None:
    """Refuse to resume a run on images whose classes are not the run's."""
    from .run import read_config

    saved = read_config(run_dir).get("classes")
    if saved is not None and saved != classes:
        raise ValueError(f"the run in {run_dir} was trained on the classes {saved}; the data "
                         f"now holds {classes}. Resume on the run's images, or start a new "
                         f"run directory.")


def _cmd_train(args: argparse.Namespace) -> int:
    """Train a ResNet on the real Fashion-MNIST, or on your own images (--data). With no
    options: the book's recipe (lr 0.05, plain SGD, batch 256, 5 epochs, resize 96, Xavier).
    """
    from .train import fit, make_kvstore

    config, settings = _train_settings(args)
    ctxs = parse_ctx(settings["ctx"])
    out = args.out or os.path.join(
        "runs", f"resnet{config.model.depth}-{time.strftime('%Y%m%d-%H%M%S')}")
    kvstore, part_index, num_parts = make_kvstore(settings["kvstore"])
    if config.batch_size % num_parts:
        raise ValueError(f"--batch-size {config.batch_size} does not split evenly over "
                         f"{num_parts} workers; use a multiple of {num_parts}.")
    data, config, recorded = _training_data(config, settings, num_parts, part_index)
    if args.resume and recorded:
        _check_same_classes(out, recorded["classes"])
    spec = config.model
    net = spec.build()
    if part_index == 0:
        print(f"training ResNet-{spec.depth}"
              f"{f' in {config.dtype}' if config.dtype != 'float32' else ''}"
              f" on {', '.join(str(c) for c in ctxs)}"
              f"{f' ({num_parts} workers)' if num_parts > 1 else ''}; run directory {out}",
              flush=True)
    args.out = out  # for the --resume hint if the run is interrupted
    fit(net, data.train, data.test, config, ctx=ctxs, kvstore=kvstore, run_dir=out,
        resume=args.resume, progress=not args.no_progress, hybridize=not args.no_hybridize,
        log=lambda line: print(line if part_index == 0 else f"[worker {part_index}] {line}",
                               flush=True),
        extra_config={**settings, **recorded}, val_data=data.val)
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


def _check_held_out(args: argparse.Namespace) -> None:
    """Refuse ``--val-split N --seed S`` unless the weights' run held out those very images:
    the accuracy of a net on images it trained on is no validation figure."""
    from .run import find_run_config, read_json

    if args.params is None:
        raise ValueError("--val-split: the shipped weights were trained on all 60,000 training "
                         "images; none were held out, so no validation figure can be read "
                         "off them. Give --params of a run trained with --val-split.")
    config = find_run_config(args.params) if os.path.isfile(args.params) else None
    if config is None:
        raise ValueError(f"--val-split: no config.json of a run beside {args.params} says "
                         f"which images it held out. Give --params RUN_DIR/model.params of a "
                         f"run trained with --val-split.")
    saved = read_json(config)
    held, seed = saved.get("val_split", 0), saved.get("seed", 0)
    if (held, seed) != (args.val_split, args.seed):
        fix = (f"pass --val-split {held} --seed {seed}" if held else
               "it has no validation images: evaluate it on the test set")
        raise ValueError(f"--val-split {args.val_split} --seed {args.seed}: the run ({config}) "
                         f"held out {held} training images with seed {seed}, so these are not "
                         f"images it did not train on; {fix}.")


def _evaluation_data(args: argparse.Namespace, info):
    """The batches ``evaluate`` reads (the test set, or a run's validation split), and how
    to name them."""
    from .data import BatchIter, load_fashion_mnist, split_validation

    own = _own_data(args, info, "data" if args.val_split else "test_data")
    if own is not None:
        from .recordio import own_eval_batches

        data = own_eval_batches(own, info, args.batch_size, args.val_split, args.seed,
                                args.limit_test)
        held = f" validation images held out with seed {args.seed}" if args.val_split else ""
        return data, f"{held or ' images'} of {own}"
    if args.val_split:
        split = f" validation images held out with seed {args.seed}"
        *_, images, labels = split_validation(*load_fashion_mnist("train", args.data_dir),
                                              args.val_split, args.seed)
    else:
        split = " images"
        images, labels = load_fashion_mnist("test", args.data_dir)
    data = BatchIter(images[:args.limit_test], labels[:args.limit_test], args.batch_size,
                     resize=info.resize)
    return data, split


def _lower_precision(net, info, args):
    """The INT8 or bfloat16 copy of the float32 ``net`` that ``--int8``/``--dtype`` ask for."""
    if args.int8:
        return _quantized(net, info, args)
    from .precision import mixed_precision

    lower = mixed_precision(net, args.dtype)
    lower.hybridize(static_alloc=True)
    return lower


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate saved weights on the Fashion-MNIST test set (or a run's validation split).
    """
    from .evaluate import compare, evaluate, format_report

    ctxs = parse_ctx(args.ctx)
    _check_lower_precision(args)
    if args.int8 and (len(ctxs) > 1 or ctxs[0].device_type != "cpu"):
        raise ValueError(f"--int8 runs on one CPU context (oneDNN), got --ctx {args.ctx}; "
                         f"drop --ctx.")
    if args.val_split:
        _check_held_out(args)
    net, info = _load(args, "--params", ctx=ctxs)
    net.hybridize(static_alloc=True, static_shape=True)
    data, split = _evaluation_data(args, info)
    tta = dict(flip=args.tta, shift=args.tta_shift)
    lower = args.int8 or args.dtype != "float32"
    classes = info.model.num_classes
    if lower:  # the lower precision's own accuracy, and how often it agrees with float32
        comparison = compare(net, _lower_precision(net, info, args), data, ctxs, classes, **tta)
        result = comparison.reference
    else:
        result = evaluate(net, data, ctxs, classes, **tta)
    views = " and ".join(w for w, on in (("flip", args.tta),
                                         (f"{args.tta_shift}-pixel shift", args.tta_shift)) if on)
    which = "val" if args.val_split else "test"
    print(f"{which} acc {result.accuracy:.4f} ({result.count}{split}, "
          f"ResNet-{info.model.depth}, resize {info.resize}"
          f"{f', with {views} test-time augmentation' if views else ''})")
    if lower:
        name, result = "int8" if args.int8 else args.dtype, comparison.lower
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
    """Export RUN_DIR/model.params for serving without this library. ONNX export runs the
    file in onnxruntime on real test images and reports the largest difference from MXNet's
    output.
    """
    from .export import export_onnx, export_symbol, onnx_difference

    _check_lower_precision(args)
    if args.dtype != "float32" and args.format != "symbol":
        raise ValueError(f"--dtype {args.dtype} exports as an MXNet symbol only (ONNX "
                         f"export is float32); use --format symbol, or drop --dtype.")
    net, info = _load(args, "--params", dtype=args.dtype)
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
    c, r = info.model.in_channels, info.resize
    print(f"wrote {path} (input 'data': N x {c} x {r} x {r}, N dynamic; "
          f"its metadata says how an image becomes it)")
    if args.check_images <= 0:
        return 0
    X, which = _check_images(args, info)
    diff, largest = onnx_difference(path, net, X)
    limit = 1e-4 * max(1.0, largest)  # float32 rounding grows with the outputs
    ok = diff <= limit
    print(f"onnxruntime vs MXNet on {X.shape[0]} {which}: max abs "
          f"difference {diff:.2e} ({'ok' if ok else 'FAILED'}: limit {limit:.1e}, 1e-4 of "
          f"the largest output, at least 1)")
    return 0 if ok else 1


def _check_images(args: argparse.Namespace, info):
    """The first ``--check-images`` test images as the net's input, and whose they are."""
    import numpy as np
    from mxnet import nd

    own = _own_data(args, info, "test_data")
    if own is None:
        from .data import load_fashion_mnist

        images, _ = load_fashion_mnist("test", args.data_dir)
        return info.prepare(images[:args.check_images]), "Fashion-MNIST test images"
    from .recordio import own_eval_batches

    X = []
    for batch, _ in own_eval_batches(own, info, min(args.check_images, 256)):
        X.append(batch.asnumpy())
        if sum(len(x) for x in X) >= args.check_images:
            break
    return nd.array(np.concatenate(X)[:args.check_images]), f"test images of {own}"


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
    _add_config_options(p, ARCHITECTURE)
    _add_config_options(p, ("dtype",), defaults=True)


def _cmd_predict(args: argparse.Namespace) -> int:
    """Read PNG/JPEG/BMP files of any size (or the images in directories), turn them into
    what training saw (gray, 28x28, the run's resize, [0, 1]) and print the top classes of
    each, one line per image.
    """
    from .predict import image_files, predict_files

    files = image_files(args.images)
    if not files:
        raise ValueError(f"no images in {' '.join(args.images)} (looked for .png, .jpg, "
                         f".jpeg and .bmp files).")
    net, info = _load(args, "--model", dtype=args.dtype)
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

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise ValueError("give the workers' command after --, e.g. "
                         "launch -n 2 -- train --kvstore dist_sync --epochs 1")
    if cmd[0] == "train" and not any(a.startswith("--kvstore") for a in cmd):
        cmd = cmd + ["--kvstore", "dist_sync"]
    return launch(cmd, args.num_workers, args.num_servers, timeout=args.timeout)


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
    import mxnet
    import numpy

    from . import cpu
    from .precision import bfloat16_case

    probe = cpu.kernel_isas()
    flags = cpu.cpu_flags()
    status = cpu.amx_status()
    threads = os.environ.get("OMP_NUM_THREADS")
    print(f"resnet_gluon {__version__}, mxnet {mxnet.__version__} "
          f"({probe.get('version', 'oneDNN version unknown')}), numpy {numpy.__version__}, "
          f"Python {sys.version.split()[0]}")
    print(f"cpu: {cpu.cpu_model() or platform.processor() or 'unknown'}, "
          f"{os.cpu_count()} logical cores")
    print("isa flags: " + (" ".join(f for f in cpu.ISA_FLAGS if f in flags) or "none of "
                           + ", ".join(cpu.ISA_FLAGS)))
    print(f"amx: {'on' if status.enabled else 'off'} ({status.reason})")
    print(f"threads: OMP_NUM_THREADS={threads}" if threads else
          f"threads: OMP_NUM_THREADS unset (oneDNN uses all {os.cpu_count()} cores)")
    print(f"bfloat16: {bfloat16_case()[1]}")
    print(f"oneDNN isa: {probe.get('isa', 'unknown (the probe did not run)')}")
    for dtype in ("float32", "bfloat16"):
        print(f"convolution {dtype}: {probe.get(f'conv_{dtype}', 'did not run')}")
    return 0


# --------------------------------------------------------------------------- main

def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` by default); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError) as err:
        # The library's errors already say what to do; no trace for them.
        return _fail(parser, args, 2, str(err))
    except MXNetError as err:  # MXNet's own words, without its C++ stack
        return _fail(parser, args, 1, f"MXNet: {mxnet_reason(err)}")
    except RuntimeError as err:  # TrainingDiverged, CheckpointError, uninitialised nets
        return _fail(parser, args, 1, str(err))
    except OSError as err:  # a full disk, a read-only directory: name the file and why
        return _fail(parser, args, 1, _os_error_line(err, args))
    except KeyboardInterrupt:
        sys.unraisablehook = _quiet_half_built(sys.unraisablehook)
        hint = ""
        if args.command == "train" and getattr(args, "out", None):
            hint = (f"; continue it with: python -m resnet_gluon train --out {args.out} "
                    f"--resume")
        return _fail(parser, args, 1, f"interrupted{hint}")
    except Exception:
        if os.environ.get("DMLC_ROLE") != "worker":
            raise
        traceback.print_exc()  # an unforeseen error: keep its trace, but leave now
        return _fail(parser, args, 1, "the worker failed (trace above)")


def _quiet_half_built(previous):
    """An unraisable-exception hook that drops what MXNet's ``__del__`` raises for an object
    whose constructor Ctrl-C interrupted (``'Symbol' object has no attribute 'handle'``,
    printed as a traceback when it is collected) and passes anything else to ``previous``."""
    def hook(unraisable):
        where = getattr(unraisable.object, "__module__", None) or ""
        if (isinstance(unraisable.exc_value, AttributeError) and where.startswith("mxnet")
                and "handle" in str(unraisable.exc_value)):
            return
        previous(unraisable)
    return hook


def _os_error_line(err: OSError, args: argparse.Namespace) -> str:
    where = f"{err.filename}: " if err.filename else ""
    line = f"{where}{err.strerror or err}."
    if err.errno == errno.ENOSPC:
        line += " Free some space"
        if args.command == "train":
            line += (f", then continue with --resume: the last checkpoint is kept "
                     f"(python -m resnet_gluon train --out {args.out} --resume)")
        line += "."
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        line += " Choose a directory you can write to."
    return line


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
