"""resnet_gluon: the ResNet of Dive into Deep Learning (d2l-zh 5.11) on MXNet Gluon.

>>> from resnet_gluon import build_resnet18, print_shapes
>>> net = build_resnet18()
>>> net.initialize()
>>> rows = print_shapes(net, (1, 1, 224, 224))  # notebook cell 8

What a training script needs is here too, imported when first used (training and loading
pull in far more than the model): ``open_source``, ``fit``, ``recipe``, ``TrainConfig``,
``load_model``; and every module by its name (``resnet_gluon.trained``).
"""
__version__ = "0.1.0"

import os as _os

import warnings as _warnings

import numpy as _np

# MXNet 1.9.1 reads numpy.bool when it is first imported; numpy 1.24 removed that alias (numpy
# 2, which also removed PZERO and NINF, is excluded by the requirements).  Restored here, the
# one place, before anything imports MXNet, and only where numpy lacks it.
with _warnings.catch_warnings():
    _warnings.simplefilter("ignore")  # numpy < 1.24 warns that it is deprecated, 1.26 that
    # it will mean numpy.bool_ (numpy 2 defines it so)
    if not hasattr(_np, "bool"):
        _np.bool = bool

import sys as _sys

from . import cpu as _cpu

# Before MXNet is imported: a bad OMP_NUM_THREADS would end the process in C++.
_problem = _cpu.thread_count_problem()
if _problem:
    if _sys.argv[:1] == ["-m"] or _sys.argv[0].endswith("resnet-gluon"):  # the command line
        _sys.stderr.write(f"resnet-gluon: error: {_problem}\n")
        raise SystemExit(2)
    raise ValueError(_problem)

# First of all, before oneDNN's first primitive: AMX for bf16/INT8 where it exists.
_cpu.enable_amx()

if _os.environ.get("DMLC_ROLE") in ("scheduler", "server"):
    # A parameter-server role: the first "import mxnet" below serves until the job is
    # done, then ends the process. Watch it first, so that it ends when its peers are
    # gone (see _watchdog.py); "python -c 'import resnet_gluon'" runs such a role.
    from ._watchdog import RoleWatchdog as _RoleWatchdog
    _RoleWatchdog(_os.environ["DMLC_ROLE"]).start()

from .blocks import Bottleneck, Residual
from .model import (BLOCKS, RESNET_SPEC, STAGE_CHANNELS, ResNet, build_resnet,
                    build_resnet18, copy_weights, resnet_block)
from .shapes import (LayerShape, ShapeTable, count_parameters, format_shapes, layer_shapes,
                     print_shapes, shapes)

_cpu.settle()  # oneDNN has its ISA limit now; children must not inherit the variable

#: Names of the training side a script reaches from the package: name -> its module.
_LAZY = {"open_source": "sources", "fit": "train", "recipe": "config",
         "TrainConfig": "config", "load_model": "trained"}

__all__ = ["__version__", "Residual", "Bottleneck", "RESNET_SPEC", "STAGE_CHANNELS",
           "BLOCKS", "ResNet", "resnet_block", "build_resnet", "build_resnet18",
           "copy_weights", "layer_shapes", "print_shapes", "format_shapes",
           "count_parameters", "shapes", "ShapeTable", "LayerShape", *_LAZY]


def __getattr__(name: str):
    """The training side's names, and the package's modules, imported when first used."""
    import importlib
    import importlib.util

    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
