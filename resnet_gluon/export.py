"""Trained nets out of the library: load a run's weights, export to MXNet symbol and ONNX.

A run's ``model.params`` holds weights only; the architecture and the input
size come from the ``config.json`` beside it.  :func:`export_symbol` writes
``PREFIX-symbol.json`` and ``PREFIX-0000.params``, which plain MXNet loads
with ``gluon.SymbolBlock.imports`` (no resnet_gluon needed), plus
``PREFIX-info.json`` (input size, class names).  :func:`export_onnx` writes
``PREFIX.onnx`` with a dynamic batch axis and the same facts in its metadata.
"""
import dataclasses
import json
import os
import shutil
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import mxnet as mx
import numpy as np
from mxnet import gluon, nd

from .data import CLASS_NAMES
from .model import build_resnet

__all__ = ["ModelInfo", "find_run_config", "load_trained", "export_symbol", "load_symbol",
           "export_onnx", "onnx_max_abs_diff"]

INFO_SUFFIX, SYMBOL_SUFFIX, PARAMS_SUFFIX = "-info.json", "-symbol.json", "-0000.params"


@dataclasses.dataclass
class ModelInfo:
    """What a user of a trained net must know besides its weights.

    Attributes
    ----------
    depth, num_classes, small_input
        The architecture (see :func:`resnet_gluon.build_resnet`).
    resize : int
        Side of the square gray input the net was trained on (28: native).
    classes : list of str
        Class names, in output order.
    """

    depth: int = 18
    num_classes: int = 10
    small_input: bool = False
    resize: int = 96
    classes: List[str] = dataclasses.field(default_factory=lambda: list(CLASS_NAMES))

    @property
    def input_shape(self) -> Tuple[int, int, int, int]:
        """``(1, 1, resize, resize)``: float32 in [0, 1], NCHW."""
        return (1, 1, self.resize, self.resize)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able values, with a note on the input for a reader of the file."""
        out = dataclasses.asdict(self)
        out["input"] = (f"float32 NCHW (N, 1, {self.resize}, {self.resize}): gray, "
                        f"pixel values / 255, bilinear resize of the 28x28 image")
        return out

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "ModelInfo":
        """Keep the known keys of ``values`` (a run's config.json or an info file)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        info = cls(**{k: v for k, v in values.items() if k in fields})
        if len(info.classes) != info.num_classes:  # a run with other labels than ours
            info.classes = [str(i) for i in range(info.num_classes)]
        return info


def find_run_config(params: str) -> Optional[str]:
    """The ``config.json`` of the run a params file belongs to, or None.

    Looks beside the file (``RUN_DIR/model.params``) and two levels up (a
    checkpoint's ``RUN_DIR/checkpoints/ckpt-*/net.params``).
    """
    here = os.path.dirname(os.path.abspath(params))
    for directory in (here, os.path.join(here, "..", "..")):
        path = os.path.normpath(os.path.join(directory, "config.json"))
        if os.path.isfile(path):
            return path
    return None


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


def load_trained(params: str, depth: Optional[int] = None, num_classes: Optional[int] = None,
                 small_input: Optional[bool] = None, resize: Optional[int] = None,
                 ctx: Union[mx.Context, Sequence[mx.Context], None] = None
                 ) -> Tuple[gluon.HybridBlock, ModelInfo]:
    """Build the net a ``save_parameters`` file was trained as, and load it.

    Settings come from the run's ``config.json`` (see :func:`find_run_config`);
    the arguments, when given, override them; without either the book's
    ResNet-18 at 96x96 with 10 classes is assumed.

    Parameters
    ----------
    params : str
        ``RUN_DIR/model.params`` or a checkpoint's ``net.params``.
    depth, num_classes, small_input, resize : optional
        Override the run's settings.
    ctx : Context or list of Context, optional
        Where to load the weights (default ``cpu``).

    Returns
    -------
    (ResNet, ModelInfo)

    Raises
    ------
    FileNotFoundError
        No such params file.
    ValueError
        The file does not fit the architecture: the message names the first
        differing parameter and how to fix the options.
    """
    if not os.path.isfile(params):
        raise FileNotFoundError(f"{params}: no such params file.")
    values: Dict[str, Any] = {}
    config = find_run_config(params)
    if config:
        with open(config, encoding="utf-8") as f:
            values.update(json.load(f))
    given = dict(depth=depth, num_classes=num_classes, small_input=small_input, resize=resize)
    values.update({k: v for k, v in given.items() if v is not None})
    info = ModelInfo.from_dict(values)
    net = build_resnet(info.depth, info.num_classes, small_input=info.small_input,
                       in_channels=1)
    try:
        problem = _mismatch(net, params)
    except mx.base.MXNetError as err:
        raise ValueError(f"{params} is not a params file MXNet can read: "
                         f"{str(err).splitlines()[0]}") from None
    if problem:
        raise ValueError(
            f"{params} does not fit ResNet-{info.depth}{' (small input)' if info.small_input else ''}"
            f" with {info.num_classes} classes{f' (settings from {config})' if config else ''}: "
            f"{problem}. Pass the --depth / --classes / --small-input the weights were "
            f"trained with.")
    net.load_parameters(params, ctx=ctx or mx.cpu())
    return net, info


def _write_info(path: str, info: ModelInfo) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(info.to_dict(), f, indent=1)
        f.write("\n")


def export_symbol(net: gluon.HybridBlock, prefix: str, info: ModelInfo) -> List[str]:
    """Write ``PREFIX-symbol.json``, ``PREFIX-0000.params`` and ``PREFIX-info.json``.

    Plain MXNet loads the first two with ``gluon.SymbolBlock.imports(
    PREFIX + '-symbol.json', ['data'], PREFIX + '-0000.params')``.

    Parameters
    ----------
    net : HybridBlock
        An initialised net (a ResNet from :func:`load_trained`, or a quantized one).
    prefix : str
        Path prefix of the files; its directory is created.
    info : ModelInfo

    Returns
    -------
    list of str
        The files written.
    """
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    ctx = next(iter(net.collect_params().values())).list_ctx()[0]
    net.hybridize()
    net(nd.zeros(info.input_shape, ctx=ctx))  # builds the cached graph that export() writes
    # Write beside the target under a temporary name, then rename: no half files on failure.
    tmp = tempfile.mkdtemp(prefix=".export-", dir=directory)
    try:
        tmp_prefix = os.path.join(tmp, "model")
        net.export(tmp_prefix, epoch=0)
        _write_info(tmp_prefix + INFO_SUFFIX, info)
        written = []
        for suffix in (SYMBOL_SUFFIX, PARAMS_SUFFIX, INFO_SUFFIX):
            os.replace(tmp_prefix + suffix, prefix + suffix)
            written.append(prefix + suffix)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_symbol(prefix: str, ctx: Optional[mx.Context] = None
                ) -> Tuple[gluon.SymbolBlock, Optional[ModelInfo]]:
    """Load ``PREFIX-symbol.json`` + ``PREFIX-0000.params`` (and the info file, if any)."""
    for suffix in (SYMBOL_SUFFIX, PARAMS_SUFFIX):
        if not os.path.isfile(prefix + suffix):
            raise FileNotFoundError(
                f"{prefix + suffix}: no such file. An exported model is the prefix of "
                f"PREFIX-symbol.json and PREFIX-0000.params (python -m resnet_gluon export).")
    net = gluon.SymbolBlock.imports(prefix + SYMBOL_SUFFIX, ["data"], prefix + PARAMS_SUFFIX,
                                    ctx=ctx or mx.cpu())
    info = None
    if os.path.isfile(prefix + INFO_SUFFIX):
        with open(prefix + INFO_SUFFIX, encoding="utf-8") as f:
            info = ModelInfo.from_dict(json.load(f))
    return net, info


def export_onnx(net: gluon.HybridBlock, prefix: str, info: ModelInfo) -> str:
    """Write ``PREFIX.onnx``: the net with a dynamic batch axis, info in its metadata.

    Needs ``onnx<=1.18.0`` (``pip install -e ".[onnx]"``); MXNet 1.9's
    exporter uses ``onnx.mapping``, which later versions removed.

    Returns
    -------
    str
        The path written.
    """
    try:
        import onnx
        onnx.mapping  # noqa: B018 - fail here, with the fix, rather than deep in MXNet
    except (ImportError, AttributeError):
        raise ImportError("ONNX export needs onnx<=1.18.0 (MXNet 1.9 uses onnx.mapping): "
                          "pip install -e \".[onnx]\"") from None
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=directory)
    try:
        sym_prefix = os.path.join(tmp, "model")
        export_symbol(net, sym_prefix, info)
        path = os.path.join(tmp, "model.onnx")
        _, _, h, w = info.input_shape
        mx.onnx.export_model(sym_prefix + SYMBOL_SUFFIX, sym_prefix + PARAMS_SUFFIX,
                             in_shapes=[info.input_shape], in_types=[np.float32],
                             onnx_file_path=path, dynamic=True,
                             dynamic_input_shapes=[(None, 1, h, w)])
        model = onnx.load(path)
        # MXNet lists the weights as graph inputs too; onnxruntime then cannot
        # fold them as constants (and warns once per weight).
        weights = {t.name for t in model.graph.initializer}
        inputs = [i for i in model.graph.input if i.name not in weights]
        del model.graph.input[:]
        model.graph.input.extend(inputs)
        for key, value in info.to_dict().items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
        onnx.checker.check_model(model)
        onnx.save(model, path)
        os.replace(path, prefix + ".onnx")
        return prefix + ".onnx"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def onnx_max_abs_diff(onnx_path: str, net: gluon.Block, X: nd.NDArray) -> float:
    """Largest absolute difference between onnxruntime's and ``net``'s outputs on ``X``.

    ``net`` runs in predict mode (BatchNorm's running statistics), as the
    ONNX graph does.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    ours = net(X).asnumpy()
    theirs = session.run(None, {name: X.asnumpy().astype(np.float32)})[0]
    return float(np.abs(ours - theirs).max())
