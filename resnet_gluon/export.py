"""Trained nets out of the library: export to MXNet symbol and ONNX.

A trained net comes from :func:`resnet_gluon.trained.load_model` (a run's
``model.params`` and the ``config.json`` beside it, or the shipped weights).
:func:`export_symbol` writes ``PREFIX-symbol.json`` and ``PREFIX-0000.params``,
which plain MXNet loads with ``gluon.SymbolBlock.imports`` (no resnet_gluon
needed), plus ``PREFIX-info.json`` (architecture, input size, class names).
:func:`export_onnx` writes ``PREFIX.onnx`` with a dynamic batch axis and the same
facts in its metadata.
Loading an export back is :func:`resnet_gluon.trained.load_symbol`'s.
"""
import dataclasses
import json
import os
import shutil
import tempfile
from typing import List

import mxnet as mx
import numpy as np
from mxnet import gluon, nd

# load_trained and load_symbol are also importable from here, their homes in 0.1.
from .trained import (INFO_SUFFIX, PARAMS_SUFFIX, SYMBOL_SUFFIX, ModelInfo,  # noqa: F401
                      load_symbol, load_trained)

__all__ = ["export_symbol", "export_onnx", "export_onnx_checked", "OnnxCheck", "check_onnx",
           "onnx_max_abs_diff"]


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
        An initialised net (a ResNet from :func:`load_trained`, a quantized one, or
        a bfloat16 one from :func:`resnet_gluon.precision.mixed_precision`, written
        with its casts so that it loads as bfloat16).
    prefix : str
        Path prefix of the files; its directory is created.
    info : ModelInfo

    Returns
    -------
    list of str
        The files written.
    """
    directory = _check_prefix(prefix)
    os.makedirs(directory, exist_ok=True)
    ctx = next(iter(net.collect_params().values())).list_ctx()[0]
    net.hybridize()
    net(nd.zeros(info.input_shape, ctx=ctx))  # builds the cached graph that export() writes
    # Write beside the target under a temporary name, then rename: no half files on failure.
    tmp = tempfile.mkdtemp(prefix=".export-", dir=directory)
    try:
        tmp_prefix = os.path.join(tmp, "model")
        # Keep amp_cast nodes: without them a bfloat16 net would be written as float32.
        net.export(tmp_prefix, epoch=0, remove_amp_cast=False)
        _write_info(tmp_prefix + INFO_SUFFIX, info)
        written = []
        for suffix in (SYMBOL_SUFFIX, PARAMS_SUFFIX, INFO_SUFFIX):
            os.replace(tmp_prefix + suffix, prefix + suffix)
            written.append(prefix + suffix)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_prefix(prefix: str) -> str:
    """The directory of a path prefix, after refusing a prefix that names a directory."""
    if prefix.endswith(os.sep) or os.path.isdir(prefix):
        raise ValueError(f"--out {prefix} names a directory; give a path prefix such as "
                         f"{os.path.join(prefix, 'model')} (the files are PREFIX{SYMBOL_SUFFIX}, "
                         f"PREFIX{PARAMS_SUFFIX}, ...).")
    return os.path.dirname(os.path.abspath(prefix))


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
    directory = _check_prefix(prefix)
    os.makedirs(directory, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=directory)
    try:
        sym_prefix = os.path.join(tmp, "model")
        export_symbol(net, sym_prefix, info)
        path = os.path.join(tmp, "model.onnx")
        _, c, h, w = info.input_shape
        mx.onnx.export_model(sym_prefix + SYMBOL_SUFFIX, sym_prefix + PARAMS_SUFFIX,
                             in_shapes=[info.input_shape], in_types=[np.float32],
                             onnx_file_path=path, dynamic=True,
                             dynamic_input_shapes=[(None, c, h, w)])
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


@dataclasses.dataclass(frozen=True)
class OnnxCheck:
    """onnxruntime's outputs against MXNet's on the same images.

    The limit is 1e-4 of the largest absolute output, at least 1e-4: float32 rounding
    grows with the outputs' size.
    """

    difference: float  #: the largest absolute difference of the two outputs
    largest: float  #: the largest absolute output of the MXNet net
    count: int  #: the images run

    @property
    def limit(self) -> float:
        return 1e-4 * max(1.0, self.largest)

    @property
    def ok(self) -> bool:
        return self.difference <= self.limit

    def __str__(self) -> str:
        return (f"max abs difference {self.difference:.2e} "
                f"({'ok' if self.ok else 'FAILED'}: limit {self.limit:.1e}, 1e-4 of the "
                f"largest output, at least 1)")


def check_onnx(onnx_path: str, net: gluon.Block, X: nd.NDArray) -> OnnxCheck:
    """Run ``X`` through the ONNX file in onnxruntime and through ``net``; compare.

    ``net`` runs in predict mode (BatchNorm's running statistics), as the
    ONNX graph does.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    ours = net(X).asnumpy()
    theirs = session.run(None, {name: X.asnumpy().astype(np.float32)})[0]
    return OnnxCheck(float(np.abs(ours - theirs).max()), float(np.abs(ours).max()),
                     X.shape[0])


def export_onnx_checked(net: gluon.HybridBlock, prefix: str, info: ModelInfo,
                        X: nd.NDArray) -> OnnxCheck:
    """:func:`export_onnx`, then :func:`check_onnx` on ``X`` before the file takes its name:
    ``PREFIX.onnx`` is there afterwards only if the check passed (a failed export leaves
    nothing behind)."""
    directory = _check_prefix(prefix)
    tmp = os.path.join(directory, f".{os.path.basename(prefix)}.{os.getpid()}.tmp")
    try:
        check = check_onnx(export_onnx(net, tmp, info), net, X)
        if check.ok:
            os.replace(tmp + ".onnx", prefix + ".onnx")
        return check
    finally:
        if os.path.exists(tmp + ".onnx"):
            os.remove(tmp + ".onnx")


def onnx_max_abs_diff(onnx_path: str, net: gluon.Block, X: nd.NDArray) -> float:
    """Largest absolute difference between onnxruntime's and ``net``'s outputs on ``X``."""
    return check_onnx(onnx_path, net, X).difference
