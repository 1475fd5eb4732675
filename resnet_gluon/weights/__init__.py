"""The trained weights shipped in the package: where they are, and reading them back verified.

This folder holds one trained ResNet-18: ``resnet18_fashion_mnist.params`` (float16, half
the bytes) and ``resnet18_fashion_mnist.json`` (its architecture record, input size, class
names, the SHA-256 of the parameters, where they came from, and the SHA-256 of all that).
This module only finds, reads and verifies the two files; it imports nothing above
:mod:`resnet_gluon._checks`, so that :func:`resnet_gluon.build_resnet18` (``pretrained=True``)
can use it without the model importing the rest of the package.
:mod:`resnet_gluon.pretrained` is the public face: ``load_pretrained`` (the net, its input
size and class names) and ``pack_pretrained``.
"""
import hashlib
import json
import os
from typing import Any, Dict, Optional, Tuple

from .._checks import sha256

__all__ = ["WEIGHTS_DIR", "WEIGHTS_NAME", "files", "read_description", "description_digest",
           "verified"]

#: Where the shipped weights live (package data: wheels and editable installs carry it).
WEIGHTS_DIR = os.path.dirname(os.path.abspath(__file__))
#: The stem of the two files: NAME.params (float16) and NAME.json.
WEIGHTS_NAME = "resnet18_fashion_mnist"

_REINSTALL = "reinstall resnet_gluon (pip install -e . in a clone)"


def files(directory: Optional[str] = None) -> Tuple[str, str]:
    """``(params, json)`` paths of the shipped weights (in ``directory`` if given)."""
    stem = os.path.join(directory or WEIGHTS_DIR, WEIGHTS_NAME)
    return stem + ".params", stem + ".json"


def read_description(directory: Optional[str] = None) -> Dict[str, Any]:
    """The weights' JSON as a dict: it must be an object with a ``sha256``.

    Raises
    ------
    FileNotFoundError
        The file is missing (a broken install): the message names it.
    ValueError
        It is not the JSON ``pack_pretrained`` writes.
    """
    _, meta = files(directory)
    if not os.path.isfile(meta):
        raise FileNotFoundError(f"{meta}: the shipped weights' description is missing; "
                                f"{_REINSTALL}.")
    try:
        with open(meta, encoding="utf-8") as f:
            values = json.load(f)
        if not isinstance(values, dict) or not isinstance(values.get("sha256"), str):
            raise ValueError("no sha256 entry")
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{meta} is not the description pack_pretrained writes ({err}); "
                         f"{_REINSTALL}.") from None
    # The description says how to build and feed the net: an edit to it (another depth,
    # input size or class order) would give wrong answers, so it is checksummed too.
    if values.get("description_sha256") != description_digest(values):
        raise ValueError(f"{meta} is corrupt or altered: its content does not match its "
                         f"description_sha256. Reinstall resnet_gluon.")
    if not isinstance(values.get("source"), dict):
        raise ValueError(f"{meta} is not the description pack_pretrained writes (its source "
                         f"is not an object); {_REINSTALL}.")
    return values


def description_digest(values: Dict[str, Any]) -> str:
    """The SHA-256 of a description's content (all but its ``description_sha256``), as hex."""
    body = {k: v for k, v in values.items() if k != "description_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def verified(directory: Optional[str] = None) -> Tuple[Dict[str, Any], str]:
    """``(description, params path)`` once the parameters' SHA-256 matches the description.

    Raises
    ------
    FileNotFoundError
        A file is missing.
    ValueError
        The description is broken, or the parameters' digest differs from the recorded one
        (a corrupt or altered file).
    """
    description = read_description(directory)
    params, _ = files(directory)
    if not os.path.isfile(params):
        raise FileNotFoundError(f"{params}: the shipped weights are missing; {_REINSTALL}.")
    found = sha256(params)
    if found != description["sha256"]:
        raise ValueError(f"{params} is corrupt or altered: its SHA-256 is {found}, the "
                         f"package recorded {description['sha256']}. Reinstall resnet_gluon.")
    return description, params
