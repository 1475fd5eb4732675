"""Image files, read safely and decoded one way: bounded, whole, upright, 8-bit.

Every image file the library reads (``predict``'s, an image folder's, ``pack``'s) goes
through :func:`read_image_file`, the one decoder: a regular file (a FIFO would block for
ever, a device such as /dev/zero never end) of at most :data:`MAX_FILE_BYTES`, a PNG, JPEG
or BMP whose header promises at most :data:`MAX_PIXELS` pixels and sides within
:data:`MAX_ASPECT` of each other (checked before anything is decoded: a small file can hold
a huge image, and a 1x20,000,000 strip scaled to a training size has no end), decoded whole
by Pillow (OpenCV, behind ``mx.image.imdecode``, fills a truncated JPEG in with gray without
a word), then made what every path takes: turned upright by its EXIF orientation (as a photo
viewer and OpenCV show it), 16-bit gray scaled to 8 bits (the high byte, as OpenCV and
Pillow's own 16-bit colour do), and gray (``'L'``) or colour (``'RGB'``: palette, CMYK and
alpha images as Pillow converts them).  Errors are ``ValueError`` naming the file.

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

__all__ = ["IMAGE_EXTENSIONS", "MAX_PIXELS", "MAX_ASPECT", "MAX_FILE_BYTES", "GRAY_MODES",
           "read_file_bytes", "read_image_file", "read_image"]

_SIDE = 28  # Fashion-MNIST's native size

#: Extensions of the image files picked up from a directory.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
#: The most pixels an image file may hold (Pillow's MAX_IMAGE_PIXELS guard, tighter:
#: decoding a 40,000-pixel-square image would take gigabytes).
MAX_PIXELS = 50_000_000
#: The most one side may exceed the other: a picture, not a strip (a 1x20,000,000 PNG is
#: 19 KB, and its shorter side scaled to 64 makes the other 1.28 billion pixels).
MAX_ASPECT = 100
#: Pillow modes without colour: their images are gray whatever else a folder holds.
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
#: The largest file read (a 50-megapixel BMP with an alpha channel is 200 MB).
MAX_FILE_BYTES = 256 * 2**20
#: The first bytes of the formats read: PNG, JPEG, BMP.
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM")


def read_image_file(path: str) -> Tuple[bytes, "PIL.Image.Image"]:  # noqa: F821
    """``(bytes, decoded Pillow image)`` of one image file, refused with a ``ValueError``
    naming it when it is not a regular, whole PNG, JPEG or BMP of a size worth decoding.

    The image is upright, 8-bit, and of mode ``'L'`` (gray) or ``'RGB'`` (see the module's
    docstring): every reader of a file sees the same pixels.
    """
    raw = read_file_bytes(path)
    _check_size(path, raw)
    return raw, _upright_8bit(_decode_whole(path, raw))


def _upright_8bit(im):
    """``im`` as every path takes it: EXIF orientation applied, 8 bits, 'L' or 'RGB'."""
    from PIL import Image, ImageOps

    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block: the pixels as stored
        pass
    if im.mode.startswith("I"):  # 16-bit gray: convert('L') would clip it at 255
        wide = np.asarray(im).astype(np.int64)
        return Image.fromarray(np.clip(wide >> 8, 0, 255).astype(np.uint8), "L")
    return im.convert("L" if im.mode in GRAY_MODES else "RGB")


def read_file_bytes(path: str) -> bytes:
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
    if min(w, h) >= 1 and max(w, h) > MAX_ASPECT * min(w, h):  # 0: the decoder names it
        raise ValueError(f"{path}: the image is {w}x{h} pixels, one side more than "
                         f"{MAX_ASPECT} times the other: a strip, not a picture this reader "
                         f"decodes; crop it first.")


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
    _, im = read_image_file(path)  # bounded, whole, upright, 8-bit: the one decoder
    img = np.asarray(im.convert("L"))  # ITU-R 601 luma, as everywhere
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
