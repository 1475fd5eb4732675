"""Argument and input checks shared by the model modules.

Every message says what was given, what was expected and how to fix it, so a
user never has to read an MXNet shape-inference trace to find a typo.
"""
from numbers import Integral
from typing import Optional

import numpy as np
from mxnet import ndarray

__all__ = ["check_positive_int", "check_input"]


def check_positive_int(name: str, value, fix: str = "") -> int:
    """Return ``value`` if it is a positive integer, else raise.

    Parameters
    ----------
    name : str
        The argument's name, quoted in the message.
    value : object
        What the caller passed.
    fix : str, optional
        A hint appended to the message.

    Raises
    ------
    TypeError
        ``value`` is not an integer (``bool`` counts as not an integer).
    ValueError
        ``value`` is an integer below 1.
    """
    hint = f" {fix}" if fix else ""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(
            f"{name} must be a positive integer, got {value!r} "
            f"({type(value).__name__}).{hint}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}.{hint}")
    return int(value)


def check_input(x, expected_channels: int, dtype: Optional[np.dtype], what: str) -> None:
    """Validate a batch before it reaches MXNet's operators.

    Parameters
    ----------
    x : object
        The input the block was called with.
    expected_channels : int
        The channel count the block's first layer holds; 0 while it is still
        unknown (deferred initialisation), in which case any count is accepted.
    dtype : numpy.dtype or None
        The dtype of the block's parameters, when known.
    what : str
        How to name the block in the message (``"ResNet-18"``, ``"Residual"``).

    Raises
    ------
    TypeError
        ``x`` is not an NDArray, or is not floating point, or its float type
        differs from the parameters'.
    ValueError
        ``x`` is not 4-D (N, C, H, W), or has the wrong channel count.
    """
    if not isinstance(x, ndarray.NDArray):
        raise TypeError(
            f"{what} expects an mxnet NDArray of shape (N, C, H, W), got "
            f"{type(x).__name__}. Wrap it first: mx.nd.array(x, dtype='float32').")
    if x.ndim != 4:
        fix = (" For a single image add the batch axis: x.expand_dims(0)."
               if x.ndim == 3 else
               " Reshape it to (N, C, H, W), e.g. x.reshape((-1, 1, 28, 28)) for"
               " Fashion-MNIST.")
        raise ValueError(
            f"{what} expects a 4-D batch (N, C, H, W), got a {x.ndim}-D input of "
            f"shape {x.shape}.{fix}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"{what} expects a floating-point input, got dtype "
            f"{np.dtype(x.dtype).name}. Convert it and scale the pixels: "
            f"x.astype('float32') / 255.")
    if dtype is not None and np.dtype(x.dtype) != np.dtype(dtype):
        raise TypeError(
            f"{what} has {np.dtype(dtype).name} parameters but got a "
            f"{np.dtype(x.dtype).name} input. Cast the input with "
            f"x.astype('{np.dtype(dtype).name}'), or the net with "
            f"net.cast('{np.dtype(x.dtype).name}').")
    if expected_channels and x.shape[1] != expected_channels:
        raise ValueError(
            f"{what} was initialised for {expected_channels}-channel input but got "
            f"{x.shape[1]} channels (input shape {x.shape}). Feed "
            f"{expected_channels}-channel images, or build a new net for "
            f"{x.shape[1]} channels (in_channels={x.shape[1]}).")
