"""bfloat16 compute with float32 weights: MXNet's AMP graph pass, kept to the net's edges.

:func:`mixed_precision` returns a block that runs a net's graph in bfloat16 where oneDNN 2.4
has bf16 kernels (convolution and the dense layer; BatchNorm, ReLU, pooling and the residual
add follow their input's type) and casts only at its edges: the input, and each convolution's
and the dense layer's weights, to bf16 as they enter the graph; the scores back to float32
for the softmax and the loss.  It *shares* the net's parameters, which stay float32: the
optimizer updates float32 master weights, BatchNorm keeps float32 statistics, and
``net.save_parameters`` writes the float32 file every other command loads.  On a CPU with
AMX (see :mod:`resnet_gluon.cpu`) the bf16 convolutions run on its tiles.  Where bf16 runs on
AVX512-BF16 without AMX (an AMD EPYC, or AMX turned off), a ResNet's stem stays float32 and
is cast to bf16 where its stages begin: oneDNN 2.4 would run the 1-channel stem convolution
in the plain layout and its BatchNorm on a slow plain kernel.  Without AVX-512 (an AVX2 CPU)
oneDNN 2.4 has no bf16 kernel at all: :func:`require_bfloat16` refuses bf16 there, in words,
before anything runs.

Casting the whole graph once, instead of each operator as ``amp.init`` does, is what makes
it pay: ``amp.init`` bf16 training was 2x *slower* than float32 here.
"""
import json
import os
import platform
import sys
import warnings
from typing import List, Tuple

import mxnet as mx
from mxnet import gluon

from . import cpu
from .cpu import amx_status, cpu_flags
from .model import ResNet

__all__ = ["DTYPES", "BF16_CASES", "AVX512_CORE", "check_dtype", "mixed_precision",
           "bfloat16_case", "native_bfloat16", "require_bfloat16", "machine_report"]

#: The compute types a net can run in.
DTYPES = ("float32", "bfloat16")


def check_dtype(dtype: str) -> str:
    """``dtype`` if it is one of :data:`DTYPES`; else a ValueError that lists them."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}.")
    return dtype


#: How oneDNN 2.4 runs bfloat16 on a CPU (:func:`bfloat16_case`): three ways, or not at all.
BF16_CASES = ("amx", "avx512_bf16", "emulated", "unsupported")

#: The AVX-512 subsets oneDNN calls ``avx512_core``, as /proc/cpuinfo spells them: its
#: bfloat16 emulation needs them, and it has no bfloat16 kernels below them (AVX2).
AVX512_CORE = ("avx512f", "avx512bw", "avx512vl", "avx512dq")


#: What emulated bfloat16 means for a user, in the words every warning about it uses.
_EMULATED = ("this CPU has neither AMX nor AVX512-BF16, so oneDNN emulates bfloat16 and it "
             "runs slower than float32")


def bfloat16_case() -> Tuple[str, str]:
    """Which of :data:`BF16_CASES` this process is, and in words.

    ``'amx'``: the AMX tiles are granted (:func:`resnet_gluon.cpu.amx_status`), bf16
    convolutions run on them.  ``'avx512_bf16'``: no AMX for this process, but the CPU has
    AVX512-BF16 (AMD Zen 4, Intel Cooper Lake; also an AMX Xeon whose tiles Linux refused):
    native bf16 dot products, faster than float32.  ``'emulated'``: neither, but AVX-512
    (:data:`AVX512_CORE`); oneDNN emulates bf16, slower than float32.  ``'unsupported'``: no
    AVX-512 (an AVX2 CPU such as an AMD EPYC of the Zen 3 kind): oneDNN 2.4 has no bfloat16
    convolution there, so bfloat16 cannot run (:func:`require_bfloat16` refuses it).  Where
    the flags cannot be read (no /proc/cpuinfo), ``'emulated'``: let oneDNN try.
    """
    flags, amx = cpu_flags(), amx_status()
    if amx.enabled:
        return "amx", "native, on the AMX tiles"
    if "avx512_bf16" in flags:
        return "avx512_bf16", ("native, on AVX512-BF16 (no AMX for this process: "
                               f"{amx.reason})")
    no_avx512 = _no_avx512(flags)
    if no_avx512:
        return "unsupported", f"unsupported: {no_avx512}; use float32"
    return "emulated", f"emulated: {_EMULATED}; use float32"


def _no_avx512(flags) -> str:
    """Why oneDNN 2.4 cannot run bfloat16 on a CPU with ``flags``, or '' where it can try."""
    missing = [flag for flag in AVX512_CORE if flag not in flags]
    if not (flags and missing):
        return ""
    return (f"this CPU has no AVX-512 (no {', '.join(missing)} in /proc/cpuinfo), and "
            "oneDNN 2.4 has no bfloat16 kernels without it")


def native_bfloat16() -> Tuple[bool, str]:
    """Whether this CPU computes bf16 natively (AMX or AVX512-BF16), and in what words."""
    case, words = bfloat16_case()
    if case in ("amx", "avx512_bf16"):
        return True, f"bfloat16 is {words}"
    if case == "unsupported":
        return False, f"bfloat16 is {words}"
    return False, _EMULATED


def require_bfloat16(stacklevel: int = 3) -> str:
    """This process's :func:`bfloat16_case`, before anything runs in bfloat16.

    Warns where bf16 is emulated (slower than float32) and raises where it cannot run, so
    that a bf16 net fails here, in words, rather than at its first convolution inside MXNet
    ("could not create a primitive descriptor iterator").

    Raises
    ------
    RuntimeError
        The CPU has no AVX-512 (``'unsupported'``); the message names the missing flags
        and the fix: float32.
    """
    case = bfloat16_case()[0]
    if case == "unsupported":
        raise RuntimeError(
            f"bfloat16 cannot run here: {_no_avx512(cpu_flags())} "
            f"(CPU: {cpu.cpu_model() or 'model unknown'}). Use float32: dtype='float32', or "
            "--dtype float32 on the command line (also after --recipe fast).")
    if case == "emulated":
        warnings.warn(_EMULATED, stacklevel=stacklevel)
    return case


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

    Raises
    ------
    RuntimeError
        bfloat16 on a CPU without AVX-512, where it cannot run (:func:`require_bfloat16`).
    """
    if check_dtype(dtype) == "float32":
        return net
    if not isinstance(net, gluon.HybridBlock):
        raise TypeError(f"bfloat16 needs a HybridBlock (its graph is converted), got "
                        f"{type(net).__name__}; build the net from HybridBlocks, as "
                        f"resnet_gluon.build_resnet does.")
    case = require_bfloat16()
    from mxnet.contrib import amp  # when first needed: config imports this module for DTYPES

    data = mx.sym.var("data")
    float32_stem = case == "avx512_bf16"
    graph, stem_convolutions = _graph(net, data, float32_stem)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "cannot decide type": the input's, until a bind
        # The pass casts the input and each convolution's and dense layer's weights to bf16
        # and the graph's output back to float32 (the types its outputs had).
        graph = amp.convert_symbol(graph, target_dtype="bfloat16", data_names=["data"],
                                   cast_optional_params=False,
                                   excluded_sym_names=stem_convolutions)
        return _Checked(graph, data, params=net.collect_params(),
                        check=getattr(net, "check_batch", None))


