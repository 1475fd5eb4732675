"""Argument and input checks, each rule written once.

Every message says what was given, what was expected and how to fix it, so a
user never has to read an MXNet shape-inference trace to find a typo.  A
:class:`Rule` serves both the API (``rule.check(name, value)``) and the
command line (a rule is its own argparse ``type``), so a limit and its wording
live in one place.  :func:`knob` declares a dataclass field with its help, rule
and flag; :func:`check_fields` checks them all, and :func:`add_knobs` makes them
command-line options, so a record (the architecture, the recipe, the data) states
each rule once and the command line is built from the same declarations.
"""
import argparse
import dataclasses
import errno
import hashlib
import math
import re
import sys
import unicodedata
from numbers import Integral, Real
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
from mxnet import ndarray

__all__ = ["Rule", "POSITIVE_INT", "NONNEGATIVE_INT", "ANY_INT", "POSITIVE_NUMBER",
           "NONNEGATIVE_NUMBER", "FRACTION", "PROBABILITY", "RESIZE", "TEXT", "knob",
           "add_knobs", "check_fields", "check_positive_int", "check_in_channels",
           "first_uninitialized", "mxnet_reason", "check_input", "check_channels_first", "sha256",
           "error_exit", "printable"]


class Rule:
    """A limit on one kind of value, with the words that explain it.

    Parameters
    ----------
    what : str
        The expected value in words ("a positive integer"), used in every message.
    kind : type
        ``Integral`` or ``Real``; ``bool`` never counts as either.
    ok : callable
        True for the values of ``kind`` that are allowed.
    message : str, optional
        The API's ``ValueError`` text, a format of ``name``, ``what`` and ``value``.
    """

    def __init__(self, what: str, kind: type, ok: Callable[[Any], bool],
                 message: str = "{name} must be {what}, got {value!r}."):
        self.what, self.kind, self.ok, self.message = what, kind, ok, message

    def check(self, name: str, value: Any, fix: str = "") -> Any:
        """Return ``value`` if the rule allows it.

        Raises
        ------
        TypeError
            ``value`` is not of the rule's kind (``bool`` is not a number here).
        ValueError
            ``value`` is of the kind but out of bounds.
        """
        hint = f" {fix}" if fix else ""
        if isinstance(value, bool) or not isinstance(value, self.kind):
            raise TypeError(f"{name} must be {self.what}, got {value!r} "
                            f"({type(value).__name__}).{hint}")
        if not self.ok(value):
            raise ValueError(self.message.format(name=name, what=self.what, value=value) + hint)
        return value

    def __call__(self, text: str) -> Any:
        """The value a command-line word stands for: a rule is its own argparse ``type``.

        Raises
        ------
        argparse.ArgumentTypeError
            Saying what was expected; argparse prints it as the option's error.
        """
        try:
            value = text if self.kind is str else int(text) if self.kind is Integral \
                else float(text)
        except ValueError:
            value = None
        if value is None or not self.ok(value):
            raise argparse.ArgumentTypeError(f"expected {self.what}, got {text!r}")
        return value


POSITIVE_INT = Rule("a positive integer", Integral, lambda v: v >= 1)
NONNEGATIVE_INT = Rule("a non-negative integer", Integral, lambda v: v >= 0)
ANY_INT = Rule("an integer", Integral, lambda v: True)
POSITIVE_NUMBER = Rule("a number > 0", Real, lambda v: 0 < v < math.inf)
NONNEGATIVE_NUMBER = Rule("a number >= 0", Real, lambda v: 0 <= v < math.inf)
FRACTION = Rule("a number in [0, 1)", Real, lambda v: 0 <= v < 1)
TEXT = Rule("a non-empty word", str, lambda v: bool(v.strip()))
#: Input sides a net can learn from: below 8 pixels a ResNet sees nothing; above 512 one
#: batch's first activations pass MXNet's 2**31-element limit.
RESIZE = Rule("an integer from 8 to 512 (28: native, 96: the book's)", Integral,
              lambda v: 8 <= v <= 512)
PROBABILITY = Rule("a probability in [0, 1]", Real, lambda v: 0 <= v <= 1,
                   message="{name} is a probability, in [0, 1]; got {value!r}.")


