"""Command line: ``python -m resnet_gluon`` / ``resnet-gluon``.

A thin skin over the library's functions: it parses arguments, calls them
and prints what they return.  Nothing here is needed from a script.
"""
import argparse
import sys
from typing import List, Optional, Tuple

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
    return parser


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
    except (ValueError, TypeError, RuntimeError) as err:
        # The library's errors already say what to do; no trace for them.
        parser.exit(2, f"{parser.prog} {args.command}: error: {err}\n")
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
