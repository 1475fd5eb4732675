"""The recipe: every knob that decides a run's numbers, each with its help and its check.

:class:`TrainConfig` is the one place a training option is declared.  Each
field carries, in its metadata, the words of its ``--help``, the
:class:`~resnet_gluon._checks.Rule` its values obey, and its command-line
flag; ``resnet_gluon.cli`` builds its options from them, so a new knob is
added here and nowhere else.  :func:`parse_ctx` reads device lists.
"""
import dataclasses
from numbers import Integral
from typing import Any, Dict, List, Optional, Sequence, Union

import mxnet as mx

from ._checks import (ANY_INT, FRACTION, NONNEGATIVE_INT, NONNEGATIVE_NUMBER, POSITIVE_INT,
                      POSITIVE_NUMBER, PROBABILITY, Rule)
from .model import RESNET_SPEC
from .precision import DTYPES

__all__ = ["TrainConfig", "ARCHITECTURE", "KVSTORES", "RECIPES", "RESIZE", "RESUME_MAY_DIFFER",
           "option_fields", "parse_ctx", "recipe"]

#: The fields that decide the net's architecture and input, shared by the
#: commands that load a trained net (evaluate, export, predict, shapes).
ARCHITECTURE = ("depth", "num_classes", "small_input", "resize")

#: Input sides a net can learn from: below 8 pixels a ResNet sees nothing; above 512 one
#: batch's first activations pass MXNet's 2**31-element limit.
RESIZE = Rule("an integer from 8 to 512 (28: native, 96: the book's)", Integral,
              lambda v: 8 <= v <= 512)

#: MXNet's kvstore types for one machine's devices and for the parameter server.
KVSTORES = ("device", "local", "nccl", "dist_sync", "dist_device_sync", "dist_async")

#: Fields a resumed run may change without losing exactness.
RESUME_MAY_DIFFER = frozenset({"keep_checkpoints"})


def _knob(default: Any, help: str, rule: Optional[Rule] = None, choices: Sequence = (),
          flag: Optional[str] = None, optional: bool = False, metavar: Optional[str] = None):
    """A :class:`TrainConfig` field: default, ``--help`` text, rule, choices, flag."""
    return dataclasses.field(default=default, metadata=dict(
        help=help, rule=rule, choices=tuple(choices), flag=flag, optional=optional,
        metavar=metavar))