def knob(default: Any, help: str, rule: Optional[Rule] = None, choices: Sequence = (),
         flag: Optional[str] = None, optional: bool = False, metavar: Optional[str] = None,
         option: bool = True):
    """A dataclass field with its ``--help`` text, rule or choices, and command-line flag.

    ``optional`` lets the value be None; ``option=False`` keeps the field off
    the command line (a value the data or the run decides).
    """
    return dataclasses.field(default=default, metadata=dict(
        help=help, rule=rule, choices=tuple(choices), flag=flag, optional=optional,
        metavar=metavar, option=option))


def add_knobs(parser, fields: Iterable[dataclasses.Field], defaults: bool = False,
              shown: Optional[str] = None) -> None:
    """Add :func:`knob` ``fields`` to an argparse ``parser`` (or group) as options.

    With ``defaults`` an option left out takes the field's default; without, it is None,
    so the caller can tell "not given" (a run's saved value) from "given".  ``shown`` is
    what the help says of the default instead of the field's.
    """
    for f in fields:
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
            kwargs.update(type=meta["rule"], metavar=meta["metavar"])
        parser.add_argument(meta["flag"] or "--" + f.name.replace("_", "-"), **kwargs)


def check_fields(record: Any) -> None:
    """Check every :func:`knob` field of a dataclass instance against its rule or choices.

    Raises
    ------
    TypeError, ValueError
        The first field whose value breaks its rule, named with what was expected.
    """
    for f in dataclasses.fields(record):
        value, meta = getattr(record, f.name), f.metadata
        if "help" not in meta or value is None and meta["optional"]:
            continue
        if meta["rule"] is not None:
            meta["rule"].check(f.name, value)
        elif meta["choices"] and (isinstance(value, bool) or value not in meta["choices"]):
            raise ValueError(f"{f.name} must be one of {list(meta['choices'])}, got {value!r}.")
        elif isinstance(f.default, bool) and not isinstance(value, bool):
            raise TypeError(f"{f.name} must be True or False, got {value!r}.")


def check_positive_int(name: str, value, fix: str = "") -> int:
    """Return ``value`` if it is a positive integer, else raise (see :data:`POSITIVE_INT`).

    Raises
    ------
    TypeError
        ``value`` is not an integer (``bool`` counts as not an integer).
    ValueError
        ``value`` is an integer below 1.
    """
    return int(POSITIVE_INT.check(name, value, fix))


def check_in_channels(value) -> int:
    """Return ``value`` if it is a valid ``in_channels`` (0: infer at the first forward)."""
    return int(NONNEGATIVE_INT.check(
        "in_channels", value, "Use 1 for gray images, 3 for RGB, 0 to infer it at the "
                              "first forward."))


def first_uninitialized(params: Iterable, need_data: bool = False) -> Optional[Any]:
    """The first parameter that ``initialize()`` has not reached, or None.

    Parameters
    ----------
    params : iterable of mxnet.gluon.Parameter
    need_data : bool, default False
        Also count a parameter whose shape is still deferred to the first
        forward (initialised, but holding no data yet) as not initialised.
    """
    from mxnet.gluon.parameter import DeferredInitializationError

    for p in params:
        try:
            p.list_data() if need_data else p.list_ctx()
        except (RuntimeError, DeferredInitializationError):
            return p
    return None


