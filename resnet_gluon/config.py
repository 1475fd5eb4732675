"""The recipe: every knob that decides a run's numbers, each with its help and its check.

:class:`TrainConfig` is the one place a training option is declared; the net's
architecture is its ``model`` field, a :class:`~resnet_gluon.model.ResNetSpec`
(declared there).  Each field carries, in its metadata, the words of its
``--help``, the :class:`~resnet_gluon._checks.Rule` its values obey, and its
command-line flag; ``resnet_gluon.cli`` builds its options from them
(:func:`option_fields`), so a new knob is added to one record and nowhere else.
:func:`parse_ctx` reads device lists.
"""
import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Union

import mxnet as mx

from ._checks import (ANY_INT, FRACTION, NONNEGATIVE_INT, NONNEGATIVE_NUMBER, POSITIVE_INT,
                      POSITIVE_NUMBER, PROBABILITY, RESIZE, TEXT, check_fields, knob)
from .model import ResNetSpec
from .precision import DTYPES

__all__ = ["TrainConfig", "ARCHITECTURE", "KVSTORES", "RECIPES", "RESIZE", "RESUME_MAY_DIFFER",
           "option_fields", "parse_ctx", "recipe"]

#: The architecture's command-line fields (the record's, but for what the data decides)
#: and the input side: what the commands that load a trained net (evaluate, export,
#: predict) may override of a run's config.json.
ARCHITECTURE = tuple(f.name for f in dataclasses.fields(ResNetSpec)
                     if f.metadata["option"]) + ("resize",)


#: MXNet's kvstore types for one machine's devices and for the parameter server.
KVSTORES = ("device", "local", "nccl", "dist_sync", "dist_device_sync", "dist_async")

#: Fields a resumed run may change without losing exactness.
RESUME_MAY_DIFFER = frozenset({"keep_checkpoints", "test_every", "recipe"})


