"""d2l-zh 5.11 cells 2, 3 and 8 with resnet_gluon: the book's shape checks.

Run:  python examples/notebook_shapes.py
"""
import resnet_gluon  # noqa: F401  first: it lets MXNet import with numpy >= 1.24
from mxnet import nd

from resnet_gluon import Residual, build_resnet18, count_parameters, print_shapes

# Cell 2: input and output of the same shape.
blk = Residual(3)
blk.initialize()
X = nd.random.uniform(shape=(4, 3, 6, 6))
print(blk(X).shape)

# Cell 3: more channels, half the height and width.
blk = Residual(6, use_1x1conv=True, strides=2)
blk.initialize()
print(blk(X).shape)

# Cells 4-7 are build_resnet18(); cell 8 walks the layers.
net = build_resnet18()
net.initialize()
print_shapes(net, nd.random.uniform(shape=(1, 1, 224, 224)))
total, trainable = count_parameters(net)
print(f"parameters: {total:,} ({trainable:,} trainable)")
