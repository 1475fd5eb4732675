"""The seed notebook's own code (d2l-zh 5.11 cells 1-7), kept as the book wrote it.

The book-pipeline and throughput benchmarks run this net as the book does;
the tests copy its weights into ours to show the two compute the same
numbers.  Comments translated; the code is the notebook's.
"""
import resnet_gluon  # noqa: F401  first: it lets MXNet import with numpy >= 1.24
from mxnet import nd
from mxnet.gluon import nn


class Residual(nn.Block):  # cell 1
    def __init__(self, num_channels, use_1x1conv=False, strides=1, **kwargs):
        super(Residual, self).__init__(**kwargs)
        self.conv1 = nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=strides)
        self.conv2 = nn.Conv2D(num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.Conv2D(num_channels, kernel_size=1, strides=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm()
        self.bn2 = nn.BatchNorm()

    def forward(self, X):
        Y = nd.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        return nd.relu(Y + X)


def resnet_block(num_channels, num_residuals, first_block=False, residual=Residual):  # cell 5
    blk = nn.Sequential()
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.add(residual(num_channels, use_1x1conv=True, strides=2))
        else:
            blk.add(residual(num_channels))
    return blk


def notebook_net(residual=Residual):
    """Cells 4, 6 and 7: the notebook's ResNet-18 (``residual`` swaps in d2lzh's block)."""
    net = nn.Sequential()
    net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3),
            nn.BatchNorm(), nn.Activation('relu'),
            nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    net.add(resnet_block(64, 2, first_block=True, residual=residual),
            resnet_block(128, 2, residual=residual),
            resnet_block(256, 2, residual=residual),
            resnet_block(512, 2, residual=residual))
    net.add(nn.GlobalAvgPool2D(), nn.Dense(10))
    return net
