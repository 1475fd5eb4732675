"""INT8 inference: MXNet's ``quantize_net`` (oneDNN) calibrated on real training images.

The residual blocks use ``F.Activation(act_type='relu')``, which oneDNN fuses
into the convolutions and quantizes, so the whole graph runs in INT8.
"""
import os
import sys
import warnings
from typing import Optional

import mxnet as mx
from mxnet import gluon, nd

from ._checks import mxnet_reason
from .cpu import cpu_flags
from .evaluate import agreement  # noqa: F401 - its home before resnet_gluon.evaluate
from .inputs import InputSpec
from .sources import FashionMNIST
from .trained import ModelInfo

__all__ = ["calibration_images", "quantize", "agreement", "VNNI_FLAGS", "int8_saturation"]

#: The CPU flags with which oneDNN's INT8 dot products add up in 32 bits (VNNI, AMX).
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def int8_saturation() -> Optional[str]:
    """Why INT8 may lose accuracy on this CPU, in words, or None where it has VNNI.

    Without VNNI (AVX2, or AVX-512 before Cascade Lake) oneDNN adds each pair of u8 x s8
    products in 16 bits, which saturates on large activations and weights: the INT8 net's
    answers can drift from float32's more than on a VNNI CPU (OpenVINO documents the same).
    None also where the flags cannot be read (no /proc/cpuinfo).
    """
    flags = cpu_flags()
    if not flags or any(flag in flags for flag in VNNI_FLAGS):
        return None
    return ("this CPU has no VNNI (avx512_vnni or avx_vnni), so oneDNN adds pairs of INT8 "
            "products in 16 bits, which can saturate: check the INT8 net's agreement with "
            "float32 (evaluate --int8 prints it)")


def calibration_images(num: int = 512, resize: int = 96, root: Optional[str] = None,
                       seed: int = 0) -> nd.NDArray:
    """``num`` real Fashion-MNIST training images, drawn at random (seeded), as the input of a
    net trained on them at ``resize``.

    Calibration uses training images so that the test set stays unseen.  For any data:
    :meth:`resnet_gluon.sources.Source.calibration_images`.
    """
    return FashionMNIST(root).calibration_images(ModelInfo(inputs=InputSpec(resize=resize)),
                                                 num, seed)


def quantize(net: gluon.HybridBlock, calib: nd.NDArray, batch_size: int = 64,
             calib_mode: str = "naive", ctx: Optional[mx.Context] = None) -> gluon.SymbolBlock:
    """An INT8 copy of ``net`` for CPU inference (``net`` itself is left as it is).

    Parameters
    ----------
    net : HybridBlock
        A trained fp32 net.
    calib : NDArray
        Calibration inputs, (N, 1, R, R) as the net sees them
        (:func:`calibration_images`).
    batch_size : int, default 64
        Images per calibration batch (all of them at once where the last map is 1x1;
        the last batch is filled up by repeating images, so every image counts).
    calib_mode : {'naive', 'entropy'}, default 'naive'
        How thresholds come from the calibration outputs: their min and max
        ('naive'), or the KL-divergence choice ('entropy', slower).
    ctx : Context, default cpu()
        oneDNN's INT8 kernels are CPU only.

    Returns
    -------
    mxnet.gluon.SymbolBlock
        Hybridized; call it like the fp32 net, or export it with
        :func:`resnet_gluon.export.export_symbol`.

    Warns
    -----
    UserWarning
        On a CPU without VNNI, where INT8 may drift from float32 (:func:`int8_saturation`).
    """
    from mxnet.contrib.quantization import quantize_net_v2

    from .inference import fold_batchnorm, global_pool_sees_1x1

    if calib_mode not in ("naive", "entropy"):
        raise ValueError(f"calib_mode must be 'naive' or 'entropy', got {calib_mode!r}.")
    if not isinstance(calib, nd.NDArray) or calib.ndim != 4 or calib.shape[0] < 1:
        raise ValueError(f"calib must be a non-empty (N, C, H, W) NDArray, got "
                         f"{getattr(calib, 'shape', type(calib).__name__)}.")
    ctx = ctx or mx.cpu()
    saturation = int8_saturation()
    if saturation:
        warnings.warn(saturation, stacklevel=2)
    os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")  # no "backend MKLDNN is activated"
    # MXNet 1.9's static-memory INT8 graph fails on its second call ("can't
    # generate TBlob for MKLDNN data") when the global pooling sees a 1x1 map
    # (inputs of 32 pixels or less with the book's stem); running the pooling
    # layers in fp32 avoids it, at no cost worth measuring on such small maps.
    # Then, though, the calibration executor leaves the dense layer's output in
    # oneDNN's own layout after its first batch, and MXNet's collector cannot read
    # it (one "Exception ignored" per later batch, the layer calibrated on the first
    # batch alone): such small inputs are calibrated in one batch.
    one_by_one = global_pool_sees_1x1(net(mx.sym.var("data")), calib.shape)
    batch = calib.shape[0] if one_by_one else min(batch_size, calib.shape[0])
    # "pad" repeats a few images to fill the last batch: every image is seen.
    data = mx.io.NDArrayIter(data=calib, batch_size=batch, last_batch_handle="pad",
                             data_name="data")
    failures = []  # what MXNet's calibration callbacks raised (Python only reports them)
    hook = sys.unraisablehook

    def catch(unraisable):
        if isinstance(unraisable.exc_value, mx.base.MXNetError):
            failures.append(unraisable.exc_value)
        else:  # not ours to judge
            hook(unraisable)
    sys.unraisablehook = catch
    try:
        with warnings.catch_warnings():  # MXNet's own notes on inferring the types of weights
            warnings.simplefilter("ignore", UserWarning)
            # BatchNorm folded first (resnet_gluon.inference), then oneDNN quantizes
            # convolutions that carry their bias.
            qnet = quantize_net_v2(fold_batchnorm(net), quantized_dtype="auto", calib_mode=calib_mode,
                                   calib_data=data, num_calib_examples=calib.shape[0],
                                   ctx=ctx, exclude_operators=["Pooling"] if one_by_one else None)
    finally:
        sys.unraisablehook = hook
    if failures:
        raise RuntimeError(f"INT8 calibration could not read {len(failures)} layer outputs "
                           f"(MXNet: {mxnet_reason(failures[0])}), so its thresholds would "
                           f"rest on part of the {calib.shape[0]} images; no INT8 net was "
                           f"made. Evaluate in float32, or train at a larger --resize.")
    qnet.hybridize(static_alloc=True, static_shape=True)
    return qnet
