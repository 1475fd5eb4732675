"""bfloat16 compute with float32 weights: MXNet's AMP graph pass, kept to the net's edges.

:func:`mixed_precision` returns a block that runs a net's graph in bfloat16 where oneDNN 2.4
has bf16 kernels (convolution and the dense layer; BatchNorm, ReLU, pooling and the residual
add follow their input's type) and casts only at its edges: the input, and each convolution's
and the dense layer's weights, to bf16 as they enter the graph; the scores back to float32
for the softmax and the loss.  It *shares* the net's parameters, which stay float32: the
optimizer updates float32 master weights, BatchNorm keeps float32 statistics, and
``net.save_parameters`` writes the float32 file every other command loads.  On a CPU with
AMX (see :mod:`resnet_gluon.cpu`) the bf16 convolutions run on its tiles.

Casting the whole graph once, instead of each operator as ``amp.init`` does, is what makes
it pay: ``amp.init`` bf16 training was 2x *slower* than float32 here.
"""
import warnings
from typing import Tuple

import mxnet as mx
from mxnet import gluon

from .cpu import cpu_flags

__all__ = ["DTYPES", "check_dtype", "mixed_precision", "native_bfloat16"]

#: The compute types a net can run in.
DTYPES = ("float32", "bfloat16")


def check_dtype(dtype: str) -> str:
    """``dtype`` if it is one of :data:`DTYPES`; else a ValueError that lists them."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}.")
    return dtype


def native_bfloat16() -> Tuple[bool, str]:
    """Whether this CPU computes bf16 natively (AMX or AVX512-BF16), and in what words."""
    flags = cpu_flags()
    have = [f for f in ("amx_bf16", "avx512_bf16") if f in flags]
    if have:
        return True, f"this CPU has {' and '.join(have)}"
    return False, ("this CPU has neither AMX nor AVX512-BF16, so oneDNN emulates bfloat16 "
                   "and it runs slower than float32")


def mixed_precision(net: gluon.HybridBlock, dtype: str = "bfloat16") -> gluon.HybridBlock:
    """``net`` computing in ``dtype``, its parameters shared and kept in float32.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        Any hybridizable net with one input; it need not be initialised yet
        (the returned block uses whatever the net's parameters hold when it runs).
    dtype : {'float32', 'bfloat16'}
        ``'float32'`` returns ``net`` itself.

    Returns
    -------
    mxnet.gluon.HybridBlock
        For bfloat16, a ``SymbolBlock`` over the net's graph with casts at its edges;
        its outputs are float32.  Train it (its parameters *are* the net's, so a
        ``gluon.Trainer`` over ``net.collect_params()`` updates both), evaluate it, export
        it; save ``net``.  Hybridize it as you would the net.

    Warns
    -----
    UserWarning
        bfloat16 on a CPU without native bf16 (it will be slower than float32).
    """
    if check_dtype(dtype) == "float32":
        return net
    if not isinstance(net, gluon.HybridBlock):
        raise TypeError(f"bfloat16 needs a HybridBlock (its graph is converted), got "
                        f"{type(net).__name__}; build the net from HybridBlocks, as "
                        f"resnet_gluon.build_resnet does.")
    native, why = native_bfloat16()
    if not native:
        warnings.warn(why, stacklevel=2)
    from mxnet.contrib import amp  # when first needed: config imports this module for DTYPES

    data = mx.sym.var("data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "cannot decide type": the input's, until a bind
        # The pass casts the input and each convolution's and dense layer's weights to bf16
        # and the graph's output back to float32 (the types its outputs had).
        graph = amp.convert_symbol(net(data), target_dtype="bfloat16", data_names=["data"],
                                   cast_optional_params=False)
        return _Checked(graph, data, params=net.collect_params(),
                        check=getattr(net, "check_batch", None))


class _Checked(gluon.SymbolBlock):
    """A SymbolBlock that checks an NDArray input as the net it came from does (a ResNet's
    ``check_batch``), so a bad batch gets the same clear error in bfloat16."""

    def __init__(self, outputs, inputs, params=None, check=None):
        super().__init__(outputs, inputs, params=params)
        self._check = check

    def forward(self, x, *args):
        if self._check is not None and isinstance(x, mx.nd.NDArray):
            self._check(x)
        return super().forward(x, *args)
