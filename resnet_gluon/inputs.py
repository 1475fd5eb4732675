"""The input record: how an image becomes a net's input, as one typed record.

:class:`InputSpec` sits beside :class:`~resnet_gluon.model.ResNetSpec`: the architecture
says what the net is, the input record what it takes (timm's ``data_config``, typed).  A
data source makes it (:mod:`resnet_gluon.sources`), ``fit`` writes it into the run's
``config.json``, and every later reader of the net (``evaluate``, ``predict``, ``export``,
INT8, bfloat16) prepares images from it alone:

- ``kind='fashion-mnist'``: a 28x28 gray image (a file of any size is shrunk and padded to
  one, :func:`resnet_gluon.images.read_image`), then the bilinear resize of training
  (:func:`resnet_gluon.data.resize_batch`), pixel values / 255;
- ``kind='crop'``: an image folder's or a ``.rec``'s: the shorter side scaled to ``resize``,
  the centre ``resize`` x ``resize`` cropped (:func:`resnet_gluon.folders.read_square`),
  gray or colour, pixel values / 255, then ``(x - mean) / std`` per channel.

Written flat, as the files have always held it: ``preprocess``, ``resize``, ``in_channels``
(the architecture's key: the same fact), ``mean`` and ``std``.

:class:`DataRef` is the other half of what a run records of its input: which data it was
(the paths and the options they were opened with), so that a later command can open it
again (:func:`resnet_gluon.sources.open_source`); :class:`Fingerprint` says which images
exactly, so that a resume, or an evaluation of the images a run held out, can tell whether
they are still the ones it trained on.
"""
import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mxnet import nd

from ._checks import RESIZE, TEXT, knob
from .data import normalizer, resize_batch
from .folders import read_square
from .images import read_image

__all__ = ["InputSpec", "DataRef", "Fingerprint", "PREPROCESS"]

#: The kinds of preprocessing (see the module's docstring).
PREPROCESS = ("fashion-mnist", "crop")


def _floats(values: Optional[Sequence[float]]) -> Optional[Tuple[float, ...]]:
    return None if values is None else tuple(float(v) for v in values)


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """How an image becomes the net's input (see the module's docstring).

    Attributes
    ----------
    kind : {'fashion-mnist', 'crop'}
    resize : int
        Side of the square input, 8 to 512.
    channels : {1, 3}
        1: gray, 3: RGB.
    mean, std : tuple of float, optional
        Per-channel statistics of the training images (pixel values / 255) the input is
        normalised with; None: pixel values / 255 as they are (Fashion-MNIST runs).

    Examples
    --------
    >>> spec = InputSpec("crop", 32, 3, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))
    >>> InputSpec.from_dict(spec.to_dict()) == spec
    True
    """

    kind: str = "fashion-mnist"
    resize: int = 96
    channels: int = 1
    mean: Optional[Tuple[float, ...]] = None
    std: Optional[Tuple[float, ...]] = None

    def __post_init__(self):
        if self.kind not in PREPROCESS:
            raise ValueError(f"the input kind must be one of {list(PREPROCESS)}, got "
                             f"{self.kind!r}.")
        RESIZE.check("resize", self.resize)
        if self.channels not in (1, 3) or isinstance(self.channels, bool):
            raise ValueError(f"a trained net takes 1 (gray) or 3 (colour) input channels, "
                             f"got {self.channels!r}.")
        object.__setattr__(self, "mean", _floats(self.mean))
        object.__setattr__(self, "std", _floats(self.std))
        if (self.mean is None) != (self.std is None) or self.mean is not None and not (
                len(self.mean) == len(self.std) == self.channels
                and all(s > 0 for s in self.std)):
            raise ValueError(f"mean and std must both be given, one number per input channel "
                             f"({self.channels}) and std > 0, or neither; got "
                             f"{self.mean!r} and {self.std!r}.")

    @property
    def normalize(self) -> Optional[Tuple[List[float], List[float]]]:
        """``(mean, std)`` as lists, or None when the input is not normalised."""
        return None if self.mean is None else (list(self.mean), list(self.std))

    @property
    def shape(self) -> Tuple[int, int, int, int]:
        """``(1, channels, resize, resize)``: float32, NCHW."""
        return (1, self.channels, self.resize, self.resize)

    def describe(self) -> str:
        """The input in words, for the reader of an info file or ``--help``."""
        c, r = self.channels, self.resize
        colour = "gray" if c == 1 else f"{c} channels (RGB)"
        if self.kind == "fashion-mnist":
            how = "pixel values / 255, bilinear resize of the 28x28 image"
        else:
            how = (f"the image turned upright by its EXIF orientation (16-bit gray: its high "
                   f"byte), the shorter side scaled to {r} (bilinear), the centre {r}x{r} "
                   f"cropped, pixel values / 255")
        norm = ", then (x - mean) / std per channel" if self.mean is not None else ""
        return f"float32 NCHW (N, {c}, {r}, {r}): {colour}, {how}{norm}"

    def read(self, path: str, invert: bool = False) -> np.ndarray:
        """One image file as the uint8 image training kept: (28, 28) gray for
        ``'fashion-mnist'``; (R, R) or (R, R, 3), the centre square, for ``'crop'``.
        ``invert`` turns a dark object on a light background into a light one on dark.

        Raises
        ------
        ValueError
            The file cannot be read, is not an image, or is too large; the message names it.
        """
        if self.kind == "fashion-mnist":
            return read_image(path, invert=invert)
        image = read_square(path, self.resize, self.channels)
        return 255 - image if invert else image

    def prepare(self, images: np.ndarray) -> nd.NDArray:
        """The net's input from uint8 images as :meth:`read` (or training) keeps them."""
        return normalizer(self.normalize, self.channels)(resize_batch(images, self.resize))

    def to_dict(self) -> Dict[str, Any]:
        """Flat, under the keys the run and info files use (``preprocess``, ``resize``,
        ``in_channels``, and ``mean`` and ``std`` when normalised)."""
        values: Dict[str, Any] = {"preprocess": self.kind, "resize": self.resize,
                                  "in_channels": self.channels}
        if self.mean is not None:
            values.update(mean=list(self.mean), std=list(self.std))
        return values

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "InputSpec":
        """The record in flat ``values`` (a run's config.json, an info file); other keys
        are ignored, and a key a file predates takes its default."""
        return cls(values.get("preprocess", cls.kind), values.get("resize", cls.resize),
                   values.get("in_channels", cls.channels), values.get("mean"),
                   values.get("std"))


