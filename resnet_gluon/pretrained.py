"""Trained weights shipped inside the package: no training and no network needed to use them.

The package carries one trained ResNet-18 (``resnet_gluon/weights/``): its
parameters in float16 (half the bytes; cast back to float32 when loaded) and a
JSON file with its architecture record, input size, class names, the SHA-256 of
the parameters and where they came from (the run, its recipe and its accuracy).
:func:`load_pretrained` checks the digest before it trusts the bytes (it is
:mod:`resnet_gluon.trained`'s, the one loader; ``build_resnet18(pretrained=True)``
gives the net alone); :func:`pack_pretrained` writes both files from a run's
``model.params``.
"""
import json
import os
from typing import Any, Dict, Optional, Tuple

from mxnet import nd

from .checkpoint import atomic_write, atomic_write_text, sha256
from .trained import ModelInfo, load_pretrained, pretrained_info
from .weights import WEIGHTS_DIR, WEIGHTS_NAME, description_digest
from .weights import files as pretrained_files

__all__ = ["WEIGHTS_DIR", "WEIGHTS_NAME", "pretrained_files", "pretrained_info",
           "load_pretrained", "pack_pretrained"]


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
    meta["description_sha256"] = description_digest(meta)
    atomic_write_text(out_meta, json.dumps(meta, indent=1) + "\n")
    return out_params, out_meta
