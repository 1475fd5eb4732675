"""resnet_gluon: the ResNet of Dive into Deep Learning (d2l-zh 5.11) on MXNet Gluon.

>>> from resnet_gluon import build_resnet18, print_shapes
>>> net = build_resnet18()
>>> net.initialize()
>>> rows = print_shapes(net, (1, 1, 224, 224))  # notebook cell 8
"""
__version__ = "0.1.0"

import os as _os

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

__all__ = ["__version__", "Residual", "Bottleneck", "RESNET_SPEC", "STAGE_CHANNELS",
           "BLOCKS", "ResNet", "resnet_block", "build_resnet", "build_resnet18",
           "copy_weights", "layer_shapes", "print_shapes", "format_shapes",
           "count_parameters", "shapes", "ShapeTable", "LayerShape"]