@dataclasses.dataclass(frozen=True)
class DataRef:
    """Which data a run was trained on, as :func:`resnet_gluon.sources.open_source` opens it.

    Attributes
    ----------
    data : str, optional
        None: Fashion-MNIST where it is found; else a directory of its IDX files, an image
        folder, or a ``.rec``: an absolute path.
    test : str, optional
        The test folder or ``.rec`` named apart from ``data``.
    channels : {None, 1, 3}
        The channels asked for (None: what the images are).
    skip_bad_images : bool
    """

    # Declared as knobs: the commands offer these fields as --data, --test-data, --channels
    # and --skip-bad-images, with these words, from here.
    data: Optional[str] = knob(
        None, "the data: Fashion-MNIST's directory of IDX files, an image folder (CLASS/IMAGE, "
        "or train/ and test/ or valid/ of them, the book's layout) or a RecordIO file written "
        "by 'pack' (X.rec)", TEXT,
        optional=True, metavar="PATH")
    test: Optional[str] = knob(
        None, "the test folder or .rec (default: the layout's test/ or valid/; without one, "
        "hold images out with --val-split)", TEXT, flag="--test-data", optional=True,
        metavar="PATH")
    channels: Optional[int] = knob(None, "1: gray, 3: colour (default: 3 if any image is "
                                   "colour)", choices=(1, 3), optional=True)
    skip_bad_images: bool = knob(False, "skip unreadable images, naming each, instead of "
                                 "stopping")

    def to_dict(self) -> Dict[str, Any]:
        """Under the keys of a run's config.json: ``data``, ``test_data``, ``channels``,
        ``skip_bad_images``."""
        return {"data": self.data, "test_data": self.test, "channels": self.channels,
                "skip_bad_images": self.skip_bad_images}

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "DataRef":
        """The reference in a run's config.json (``data_dir``, Fashion-MNIST's directory in
        earlier files, counts as ``data``)."""
        return cls(values.get("data") or values.get("data_dir"), values.get("test_data"),
                   values.get("channels"), bool(values.get("skip_bad_images")))



@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """Which images a run trained and tested on, exactly: per part (``'train'``,
    ``'test'``), each image's path within the part (for a ``.rec``: the pack) and a mark of
    its content (size and hash of its bytes; for a ``.rec``: the pack's digest).

    Made by :meth:`resnet_gluon.sources.Source.fingerprint`, kept by ``fit`` in the run
    directory beside ``config.json``.  Empty for Fashion-MNIST, whose files are fixed.
    """

    parts: Dict[str, Dict[str, str]] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return {part: dict(sorted(files.items())) for part, files in self.parts.items()}

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "Fingerprint":
        return cls({part: dict(files) for part, files in values.items()})

    def changes(self, now: "Fingerprint", parts: Sequence[str] = ("train", "test")
                ) -> List[str]:
        """What differs in ``now`` (the data as it is), part by part, in words: images
        added, removed and edited, with counts and the first of each; [] if nothing did."""
        said = []
        for part in parts:
            before, after = self.parts.get(part, {}), now.parts.get(part, {})
            kinds = (("added", sorted(set(after) - set(before))),
                     ("removed", sorted(set(before) - set(after))),
                     ("edited", sorted(k for k in set(before) & set(after)
                                       if before[k] != after[k])))
            words = [f"{len(names):,} {kind} (first {names[0]})" for kind, names in kinds
                     if names]
            if words:
                said.append(f"{part}: " + ", ".join(words))
        return said
