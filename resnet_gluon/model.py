"""The ResNet family as data: one spec table, one stage builder, one factory.

``build_resnet18()`` is the net of d2l-zh 5.11 cells 4-7, layer for layer:
the 7x7 stem, four stages built by the book's ``resnet_block``, global
average pooling and a dense layer, as the ten top-level children of a
:class:`~mxnet.gluon.nn.HybridSequential`.

:class:`ResNetSpec` is the architecture as one record (depth, classes, input
channels, stem): a run's ``config.json``, an export's info file and the shipped
weights' JSON hold it, and ``ResNetSpec.from_dict(saved).build()`` is the one
way the package rebuilds a net from saved settings.  This module, ``blocks``
and ``shapes`` import nothing of the package above them (``_checks`` and the
shipped files' reader ``weights`` sit below).
"""
import dataclasses
from typing import Any, Dict, Optional, Sequence, Tuple, Type, Union

import mxnet as mx
from mxnet.gluon import Block, nn
from mxnet.symbol import Symbol

from . import weights
from ._checks import (NONNEGATIVE_INT, POSITIVE_INT, check_channels_first, check_fields,
                      check_in_channels, check_input, check_positive_int, first_uninitialized,
                      knob)
from .blocks import Bottleneck, Residual

__all__ = ["RESNET_SPEC", "STAGE_CHANNELS", "BLOCKS", "ResNet", "ResNetSpec", "resnet_block",
           "build_resnet", "build_resnet18", "copy_weights"]

