"""A trained model: its architecture record, the input it takes, its weights; one loader.

:class:`ModelInfo` is what a user of a trained net must know besides its weights: the
architecture (a :class:`~resnet_gluon.model.ResNetSpec`), the input record (a
:class:`~resnet_gluon.inputs.InputSpec`: kind, side, channels, normalisation) and its class
names.  A run's ``config.json``, an export's
``PREFIX-info.json`` and the shipped weights' JSON all hold it, flat.

:func:`load_model` is the one way in, whatever the weights' source:

- ``None``: the weights shipped in the package (:func:`load_pretrained`);
- ``RUN_DIR/model.params`` or a checkpoint's ``net.params``, with the run's ``config.json``
  found beside it (:func:`load_trained`);
- the ``PREFIX`` of an exported symbol model (:func:`load_symbol`).

Each builds the net from the saved record (``ResNetSpec.build``), and the compute type is
applied here, once, as the net is prepared: float32 gives the layered net (to look into, to
fine-tune from; :func:`resnet_gluon.inference.for_inference` makes its fastest inference
graph), ``dtype='bfloat16'`` that inference graph in bf16 (BatchNorm folded, oneDNN's fusions).
"""
import dataclasses
import json
import os
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import mxnet as mx
import numpy as np
from mxnet import gluon, nd

from . import weights
from ._checks import mxnet_reason
from .config import ARCHITECTURE, TrainConfig, parse_ctx
from .data import CLASS_NAMES
from .inputs import PREPROCESS, InputSpec
from .model import ResNetSpec
from .inference import for_inference
from .precision import check_dtype
from .run import find_run_config, read_json

__all__ = ["ModelInfo", "PREPROCESS", "INFO_SUFFIX", "SYMBOL_SUFFIX", "PARAMS_SUFFIX", "load_model",
           "load_trained", "load_symbol", "load_pretrained", "pretrained_info"]

#: The files of an exported model: PREFIX-symbol.json, PREFIX-0000.params, PREFIX-info.json.
INFO_SUFFIX, SYMBOL_SUFFIX, PARAMS_SUFFIX = "-info.json", "-symbol.json", "-0000.params"

Source = Optional[str]
#: Where to load weights: a Context, a list of them, or words such as "cpu:0" (default cpu).
Contexts = Union[str, mx.Context, Sequence[mx.Context], None]


@dataclasses.dataclass
class ModelInfo:
    """A trained net as a user must know it besides its weights: architecture + input
    record + class names.

    Attributes
    ----------
    model : ResNetSpec
        The architecture.
    inputs : InputSpec
        How an image becomes the input: kind, side, channels, normalisation.
    classes : list of str
        Class names, in output order.
    """

    model: ResNetSpec = dataclasses.field(default_factory=ResNetSpec)
    inputs: InputSpec = dataclasses.field(default_factory=InputSpec)
    classes: List[str] = dataclasses.field(default_factory=lambda: list(CLASS_NAMES))

    def __post_init__(self):
        if not isinstance(self.model, ResNetSpec):
            raise TypeError(f"model must be a ResNetSpec, got {self.model!r}.")
        if not isinstance(self.inputs, InputSpec):
            raise TypeError(f"inputs must be an InputSpec, got {self.inputs!r}.")
        if self.model.in_channels != self.inputs.channels:
            raise ValueError(f"the net takes {self.model.in_channels} input channels but its "
                             f"input record says {self.inputs.channels}; they must agree.")
        if not (isinstance(self.classes, list) and all(isinstance(c, str) for c in self.classes)):
            raise ValueError(f"classes must be a list of names, got {self.classes!r}.")

    # The input record's facts, read through the info as users always have.
    resize = property(lambda self: self.inputs.resize, doc="Side of the square input.")
    preprocess = property(lambda self: self.inputs.kind, doc="The input record's kind.")
    mean = property(lambda self: self.inputs.mean, doc="Per-channel mean, or None.")
    std = property(lambda self: self.inputs.std, doc="Per-channel std, or None.")
    normalize = property(lambda self: self.inputs.normalize, doc="(mean, std) or None.")
    input_shape = property(lambda self: self.inputs.shape,
                           doc="``(1, in_channels, resize, resize)``: float32, NCHW.")

    def describe_input(self) -> str:
        """The input in words, for the reader of an info file."""
        return self.inputs.describe()

    def prepare(self, images: np.ndarray) -> nd.NDArray:
        """The net's input from uint8 images as training kept them (see
        :meth:`resnet_gluon.inputs.InputSpec.prepare`)."""
        return self.inputs.prepare(images)

    def to_dict(self) -> Dict[str, Any]:
        """Flat, plain JSON-able values (the architecture's fields first), with a note on
        the input for a reader of the file."""
        return {**self.model.to_dict(), **self.inputs.to_dict(), "classes": list(self.classes),
                "input": self.describe_input()}

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "ModelInfo":
        """The info in flat ``values`` (a run's config.json, an info file); other keys are
        ignored.  Without class names of the right count (a run with other labels than
        Fashion-MNIST's), the classes are named by their numbers."""
        model = ResNetSpec.from_dict(values)
        classes = values.get("classes", list(CLASS_NAMES))
        if isinstance(classes, list) and len(classes) != model.num_classes:
            classes = [str(i) for i in range(model.num_classes)]
        return cls(model, InputSpec.from_dict(values), classes)

    @classmethod
    def read(cls, path: str, values: Optional[Dict[str, Any]] = None) -> "ModelInfo":
        """The info in a JSON file (a run's config.json, an export's -info.json), with
        ``values`` over it; errors name the file."""
        merged = dict(read_json(path), **(values or {}))
        try:
            return cls.from_dict(merged)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: {err} Correct the file, or pass the settings as "
                             f"options.") from None

    @classmethod
    def from_config(cls, config: TrainConfig) -> "ModelInfo":
        """The net a run of ``config`` trains on Fashion-MNIST."""
        return cls.from_dict(config.to_dict())

    def setting(self, name: str) -> Any:
        """One of :data:`~resnet_gluon.config.ARCHITECTURE`'s settings by name."""
        return self.resize if name == "resize" else getattr(self.model, name)


