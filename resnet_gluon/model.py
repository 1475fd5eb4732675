"""The ResNet family as data: one spec table, one stage builder, one factory.

``build_resnet18()`` is the net of d2l-zh 5.11 cells 4-7, layer for layer:
the 7x7 stem, four stages built by the book's ``resnet_block``, global
average pooling and a dense layer, as the ten top-level children of a
:class:`~mxnet.gluon.nn.HybridSequential`.
"""
from typing import Dict, Tuple, Type

from mxnet.gluon import Block, nn
from mxnet.symbol import Symbol

from ._checks import check_in_channels, check_input, check_positive_int, first_uninitialized
from .blocks import Bottleneck, Residual

__all__ = ["RESNET_SPEC", "STAGE_CHANNELS", "BLOCKS", "ResNet", "resnet_block",
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

    def forward(self, x, *args):
        """Check an NDArray input, then run the layers (imperative or cached)."""
        if not isinstance(x, Symbol) and len(self):
            stem = self[0]
            check_input(x, stem.weight.shape[1], stem.weight.dtype, f"ResNet-{self.depth}")
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
        from .pretrained import load_pretrained  # the run and its files, only when asked

        return load_pretrained()[0]
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