@dataclasses.dataclass
class TrainConfig:
    """What decides the numbers a run produces (saved as ``config.json``).

    The defaults are the book's recipe: lr 0.05, plain SGD, batch 256, 5
    epochs, images resized to 96, Xavier initialisation.  Every field is
    checked on construction; ``dataclasses.fields(TrainConfig)`` carries each
    one's help text and rule (the command line is built from them).

    Attributes
    ----------
    model : ResNetSpec
        The net (depth, classes, input channels, stem).  ``to_dict`` writes its fields
        flat beside the others, ``from_dict`` reads them back (``depth=34`` and so on).
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
    test_every : int
        Evaluate the test set after every N-th epoch and after the last; 0: after the
        last only (a run whose test set is read once, at the end).
    dtype : {'float32', 'bfloat16'}
        The compute type; weights, their updates and the saved files stay float32
        (see :mod:`resnet_gluon.precision`).
    init : str or None
        Start from trained weights (fine-tuning, :func:`resnet_gluon.finetune.init_from`):
        ``'pretrained'`` (the shipped ones) or a run's ``model.params``; None: Xavier.
    lr_body : float
        With ``init``: the learning-rate factor of every layer but the output one
        (0 freezes them).
    recipe : str
        The named recipe the values started from (:func:`recipe`), for the reader of
        config.json; the values are what counts.
    """

    model: ResNetSpec = dataclasses.field(default_factory=ResNetSpec)
    lr: float = knob(0.05, "peak learning rate", POSITIVE_NUMBER)
    batch_size: int = knob(256, "batch size", POSITIVE_INT)
    epochs: int = knob(5, "epochs", POSITIVE_INT)
    resize: int = knob(96, "input side, 8 to 512; 28 = native", RESIZE)
    momentum: float = knob(0.0, "SGD momentum", FRACTION)
    wd: float = knob(0.0, "weight decay", NONNEGATIVE_NUMBER)
    lr_schedule: str = knob("constant", "learning rate schedule",
                            choices=("constant", "cosine"))
    warmup_epochs: float = knob(0.0, "linear warm-up epochs", NONNEGATIVE_NUMBER)
    label_smoothing: float = knob(0.0, "label smoothing", FRACTION)
    augment: bool = knob(False, "random 2-pixel shifts and horizontal flips")
    ema: float = knob(0.0, "average the weights (exponential moving average, decay D such "
                           "as 0.999), and evaluate and save the average; 0: none", FRACTION,
                      metavar="D")
    random_erasing: float = knob(0.0, "erase a random rectangle of each training image "
                                      "with probability P", PROBABILITY, metavar="P")
    seed: int = knob(0, "seed of init, order and augmentation", ANY_INT)
    limit_train: Optional[int] = knob(None, "use N training examples (Fashion-MNIST's first "
                                      "N; of a folder or .rec, a seeded sample stratified by "
                                      "class)", POSITIVE_INT, optional=True, metavar="N")
    limit_test: Optional[int] = knob(None, "use N test examples (Fashion-MNIST's first N; of "
                                     "a folder or .rec, a seeded sample stratified by class)",
                                     POSITIVE_INT, optional=True, metavar="N")
    val_split: int = knob(0, "hold out N training images (a seeded choice) and report "
                             "their accuracy each epoch; 0: none", NONNEGATIVE_INT,
                          metavar="N")
    checkpoint_every: int = knob(0, "also checkpoint every N steps; 0: at epoch ends only",
                                 NONNEGATIVE_INT, metavar="N")
    keep_checkpoints: int = knob(2, "how many of the newest checkpoints to keep",
                                 POSITIVE_INT, metavar="N")
    test_every: int = knob(1, "test accuracy after every N-th epoch and the last; 0: after "
                              "the last only (the test set read once)", NONNEGATIVE_INT,
                           metavar="N")
    dtype: str = knob("float32", "compute type; bfloat16 keeps float32 weights; native on "
                                 "AMX or AVX512-BF16 CPUs, emulated (slower) on other AVX-512 "
                                 "ones, refused without AVX-512: see 'info'", choices=DTYPES)
    init: Optional[str] = knob(None, "start from trained weights: 'pretrained' (the shipped "
                                     "ones) or RUN_DIR/model.params; a new output layer when "
                                     "the classes differ, a gray stem widened for colour",
                               TEXT, optional=True, metavar="WEIGHTS")
    lr_body: float = knob(1.0, "with --init: learning-rate factor of all but the output "
                               "layer; 0 freezes them", NONNEGATIVE_NUMBER, metavar="F")
    recipe: str = knob("book", "the named recipe the values started from", TEXT,
                       option=False)

    def __post_init__(self):
        if not isinstance(self.model, ResNetSpec):
            raise TypeError(f"model must be a ResNetSpec, got {self.model!r}; pass "
                            f"model=ResNetSpec(depth=..., ...), or use TrainConfig.from_dict "
                            f"with flat keys (depth=34).")
        check_fields(self)
        if self.lr_body != 1.0 and self.init is None:
            raise ValueError(f"lr_body {self.lr_body!r} scales the learning rate of the "
                             f"layers --init loads; give --init pretrained (or a run's "
                             f"model.params), or drop --lr-body.")
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs={self.epochs}], got "
                             f"{self.warmup_epochs!r}.")

    def to_dict(self) -> Dict[str, Any]:
        """The config as flat, plain JSON-able values: the architecture's fields first."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**values.pop("model").to_dict(), **values}

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "TrainConfig":
        """Rebuild a config from flat values (:meth:`to_dict`'s, a config.json's), naming
        unknown keys; the architecture's keys make its ``model``."""
        spec_keys = {f.name for f in dataclasses.fields(ResNetSpec)}
        known = spec_keys | {f.name for f in dataclasses.fields(cls)} - {"model"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training options {unknown}; known: {sorted(known)}.")
        rest = {k: v for k, v in values.items() if k not in spec_keys}
        return cls(model=ResNetSpec.from_dict(values), **rest)

    def differences(self, other: "TrainConfig", ignore=RESUME_MAY_DIFFER) -> Dict[str, tuple]:
        """``{field: (self's value, other's value)}`` where the two differ."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k] and k not in ignore}


#: Named recipes: the values each sets over :class:`TrainConfig`'s defaults.
#:
#: ``book``: the defaults, the book's numbers.  ``fast``: time to accuracy on two CPU
#: cores (16 epochs of the 60,000 images in 52-54 minutes on a 2-core Sapphire Rapids
#: Xeon, AMX on); its test-time augmentation was chosen on a 5,000-image validation
#: split; see docs/accuracy.md.
#: bfloat16 is native where the CPU has AMX or AVX512-BF16 (``python -m resnet_gluon info``);
#: elsewhere oneDNN emulates it, slower than float32, and without AVX-512 it cannot run: add
#: ``--dtype float32`` there.
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
    return TrainConfig.from_dict({**TrainConfig().to_dict(), **RECIPES[name], "recipe": name,
                                  **overrides})


def option_fields(names: Optional[Sequence[str]] = None, record: Optional[type] = None
                  ) -> List[dataclasses.Field]:
    """The command-line fields (all, or those ``names``), in declaration order: the
    architecture's (:class:`~resnet_gluon.model.ResNetSpec`), then the recipe's; or those
    of another record of knobs (:class:`~resnet_gluon.inputs.DataRef`)."""
    fields = (dataclasses.fields(record) if record is not None else
              dataclasses.fields(ResNetSpec) + dataclasses.fields(TrainConfig)[1:])
    return [f for f in fields if f.metadata.get("option") and (names is None or f.name in names)]


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
                             f"CUDA build of MXNet (see the README: Installing).")
        ctxs.append(mx.gpu(i) if kind == "gpu" else mx.cpu(i))
    if len(set(ctxs)) != len(ctxs):
        raise ValueError(f"context listed twice in {text!r}.")
    return ctxs