def _check_overrides(overrides: Dict[str, Any]) -> Dict[str, Any]:
    """The overrides given (None: not given), refusing a name that is not a setting."""
    unknown = sorted(set(overrides) - set(ARCHITECTURE))
    if unknown:
        raise TypeError(f"unknown settings {unknown}; a trained net's settings are "
                        f"{list(ARCHITECTURE)}.")
    return {k: v for k, v in overrides.items() if v is not None}


# --------------------------------------------------------------------------- one loader

def load_model(source: Source = None, ctx: Contexts = None,
               log: Optional[Callable[[str], None]] = None, dtype: str = "float32",
               **overrides: Any) -> Tuple[gluon.HybridBlock, ModelInfo]:
    """A trained net, hybridized, and its :class:`ModelInfo`, from any source.

    Parameters
    ----------
    source : str, optional
        None: the weights shipped in the package.  A params file: a run's
        ``model.params`` or a checkpoint's ``net.params``.  Else the ``PREFIX`` of an
        exported symbol model (``PREFIX-symbol.json`` exists).
    ctx : Context or list of Context, optional
        Where to load the weights (default ``cpu``).
    log : callable, optional
        Receives the warning given when a params file has no ``config.json``.
    dtype : {'float32', 'bfloat16'}, default 'float32'
        float32: the layered net (``for_inference(net)`` is its fastest inference graph).
        bfloat16: that inference graph in bf16 (:func:`resnet_gluon.inference.for_inference`:
        BatchNorm folded into the convolutions, then oneDNN's fusions), for inference only.
    **overrides
        depth, num_classes, small_input, resize: over a run's config.json or an export's
        info file (not for the shipped weights, whose net is fixed).

    Raises
    ------
    FileNotFoundError
        ``source`` names nothing loadable.
    ValueError
        The weights do not fit the settings, or a file is corrupt; the message says which.
    """
    check_dtype(dtype)  # before any work
    given = _check_overrides(overrides)
    if source is None:
        if given:
            raise ValueError(f"{next(iter(given))} describes the net of a weights file; the "
                             f"shipped weights' net is fixed. Load a run's model.params to "
                             f"choose the settings.")
        net, info = load_pretrained(ctx=ctx, dtype=dtype)
    elif os.path.isfile(source + SYMBOL_SUFFIX):
        net, info = _load_export(source, ctx, dtype, given)
    elif os.path.isfile(source):
        net, info = load_trained(source, ctx=ctx, log=log, dtype=dtype, **given)
    else:
        raise FileNotFoundError(
            f"{source}: neither a params file nor the prefix of an exported model "
            f"({source}{SYMBOL_SUFFIX} does not exist). Give RUN_DIR/model.params or the "
            f"PREFIX given to 'export --out'.")
    if dtype == "float32":  # an inference graph comes hybridized as it runs best
        net.hybridize(static_alloc=True)
    return net, info