#: depth -> (block kind, residual blocks per stage), as in the ResNet paper.
RESNET_SPEC: Dict[int, Tuple[str, Tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}

#: ``num_channels`` of the four stages (the book's 64, 128, 256, 512).
STAGE_CHANNELS: Tuple[int, int, int, int] = (64, 128, 256, 512)

#: block kind -> block class.
BLOCKS: Dict[str, Type[nn.HybridBlock]] = {"basic": Residual, "bottleneck": Bottleneck}


def _block_class(block: str) -> Type[nn.HybridBlock]:
    try:
        return BLOCKS[block]
    except (KeyError, TypeError):
        raise ValueError(f"block must be one of {sorted(BLOCKS)}, got {block!r}.") from None


def resnet_block(num_channels: int, num_residuals: int, first_block: bool = False, *,
                 block: str = "basic", in_channels: int = 0) -> nn.HybridSequential:
    """One stage of residual blocks: the book's ``resnet_block``.

    The first block of every stage but the first halves height and width and
    projects the shortcut with a 1x1 convolution; the others keep shapes.

    Parameters
    ----------
    num_channels : int
        ``num_channels`` of every block in the stage.
    num_residuals : int
        Number of blocks.
    first_block : bool, default False
        The stage right after the stem: no stride, since the max-pool has
        already halved the input.
    block : {'basic', 'bottleneck'}, default 'basic'
        Block kind (keyword only).  A bottleneck stage widens the channels
        fourfold, so its first block always projects the shortcut.
    in_channels : int, default 0
        Channels entering the stage, when known (keyword only).

    Returns
    -------
    mxnet.gluon.nn.HybridSequential
    """
    check_positive_int("num_channels", num_channels)
    check_positive_int("num_residuals", num_residuals)
    unit = _block_class(block)
    blk = nn.HybridSequential()
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.add(unit(num_channels, use_1x1conv=True, strides=2, in_channels=in_channels))
        elif i == 0 and unit.expansion != 1:
            blk.add(unit(num_channels, use_1x1conv=True, in_channels=in_channels))
        else:
            blk.add(unit(num_channels, in_channels=in_channels))
        in_channels = num_channels * unit.expansion
    return blk


class ResNet(nn.HybridSequential):
    """The whole net: a :class:`~mxnet.gluon.nn.HybridSequential` that checks its input.

    It adds, iterates, indexes, initialises, hybridizes and exports like any
    HybridSequential; on top, a batch that is not 4-D floating point of the
    channel count the stem holds gets a clear error instead of an MXNet trace.

    Parameters
    ----------
    depth : int
        Depth from :data:`RESNET_SPEC`, kept for messages and reports.
    small_input : bool
        Whether the stem is the small-input one.
    **kwargs
        Passed to :class:`~mxnet.gluon.nn.HybridSequential`.
    """

    def __init__(self, depth: int, small_input: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.depth = depth
        self.small_input = small_input

    def __getitem__(self, key):
        # A slice (net[4:8]) is a plain HybridSequential: it is not a whole
        # net, so the stem's input checks do not apply to it.
        layers = list(self._children.values())[key]
        if not isinstance(layers, list):
            return layers
        part = nn.HybridSequential(prefix=self._prefix)
        with part.name_scope():
            part.add(*layers)
        return part

    def check_batch(self, x) -> None:
        """Refuse, with what to do, a batch this net cannot take: not a 4-D floating-point
        NDArray, the wrong channel count, or (channels still to be inferred) channels-last."""
        if len(self):
            stem, what = self[0], f"ResNet-{self.depth}"
            check_input(x, stem.weight.shape[1], stem.weight.dtype, what)
            if not stem.weight.shape[1]:  # the first batch fixes the channels for good
                check_channels_first(x, what)

    def forward(self, x, *args):
        """Check an NDArray input, then run the layers (imperative or cached)."""
        if not isinstance(x, Symbol):
            self.check_batch(x)
        return super().forward(x, *args)


def build_resnet(depth: int = 18, num_classes: int = 10, small_input: bool = False,
                 in_channels: int = 0) -> ResNet:
    """Build a ResNet of the given depth in the book's layout.

    Parameters
    ----------
    depth : int, default 18
        One of the keys of :data:`RESNET_SPEC`: 18, 34, 50, 101, 152.
    num_classes : int, default 10
        Outputs of the final dense layer.
    small_input : bool, default False
        Use the stem of ``d2lzh.resnet18`` for small images (28x28, 32x32): a
        3x3 stride-1 convolution and no max-pool, instead of the 7x7 stride-2
        convolution and the 3x3 stride-2 max-pool.
    in_channels : int, default 0
        Input channels (1 for Fashion-MNIST).  0 infers them at the first
        forward, as the book does; every other layer's shape is always known.

    Returns
    -------
    ResNet
        A HybridSequential with the stem's layers, four stages,
        GlobalAvgPool2D and Dense(num_classes).

    Raises
    ------
    ValueError
        ``depth`` is not in the table, or a count is not positive.
    """
    if isinstance(depth, bool) or depth not in RESNET_SPEC:
        raise ValueError(
            f"depth must be one of {sorted(RESNET_SPEC)}, got {depth!r}. "
            f"Add a row to RESNET_SPEC for another depth.")
    check_positive_int("num_classes", num_classes)
    check_in_channels(in_channels)
    kind, num_residuals = RESNET_SPEC[depth]
    expansion = BLOCKS[kind].expansion

    net = ResNet(depth, small_input=small_input)
    if small_input:
        net.add(nn.Conv2D(64, kernel_size=3, strides=1, padding=1, in_channels=in_channels),
                nn.BatchNorm(in_channels=64), nn.Activation("relu"))
    else:
        net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3, in_channels=in_channels),
                nn.BatchNorm(in_channels=64), nn.Activation("relu"),
                nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    channels = 64
    for i, (num_channels, count) in enumerate(zip(STAGE_CHANNELS, num_residuals)):
        net.add(resnet_block(num_channels, count, first_block=(i == 0), block=kind,
                             in_channels=channels))
        channels = num_channels * expansion
    net.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes, in_units=channels))
    return net


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
    """The architecture of a ResNet as one record: what :func:`build_resnet` needs.

    Held by :class:`resnet_gluon.config.TrainConfig` (the net a run trains) and by
    :class:`resnet_gluon.trained.ModelInfo` (a trained net: this plus its input size and
    class names); written flat into ``config.json`` and the weights' JSON by
    :meth:`to_dict`, read back by :meth:`from_dict`.  A new architecture knob is a field
    here (its help and rule are the command line's) and a parameter of the factory.

    Attributes
    ----------
    depth : int
        A key of :data:`RESNET_SPEC`.
    num_classes : int
        Outputs of the dense layer.
    small_input : bool
        ``d2lzh.resnet18``'s 3x3 stride-1 stem without max-pool.
    in_channels : int
        Input channels: 1 for gray images (every saved run so far), 3 for colour, 0 to
        infer them at the first forward.

    Examples
    --------
    >>> spec = ResNetSpec(depth=34, num_classes=5)
    >>> ResNetSpec.from_dict(spec.to_dict()) == spec
    True
    >>> net = spec.build()
    """

    depth: int = knob(18, "ResNet depth", choices=sorted(RESNET_SPEC))
    num_classes: int = knob(10, "number of classes", POSITIVE_INT, flag="--classes")
    small_input: bool = knob(False, "3x3 stride-1 stem without max-pool, as d2lzh.resnet18")
    in_channels: int = knob(1, "input channels (1: gray, 3: colour; 0: inferred at the "
                               "first forward)", NONNEGATIVE_INT, option=False)

    def __post_init__(self):
        check_fields(self)

    def build(self, params: Optional[str] = None,
              ctx: Union[mx.Context, Sequence[mx.Context], None] = None) -> "ResNet":
        """The net this record describes; with ``params``, holding that file's weights.

        The file's values are cast to the net's float32 (the shipped weights are
        float16 on disk); ``ctx`` (default ``cpu``) is where they are loaded.
        """
        net = build_resnet(self.depth, self.num_classes, small_input=self.small_input,
                           in_channels=self.in_channels)
        if params is not None:
            net.load_parameters(params, ctx=ctx or mx.cpu(), cast_dtype=True,
                                dtype_source="current")
        return net

    def to_dict(self) -> Dict[str, Any]:
        """The fields as plain JSON-able values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "ResNetSpec":
        """The record in ``values`` (a run's config.json, an info file): its own keys are
        read and the others ignored; a key a file predates takes its default (files from
        before ``in_channels`` are gray: 1)."""
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)
                      if f.name in values})


def build_resnet18(num_classes: int = 10, pretrained: bool = False) -> ResNet:
    """The notebook's ResNet-18 (d2l-zh 5.11 cells 4-7).

    Parameters
    ----------
    num_classes : int, default 10
        Outputs of the final dense layer.
    pretrained : bool, default False
        Load the weights shipped in the package (trained on Fashion-MNIST; see
        :func:`resnet_gluon.pretrained.load_pretrained`, which also gives the
        input size and class names).

    Returns
    -------
    ResNet
        Ten top-level layers: Conv2D(64, 7, 2, 3), BatchNorm, Activation('relu'),
        MaxPool2D(3, 2, 1), four stages of two :class:`Residual` blocks,
        GlobalAvgPool2D, Dense(num_classes).
    """
    if pretrained:
        if num_classes != 10:
            raise ValueError(f"the shipped weights are for Fashion-MNIST's 10 classes, got "
                             f"num_classes={num_classes!r}; train your own for other labels.")
        description, params = weights.verified()
        return ResNetSpec.from_dict(description).build(params)
    return build_resnet(18, num_classes)


def copy_weights(src: Block, dst: Block) -> None:
    """Copy every parameter of ``src`` into ``dst``, matched by order.

    Made for bringing weights from the book's own nets (``d2lzh.Residual``,
    the notebook's ``nn.Sequential``) into ours: the children have the same
    names and order, so their parameters line up one to one.  BatchNorm's
    running statistics are copied too.

    Parameters
    ----------
    src, dst : mxnet.gluon.Block
        Both initialised with known shapes (after ``initialize()`` and, for
        a net with deferred shapes, one forward pass).

    Raises
    ------
    ValueError
        The nets differ in parameter count or in a parameter's shape; the
        message names the first mismatch.
    """
    src_params = list(src.collect_params().values())
    dst_params = list(dst.collect_params().values())
    if len(src_params) != len(dst_params):
        raise ValueError(
            f"cannot copy weights: the source has {len(src_params)} parameters and "
            f"the destination {len(dst_params)}; they are not the same architecture.")
    for params, role in ((src_params, "source"), (dst_params, "destination")):
        p = first_uninitialized(params, need_data=True)
        if p is not None:
            raise ValueError(
                f"cannot copy weights: the {role} parameter {p.name} is not "
                f"initialised (shape {p.shape}). Call initialize() and run one "
                f"batch through the net first.")
    for s, d in zip(src_params, dst_params):
        if s.shape != d.shape:
            raise ValueError(
                f"cannot copy weights: source {s.name} has shape {s.shape} but "
                f"destination {d.name} has shape {d.shape}.")
    for s, d in zip(src_params, dst_params):
        d.set_data(s.list_data()[0])