@dataclasses.dataclass
class TrainConfig:
    """What decides the numbers a run produces (saved as ``config.json``).

    The defaults are the book's recipe: lr 0.05, plain SGD, batch 256, 5
    epochs, images resized to 96, Xavier initialisation.  Every field is
    checked on construction; ``dataclasses.fields(TrainConfig)`` carries each
    one's help text and rule (the command line is built from them).

    Attributes
    ----------
    depth, num_classes, small_input
        The net (see :func:`resnet_gluon.build_resnet`).
    lr : float
        Peak learning rate.
    batch_size : int
        Examples per optimisation step, over all devices and workers.
    epochs : int
    resize : int
        Side of the square input; 28 keeps the native size.
    momentum, wd : float
        SGD momentum and weight decay (0 and 0 in the book).
    lr_schedule : {'constant', 'cosine'}
        Cosine decays to 0 over the run, after ``warmup_epochs`` of linear warm-up.
    warmup_epochs : float
    label_smoothing : float
        Mass spread over all classes (0 in the book).
    augment : bool
        Random 2-pixel shifts and horizontal flips.
    ema : float
        Decay of an exponential moving average of the weights, which is then
        what each epoch evaluates and the run saves (0: none, the book).
    random_erasing : float
        Probability of erasing a random rectangle of each training image (0).
    seed : int
        Seeds initialisation (``mx.random``) and all data order and augmentation.
    limit_train, limit_test : int or None
        Use the first N examples only.
    val_split : int
        Training images held out as a validation set (before ``limit_train``),
        chosen by ``seed``; 0 (the book) holds none out.
    checkpoint_every : int
        Also checkpoint every N steps inside an epoch (0: only at epoch ends).
    keep_checkpoints : int
        How many checkpoints to keep (the newest ones).
    dtype : {'float32', 'bfloat16'}
        The compute type; weights, their updates and the saved files stay float32
        (see :mod:`resnet_gluon.precision`).
    """

    depth: int = _knob(18, "ResNet depth", choices=sorted(RESNET_SPEC))
    num_classes: int = _knob(10, "number of classes", POSITIVE_INT, flag="--classes")
    small_input: bool = _knob(False, "3x3 stride-1 stem without max-pool, as d2lzh.resnet18")
    lr: float = _knob(0.05, "peak learning rate", POSITIVE_NUMBER)
    batch_size: int = _knob(256, "batch size", POSITIVE_INT)
    epochs: int = _knob(5, "epochs", POSITIVE_INT)
    resize: int = _knob(96, "input side, 8 to 512; 28 = native", RESIZE)
    momentum: float = _knob(0.0, "SGD momentum", FRACTION)
    wd: float = _knob(0.0, "weight decay", NONNEGATIVE_NUMBER)
    lr_schedule: str = _knob("constant", "learning rate schedule",
                             choices=("constant", "cosine"))
    warmup_epochs: float = _knob(0.0, "linear warm-up epochs", NONNEGATIVE_NUMBER)
    label_smoothing: float = _knob(0.0, "label smoothing", FRACTION)
    augment: bool = _knob(False, "random 2-pixel shifts and horizontal flips")
    ema: float = _knob(0.0, "average the weights (exponential moving average, decay D such "
                            "as 0.999), and evaluate and save the average; 0: none", FRACTION,
                       metavar="D")
    random_erasing: float = _knob(0.0, "erase a random rectangle of each training image "
                                       "with probability P", PROBABILITY, metavar="P")
    seed: int = _knob(0, "seed of init, order and augmentation", ANY_INT)
    limit_train: Optional[int] = _knob(None, "use the first N training examples",
                                       POSITIVE_INT, optional=True, metavar="N")
    limit_test: Optional[int] = _knob(None, "use the first N test examples", POSITIVE_INT,
                                      optional=True, metavar="N")
    val_split: int = _knob(0, "hold out N training images (a seeded choice) and report "
                              "their accuracy each epoch; 0: none", NONNEGATIVE_INT,
                           metavar="N")
    checkpoint_every: int = _knob(0, "also checkpoint every N steps; 0: at epoch ends only",
                                  NONNEGATIVE_INT, metavar="N")
    keep_checkpoints: int = _knob(2, "how many of the newest checkpoints to keep",
                                  POSITIVE_INT, metavar="N")
    dtype: str = _knob("float32", "compute type; bfloat16 keeps float32 weights and runs on "
                                  "the CPU's AMX tiles where it has them", choices=DTYPES)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if value is None and meta["optional"]:
                continue
            if meta["rule"] is not None:
                meta["rule"].check(f.name, value)
            elif meta["choices"] and (isinstance(value, bool) or value not in meta["choices"]):
                raise ValueError(f"{f.name} must be one of {list(meta['choices'])}, "
                                 f"got {value!r}.")
            elif isinstance(f.default, bool) and not isinstance(value, bool):
                raise TypeError(f"{f.name} must be True or False, got {value!r}.")
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs={self.epochs}], got "
                             f"{self.warmup_epochs!r}.")

    def to_dict(self) -> Dict[str, Any]:
        """The config as plain JSON-able values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "TrainConfig":
        """Rebuild a config from :meth:`to_dict` output, naming unknown keys."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(f"unknown training options {unknown}; known: {sorted(fields)}.")
        return cls(**values)

    def differences(self, other: "TrainConfig", ignore=RESUME_MAY_DIFFER) -> Dict[str, tuple]:
        """``{field: (self's value, other's value)}`` where the two differ."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k] and k not in ignore}


#: Named recipes: the values each sets over :class:`TrainConfig`'s defaults.
#:
#: ``book``: the defaults, the book's numbers.  ``fast``: time to accuracy on two CPU
#: cores (16 epochs of the 60,000 images in 52-54 minutes on a 2-core Sapphire Rapids
#: Xeon, AMX on); its test-time augmentation was chosen on a 5,000-image validation
#: split; see benchmarks/results/README.md.
#: bfloat16 pays only where the CPU has AMX; elsewhere add ``--dtype float32``.
RECIPES: Dict[str, Dict[str, Any]] = {
    "book": {},
    "fast": dict(resize=64, batch_size=128, lr=0.1, momentum=0.9, wd=5e-4,
                 lr_schedule="cosine", warmup_epochs=1.0, label_smoothing=0.1, augment=True,
                 ema=0.999, dtype="bfloat16", epochs=16),
}


def recipe(name: str = "book", **overrides: Any) -> TrainConfig:
    """The named recipe's config, with ``overrides`` (field values) over its values.

    Examples
    --------
    >>> recipe("fast").resize
    64
    >>> recipe("fast", epochs=2, dtype="float32").epochs
    2
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known: {sorted(RECIPES)}.")
    return TrainConfig.from_dict({**TrainConfig().to_dict(), **RECIPES[name], **overrides})


def option_fields(names: Optional[Sequence[str]] = None) -> List[dataclasses.Field]:
    """The fields of :class:`TrainConfig` (all, or those ``names``), in declaration order."""
    fields = dataclasses.fields(TrainConfig)
    return [f for f in fields if names is None or f.name in names]


def parse_ctx(text: Union[str, Sequence[mx.Context], mx.Context, None]) -> List[mx.Context]:
    """``'cpu:0,cpu:1'`` or ``'gpu:0,gpu:1'`` (or contexts) -> a list of contexts.

    Raises
    ------
    ValueError
        A part is not ``cpu:N`` / ``gpu:N``, or a GPU is asked for that is not there.
    """
    if text is None:
        return [mx.cpu()]
    if isinstance(text, mx.Context):
        return [text]
    if not isinstance(text, str):
        return list(text)
    ctxs = []
    for part in text.split(","):
        kind, _, index = part.strip().partition(":")
        if kind not in ("cpu", "gpu") or not (index or "0").isdigit():
            raise ValueError(f"bad context {part!r} in {text!r}: expected cpu:N or gpu:N, "
                             f"comma-separated, e.g. cpu:0,cpu:1 or gpu:0,gpu:1.")
        i = int(index or 0)
        if kind == "gpu" and i >= mx.context.num_gpus():
            raise ValueError(f"gpu:{i} asked for but this MXNet sees "
                             f"{mx.context.num_gpus()} GPU(s); use cpu:0, or install a "
                             f"CUDA build of MXNet (see the README).")
        ctxs.append(mx.gpu(i) if kind == "gpu" else mx.cpu(i))
    if len(set(ctxs)) != len(ctxs):
        raise ValueError(f"context listed twice in {text!r}.")
    return ctxs