def _load_export(prefix: str, ctx: Contexts, dtype: str, given: Dict[str, Any]
                 ) -> Tuple[gluon.HybridBlock, ModelInfo]:
    net, info = load_symbol(prefix, ctx)
    if info is None:
        if "resize" not in given:
            raise ValueError(f"{prefix}{INFO_SUFFIX} is missing, so the input size is "
                             f"unknown; pass --resize (96 for the book's recipe).")
        info = ModelInfo()
    info = ModelInfo.from_dict({**info.to_dict(), **given})
    return _at(net, dtype), info


# --------------------------------------------------------------------------- a run's weights

def _warn(log: Optional[Callable[[str], None]], message: str) -> None:
    if log is None:
        warnings.warn(message, UserWarning, stacklevel=4)
    else:
        log(message)


def _mismatch(net: gluon.Block, params: str) -> Optional[str]:
    """Name how ``params`` differs from ``net``'s parameters, or None if it fits."""
    saved = {k: v.shape for k, v in nd.load(params).items()}
    # save_parameters keys are the structural names ("4.0.conv1.weight").
    expected = {k: v.shape for k, v in net._collect_params_with_prefix().items()}
    missing = sorted(set(expected) - set(saved))
    extra = sorted(set(saved) - set(expected))
    shapes = [f"{k}: the net has {expected[k]}, the file {saved[k]}"
              for k in expected if k in saved and 0 not in expected[k]
              and tuple(expected[k]) != tuple(saved[k])]
    parts = []
    if shapes:
        parts.append(f"{len(shapes)} shape(s) differ, first {shapes[0]}")
    if missing:
        parts.append(f"{len(missing)} parameter(s) missing from the file, first {missing[0]}")
    if extra:
        parts.append(f"{len(extra)} parameter(s) in the file the net lacks, first {extra[0]}")
    return "; ".join(parts) or None


def _run_info(params: str, given: Dict[str, Any], log: Optional[Callable[[str], None]]
              ) -> Tuple[ModelInfo, Optional[str]]:
    """The info of the run ``params`` belongs to (its config.json, or assumed), and that file."""
    config = find_run_config(params)
    if config:
        return ModelInfo.read(config, given), config
    info = ModelInfo.from_dict(given)
    assumed = [k for k in ARCHITECTURE if k not in given]
    if assumed:
        _warn(log, f"no config.json beside {params} (nor two levels up, for a checkpoint), "
                   f"so its net is assumed to be "
                   + ", ".join(f"{k} {info.setting(k)}" for k in assumed)
                   + ". If it was trained otherwise, pass --depth, --classes, "
                     "--small-input and --resize.")
    return info, None


def load_trained(params: str, ctx: Contexts = None, log: Optional[Callable[[str], None]] = None,
                 dtype: str = "float32", **overrides: Any
                 ) -> Tuple[gluon.HybridBlock, ModelInfo]:
    """Build the net a ``save_parameters`` file was trained as, and load it.

    Settings come from the run's ``config.json`` (see
    :func:`resnet_gluon.run.find_run_config`); ``overrides`` (depth, num_classes,
    small_input, resize), when given, go over them; without either the book's ResNet-18
    at 96x96 with 10 classes is assumed, with a warning to ``log`` (default
    :func:`warnings.warn`).  ``dtype`` as in :func:`load_model`.

    Returns
    -------
    (ResNet, ModelInfo)
        (for bfloat16, the ``SymbolBlock`` of the bf16 inference graph)

    Raises
    ------
    FileNotFoundError
        No such params file.
    ValueError
        The file does not fit the architecture: the message names the first
        differing parameter and how to fix the options.
    """
    check_dtype(dtype)  # before any work
    if not os.path.isfile(params):
        raise FileNotFoundError(f"{params}: no such params file.")
    info, config = _run_info(params, _check_overrides(overrides), log)
    net = info.model.build()
    try:
        problem = _mismatch(net, params)
    except mx.base.MXNetError as err:
        raise ValueError(f"{params} is not a params file MXNet can read ({mxnet_reason(err)}): "
                         f"it is empty, truncated or another kind of file. Use the "
                         f"model.params a run wrote.") from None
    if problem:
        spec = info.model
        small = " (small input)" if spec.small_input else ""
        raise ValueError(
            f"{params} does not fit ResNet-{spec.depth}{small}"
            f" with {spec.num_classes} classes{f' (settings from {config})' if config else ''}: "
            f"{problem}. Pass the --depth / --classes / --small-input the weights were "
            f"trained with.")
    net.load_parameters(params, ctx=parse_ctx(ctx))
    return _at(net, dtype), info


