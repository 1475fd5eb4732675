"""Image files, read safely: bounded, whole, and of a size worth decoding.

Every image file the library reads (``predict``'s, an image folder's) goes through
:func:`read_image_file`: a regular file (a FIFO would block for ever, a device such as
/dev/zero never end) of at most :data:`MAX_FILE_BYTES`, a PNG, JPEG or BMP whose header
promises at most :data:`MAX_PIXELS` pixels (checked before anything is decoded: a small file
can hold a huge image), decoded whole by Pillow (OpenCV, behind ``mx.image.imdecode``, fills
a truncated JPEG in with gray without a word).  Errors are ``ValueError`` naming the file.

:func:`read_image` turns any such file into what a Fashion-MNIST net was trained on: a
28x28 gray image, the object centred.
"""
import io
import os
import stat
import struct
import warnings
from typing import Tuple

import mxnet as mx
import numpy as np
from mxnet import nd

__all__ = ["IMAGE_EXTENSIONS", "MAX_PIXELS", "MAX_FILE_BYTES", "read_image_file", "read_image"]

_SIDE = 28  # Fashion-MNIST's native size

#: Extensions of the image files picked up from a directory.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
#: The most pixels an image file may hold (Pillow's MAX_IMAGE_PIXELS guard, tighter:
#: decoding a 40,000-pixel-square image would take gigabytes).
MAX_PIXELS = 50_000_000
#: The largest file read (a 50-megapixel BMP with an alpha channel is 200 MB).
MAX_FILE_BYTES = 256 * 2**20
#: The first bytes of the formats read: PNG, JPEG, BMP.
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM")


def read_image_file(path: str) -> Tuple[bytes, "PIL.Image.Image"]:  # noqa: F821
    """``(bytes, decoded Pillow image)`` of one image file, refused with a ``ValueError``
    naming it when it is not a regular, whole PNG, JPEG or BMP of a size worth decoding."""
    raw = _read_file(path)
    _check_size(path, raw)
    return raw, _decode_whole(path, raw)


def _read_file(path: str) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_FILE_BYTES` (a FIFO would block
    for ever, a device such as /dev/zero never end)."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path}: not a regular file (a directory, FIFO, device or "
                             f"socket); give an image file")
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ValueError(f"{path}: cannot read: {err.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError(f"{path}: the file is larger than {MAX_FILE_BYTES // 2**20} MiB, "
                         f"more than any image this reader decodes; shrink it first.")
    return raw


def _decode_whole(path: str, raw: bytes):
    """The image in ``raw``, decoded whole by Pillow, which stops at missing or broken data;
    a file that is not a PNG, JPEG or BMP is refused."""
    if not raw.startswith(_SIGNATURES):
        raise ValueError(f"{path}: not an image this library can decode "
                         f"(expected PNG, JPEG or BMP)")
    from PIL import Image  # Pillow comes with matplotlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(raw))
            im.load()
            return im
        except Image.UnidentifiedImageError:
            reason = "its header is not one of a readable image"
        except Exception as err:  # Pillow's decoders raise OSError, SyntaxError, ValueError...
            reason = str(err) or type(err).__name__
    raise ValueError(f"{path}: the image is truncated or corrupt ({reason})")


def _check_size(path: str, raw: bytes) -> None:
    """Refuse an image whose header promises more than :data:`MAX_PIXELS` pixels,
    before anything is decoded (a small file can hold a huge image)."""
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) >= 24:
        # Read here: MXNet's decoder allocates what a PNG header claims even when the
        # rest of the file is missing, and Pillow does not identify such a file.
        w, h = struct.unpack(">II", raw[16:24])
    else:
        from PIL import Image  # Pillow comes with matplotlib; only the header is read

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                with Image.open(io.BytesIO(raw)) as im:
                    w, h = im.size
            except Image.DecompressionBombError:
                w = h = MAX_PIXELS  # larger still: Pillow refused to go on
            except Exception:  # not an image Pillow knows: the decoder will say so
                return
    if w * h > MAX_PIXELS:
        raise ValueError(f"{path}: the image is {w}x{h} pixels, more than the "
                         f"{MAX_PIXELS:,} this reader decodes; shrink it first.")


def read_image(path: str, invert: bool = False) -> np.ndarray:
    """One image file as a uint8 (28, 28) gray array, as Fashion-MNIST stores them.

    The image is shrunk (area) or enlarged (bilinear) so that its longer side
    is 28, then padded to a square with its border's colour, the object kept
    centred.  Shrinking first keeps the work small for any shape of image.

    Parameters
    ----------
    path : str
        A PNG, JPEG or BMP file of any size up to :data:`MAX_PIXELS`, gray, RGB or RGBA.
    invert : bool, default False
        Turn a dark object on a light background (a product photo) into the
        light-on-dark images of Fashion-MNIST.

    Raises
    ------
    ValueError
        The file cannot be read, is not an image, or is too large; the message names it.
    """
    raw, _ = read_image_file(path)  # bounded, whole, not too large
    try:
        img = mx.image.imdecode(raw, flag=0).asnumpy()[:, :, 0]  # gray
    except mx.base.MXNetError:
        raise ValueError(f"{path}: not an image this library can decode "
                         f"(expected PNG, JPEG or BMP)") from None
    if img.size == 0:
        raise ValueError(f"{path}: the image is empty")
    h, w = img.shape
    border = int(np.median(np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])))
    side = max(h, w)
    th, tw = max(1, round(h * _SIDE / side)), max(1, round(w * _SIDE / side))
    if (th, tw) != (h, w):
        interp = 3 if side > _SIDE else 1  # area to shrink, bilinear to enlarge
        img = mx.image.imresize(nd.array(img[:, :, None], dtype="uint8"), tw, th,
                                interp=interp).asnumpy()[:, :, 0]
    if (th, tw) != (_SIDE, _SIDE):  # pad to a square with the border's colour, centred
        square = np.full((_SIDE, _SIDE), border, dtype=np.uint8)
        top, left = (_SIDE - th) // 2, (_SIDE - tw) // 2
        square[top:top + th, left:left + tw] = img
        img = square
    return 255 - img if invert else img