def _graph(net: gluon.HybridBlock, data: mx.sym.Symbol,
           float32_stem: bool) -> Tuple[mx.sym.Symbol, List[str]]:
    """``net``'s graph on ``data``, and the convolutions the bf16 pass must leave in float32.

    With ``float32_stem``, a ResNet's stem (its layers before the first stage) stays float32
    and its output is cast to bf16 once, where the stages begin.  Where bf16 runs on
    AVX512-BF16 without AMX, oneDNN 2.4 runs a bf16 convolution of a 1-channel image on a
    gemm in the plain layout, and the stem's BatchNorm then falls to its slow plain-layout
    kernel (22% of a training step on an AMD EPYC); in float32 all of it stays blocked.
    With AMX the bf16 stem is faster, so it stays bf16 there.
    """
    if not (float32_stem and isinstance(net, ResNet)):
        return net(data), []
    from mxnet.contrib.amp.amp import bfloat16

    layers = list(net._children.values())
    stages = next(i for i, layer in enumerate(layers)
                  if isinstance(layer, gluon.nn.HybridSequential))
    out = data
    for layer in layers[:stages]:
        out = layer(out)
    stem = [node["name"] for node in json.loads(out.tojson())["nodes"]
            if node["op"] == "Convolution"]
    # Cast once here, not at each use: the first stage's residual sums stay bf16.
    out = mx.sym.amp_cast(out, dtype=bfloat16, name="stem_amp_cast_bfloat16")
    for layer in layers[stages:]:
        out = layer(out)
    return out, stem


class _Checked(gluon.SymbolBlock):
    """A SymbolBlock that checks an NDArray input as the net it came from does (a ResNet's
    ``check_batch``), so a bad batch gets the same clear error in bfloat16."""

    def __init__(self, outputs, inputs, params=None, check=None):
        super().__init__(outputs, inputs, params=params)
        self._check = check
        #: For an inference graph: called with the first batch's shape, whether to
        #: hybridize with static shapes (oneDNN's fused graph runs 3x faster at batch 1 with
        #: them, but MXNet 1.9 fails with them where a global pooling sees a 1x1 map).
        self.plan_shapes = None

    def forward(self, x, *args):
        if isinstance(x, mx.nd.NDArray):
            if self._check is not None:
                self._check(x)
            if self.plan_shapes is not None:
                static, self.plan_shapes = self.plan_shapes(x.shape), None
                self.hybridize(static_alloc=True, static_shape=static)
        return super().forward(x, *args)


def machine_report(version: str) -> List[str]:
    """What ``info`` prints: the versions (resnet_gluon ``version``, MXNet, oneDNN, numpy,
    Python), the CPU and its ISA flags, whether AMX is on and why (not), the thread count,
    how bfloat16 runs here, and the oneDNN kernels a tiny fp32 and bf16 convolution ran on
    in a fresh process."""
    import numpy

    probe, flags, status = cpu.kernel_isas(), cpu_flags(), amx_status()
    threads = os.environ.get("OMP_NUM_THREADS")
    return [f"resnet_gluon {version}, mxnet {mx.__version__} "
            f"({probe.get('version', 'oneDNN version unknown')}), numpy {numpy.__version__}, "
            f"Python {sys.version.split()[0]}",
            f"cpu: {cpu.cpu_model() or platform.processor() or 'unknown'}, "
            f"{os.cpu_count()} logical cores",
            "isa flags: " + (" ".join(f for f in cpu.ISA_FLAGS if f in flags)
                             or "none of " + ", ".join(cpu.ISA_FLAGS)),
            f"amx: {'on' if status.enabled else 'off'} ({status.reason})",
            f"threads: OMP_NUM_THREADS={threads}" if threads else
            f"threads: OMP_NUM_THREADS unset (oneDNN uses all {os.cpu_count()} cores)",
            f"bfloat16: {bfloat16_case()[1]}",
            f"oneDNN isa: {probe.get('isa', 'unknown (the probe did not run)')}"] + [
            f"convolution {dtype}: {probe.get(f'conv_{dtype}', 'did not run')}"
            for dtype in ("float32", "bfloat16")]