# --------------------------------------------------------------------------- an exported model

def _read_symbol(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        json.load(f)  # Python's JSON errors say where; MXNet's can be undecodable bytes
    mx.sym.load(path)


def load_symbol(prefix: str, ctx: Contexts = None
                ) -> Tuple[gluon.SymbolBlock, Optional[ModelInfo]]:
    """Load ``PREFIX-symbol.json`` + ``PREFIX-0000.params`` (and the info file, if any)."""
    for suffix in (SYMBOL_SUFFIX, PARAMS_SUFFIX):
        if not os.path.isfile(prefix + suffix):
            raise FileNotFoundError(
                f"{prefix + suffix}: no such file. An exported model is the prefix of "
                f"PREFIX-symbol.json and PREFIX-0000.params (python -m resnet_gluon export).")
    for suffix, read in ((SYMBOL_SUFFIX, _read_symbol), (PARAMS_SUFFIX, nd.load)):
        try:  # each file on its own first, so that an error can name it
            read(prefix + suffix)
        except (mx.base.MXNetError, ValueError) as err:
            reason = mxnet_reason(err) if isinstance(err, mx.base.MXNetError) else err
            raise ValueError(f"{prefix + suffix} is not a file MXNet can read ({reason}): "
                             f"it is truncated or corrupt. Export the model again.") from None
    try:
        with warnings.catch_warnings():  # "Cannot decide type": the input's, known later
            warnings.simplefilter("ignore", UserWarning)
            net = gluon.SymbolBlock.imports(prefix + SYMBOL_SUFFIX, ["data"],
                                            prefix + PARAMS_SUFFIX, ctx=parse_ctx(ctx))
    except (mx.base.MXNetError, AssertionError, ValueError) as err:
        raise ValueError(f"{prefix + SYMBOL_SUFFIX} and {prefix + PARAMS_SUFFIX} do not make "
                         f"one model ({mxnet_reason(err)}). Export the model again.") from None
    info = ModelInfo.read(prefix + INFO_SUFFIX) if os.path.isfile(prefix + INFO_SUFFIX) \
        else None
    return net, info


# --------------------------------------------------------------------------- the shipped weights

def _shipped_info(description: Dict[str, Any], directory: Optional[str]) -> ModelInfo:
    try:
        return ModelInfo.from_dict(description)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{weights.files(directory)[1]} is not the description "
                         f"pack_pretrained writes ({err}); reinstall resnet_gluon.") from None


def pretrained_info(directory: Optional[str] = None) -> Dict[str, Any]:
    """The shipped weights' JSON: architecture, ``resize``, ``classes``, ``sha256``, ``source``;
    as :func:`resnet_gluon.weights.read_description` reads it, and also refused (ValueError)
    when the model it describes is not a valid :class:`ModelInfo`."""
    description = weights.read_description(directory)
    _shipped_info(description, directory)
    return description


def load_pretrained(ctx: Contexts = None, dtype: str = "float32",
                    directory: Optional[str] = None) -> Tuple[gluon.HybridBlock, ModelInfo]:
    """The shipped trained ResNet-18 and what it takes: ``(net, info)``.

    ``info.resize`` is the input side (images are gray, values / 255, resized
    bilinearly from 28x28) and ``info.classes`` the class names in output
    order.  The weights are float32 once loaded (float16 on disk).

    Parameters
    ----------
    ctx : Context or list of Context, optional
        Where to load the weights (default ``cpu``).
    dtype : {'float32', 'bfloat16'}, default 'float32'
        bfloat16 returns the bf16 inference graph (:func:`resnet_gluon.inference.for_inference`).
    directory : str, optional
        Another directory holding the two files (default: the package's).

    Raises
    ------
    FileNotFoundError
        A file is missing; ValueError: the parameters' SHA-256 differs from the
        recorded one (a corrupt or altered file) or they do not fit the net.
    """
    check_dtype(dtype)
    description, params = weights.verified(directory)
    info = _shipped_info(description, directory)
    return _at(info.model.build(params, parse_ctx(ctx)), dtype), info


def _at(net: gluon.HybridBlock, dtype: str) -> gluon.HybridBlock:
    """The float32 net itself, or its inference graph in a lower ``dtype``."""
    return net if dtype == "float32" else for_inference(net, dtype)
