"""Trained weights shipped inside the package: no training and no network needed to use them.

The package carries one trained ResNet-18 (``resnet_gluon/weights/``): its
parameters in float16 (half the bytes; cast back to float32 when loaded) and a
JSON file with its architecture, input size, class names, the SHA-256 of the
parameters and where they came from (the run, its recipe and its accuracy).
:func:`load_pretrained` checks the digest before it trusts the bytes;
:func:`pack_pretrained` writes both files from a run's ``model.params``.
"""
import json
import os
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import mxnet as mx
from mxnet import gluon, nd

from .checkpoint import atomic_write, atomic_write_text, sha256
from .model import build_resnet
from .precision import check_dtype, mixed_precision
from .run import ModelInfo

__all__ = ["WEIGHTS_DIR", "WEIGHTS_NAME", "pretrained_files", "pretrained_info",
           "load_pretrained", "pack_pretrained"]

#: Where the shipped weights live (package data: wheels and editable installs carry it).
WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
#: The stem of the two files: NAME.params (float16) and NAME.json.
WEIGHTS_NAME = "resnet18_fashion_mnist"


def pretrained_files(directory: Optional[str] = None) -> Tuple[str, str]:
    """``(params, json)`` paths of the shipped weights (in ``directory`` if given)."""
    stem = os.path.join(directory or WEIGHTS_DIR, WEIGHTS_NAME)
    return stem + ".params", stem + ".json"


def pretrained_info(directory: Optional[str] = None) -> Dict[str, Any]:
    """The shipped weights' JSON: architecture, ``resize``, ``classes``, ``sha256``, ``source``.

    Raises
    ------
    FileNotFoundError
        The file is missing (a broken install): the message names it.
    ValueError
        It is not the JSON :func:`pack_pretrained` writes.
    """
    _, meta = pretrained_files(directory)
    if not os.path.isfile(meta):
        raise FileNotFoundError(f"{meta}: the shipped weights' description is missing; "
                                f"reinstall resnet_gluon (pip install -e . in a clone).")
    try:
        with open(meta) as f:
            info = json.load(f)
        ModelInfo.from_dict(info)
        info["sha256"]
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"{meta} is not the description pack_pretrained writes ({err}); "
                         f"reinstall resnet_gluon.") from None
    return info


def load_pretrained(ctx: Union[mx.Context, Sequence[mx.Context], None] = None,
                    dtype: str = "float32", directory: Optional[str] = None
                    ) -> Tuple[gluon.HybridBlock, ModelInfo]:
    """The shipped trained ResNet-18 and what it takes: ``(net, info)``.

    ``info.resize`` is the input side (images are gray, values / 255, resized
    bilinearly from 28x28) and ``info.classes`` the class names in output
    order.  The weights are float32 once loaded.

    Parameters
    ----------
    ctx : Context or list of Context, optional
        Where to load the weights (default ``cpu``).
    dtype : {'float32', 'bfloat16'}, default 'float32'
        bfloat16 returns a net computing in bf16 over the float32 weights.
    directory : str, optional
        Another directory holding the two files (default: the package's).

    Raises
    ------
    FileNotFoundError
        A file is missing; ValueError: the parameters' SHA-256 differs from the
        recorded one (a corrupt or altered file) or they do not fit the net.
    """
    check_dtype(dtype)
    meta = pretrained_info(directory)
    params, _ = pretrained_files(directory)
    if not os.path.isfile(params):
        raise FileNotFoundError(f"{params}: the shipped weights are missing; reinstall "
                                f"resnet_gluon (pip install -e . in a clone).")
    found = sha256(params)
    if found != meta["sha256"]:
        raise ValueError(f"{params} is corrupt or altered: its SHA-256 is {found}, the "
                         f"package recorded {meta['sha256']}. Reinstall resnet_gluon.")
    info = ModelInfo.from_dict(meta)
    net = build_resnet(info.depth, info.num_classes, small_input=info.small_input,
                       in_channels=1)
    # float16 on disk, float32 in the net ('current': the net's own type wins).
    net.load_parameters(params, ctx=ctx or mx.cpu(), cast_dtype=True, dtype_source="current")
    return mixed_precision(net, dtype), info


def pack_pretrained(params: str, info: ModelInfo, source: Dict[str, Any],
                    directory: Optional[str] = None) -> Tuple[str, str]:
    """Write a run's float32 ``params`` as the shipped weights: float16 and their JSON.

    ``source`` (the run, its recipe, its accuracy) is recorded as it is.
    Both files are written atomically; returns their paths.
    """
    out_params, out_meta = pretrained_files(directory)
    os.makedirs(os.path.dirname(out_params), exist_ok=True)
    half = {name: value.astype("float16") for name, value in nd.load(params).items()}
    atomic_write(out_params, lambda tmp: nd.save(tmp, half))
    meta = dict(info.to_dict(), sha256=sha256(out_params), source=source)
    atomic_write_text(out_meta, json.dumps(meta, indent=1) + "\n")
    return out_params, out_meta