def mxnet_reason(err: Exception) -> str:
    """The one line of an MXNet error that says what went wrong (not its C++ trace)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    last = lines[-1] if lines else type(err).__name__
    last = re.sub(r"^\w*Error: ", "", last)
    match = re.match(r"Check failed: .*?\)\s*:\s*(.+)", last)
    return match.group(1) if match else last


def check_input(x, expected_channels: int, dtype: Optional[np.dtype], what: str) -> None:
    """Validate a batch before it reaches MXNet's operators.

    Parameters
    ----------
    x : object
        The input the block was called with.
    expected_channels : int
        The channel count the block's first layer holds; 0 while it is still
        unknown (deferred initialisation), in which case any count is accepted.
    dtype : numpy.dtype or None
        The dtype of the block's parameters, when known.
    what : str
        How to name the block in the message (``"ResNet-18"``, ``"Residual"``).

    Raises
    ------
    TypeError
        ``x`` is not an NDArray, or is not floating point, or its float type
        differs from the parameters'.
    ValueError
        ``x`` is not 4-D (N, C, H, W), or has the wrong channel count.
    """
    if not isinstance(x, ndarray.NDArray):
        raise TypeError(
            f"{what} expects an mxnet NDArray of shape (N, C, H, W), got "
            f"{type(x).__name__}. Wrap it first: mx.nd.array(x, dtype='float32').")
    if x.ndim != 4:
        fix = (" For a single image add the batch axis: x.expand_dims(0)."
               if x.ndim == 3 else
               " Reshape it to (N, C, H, W), e.g. x.reshape((-1, 1, 28, 28)) for"
               " Fashion-MNIST.")
        raise ValueError(
            f"{what} expects a 4-D batch (N, C, H, W), got a {x.ndim}-D input of "
            f"shape {x.shape}.{fix}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"{what} expects a floating-point input, got dtype "
            f"{np.dtype(x.dtype).name}. Convert it and scale the pixels: "
            f"x.astype('float32') / 255.")
    if dtype is not None and np.dtype(x.dtype) != np.dtype(dtype):
        raise TypeError(
            f"{what} has {np.dtype(dtype).name} parameters but got a "
            f"{np.dtype(x.dtype).name} input. Cast the input with "
            f"x.astype('{np.dtype(dtype).name}'), or the net with "
            f"net.cast('{np.dtype(x.dtype).name}').")
    if expected_channels and x.shape[1] != expected_channels:
        raise ValueError(
            f"{what} was initialised for {expected_channels}-channel input but got "
            f"{x.shape[1]} channels (input shape {x.shape}). Feed "
            f"{expected_channels}-channel images, or build a new net for "
            f"{x.shape[1]} channels (in_channels={x.shape[1]}).")


def check_channels_first(x, what: str) -> None:
    """Refuse a batch that looks channels-last, (N, H, W, C), where (N, C, H, W) is meant.

    Called for the first batch of a net whose input channels are still to be inferred:
    such a batch would fix them at its height for good (``nd.zeros((1, 28, 28, 1))`` would
    make a 28-channel net).  It looks channels-last when its last axis is a pixel's
    channel count (1, 3 or 4) and its second axis is larger.
    """
    _, c, _, w = x.shape
    if w in (1, 3, 4) and c > 4:
        raise ValueError(
            f"{what} got a batch of shape {x.shape}, which looks channels-last (N, H, W, C); "
            f"it would take {c} input channels. Give (N, C, H, W): "
            f"x.transpose((0, 3, 1, 2)). If it really has {c} channels, build the net with "
            f"in_channels={c}.")


def printable(text: str) -> str:
    """``text`` for a plain line: control and format characters written as escapes (a class
    or file name holding a newline would split predict's line in two)."""
    return "".join(c if unicodedata.category(c)[0] != "C" else
                   c.encode("unicode_escape").decode("ascii") for c in text)


def sha256(path: str) -> str:
    """The SHA-256 of a file's bytes, as hex (to check a file is the one written)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def error_exit(err: BaseException, command: str, out: Optional[str] = None
               ) -> Optional[Tuple[int, str]]:
    """The exit code and the one line a command that ended with ``err`` prints (``out``:
    its run directory, for the hint to resume), or None for an unforeseen error, whose
    trace is worth keeping."""
    from mxnet.base import MXNetError

    if isinstance(err, (ValueError, TypeError, FileNotFoundError, FileExistsError,
                        ImportError)):
        return 2, str(err)
    if isinstance(err, MXNetError):  # MXNet's own words, without its C++ stack
        return 1, f"MXNet: {mxnet_reason(err)}"
    if isinstance(err, RuntimeError):  # TrainingDiverged, CheckpointError, uninitialised nets
        return 1, str(err)
    resume = (f"python -m resnet_gluon train --out {out} --resume"
              if command == "train" and out else None)
    if isinstance(err, OSError):  # a full disk, a read-only directory: the file and why
        line = f"{err.filename + ': ' if err.filename else ''}{err.strerror or err}."
        if err.errno == errno.ENOSPC:
            line += (" Free some space" + (f", then continue with --resume: the last "
                                           f"checkpoint is kept ({resume})" if resume else "")
                     + ".")
        elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            line += " Choose a directory you can write to."
        return 1, line
    if isinstance(err, KeyboardInterrupt):
        sys.unraisablehook = _quiet_half_built(sys.unraisablehook)
        return 1, "interrupted" + (f"; continue it with: {resume}" if resume else "")
    return None


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
