"""Install script for resnet_gluon.

One command gives a working environment (``pip install -e ".[test]"``).  MXNet 1.9.1, the
last release, runs with numpy < 2 (numpy 2 removed names it reads at import; its
``numpy.bool`` alias, gone since numpy 1.24, is restored by ``import resnet_gluon``), so
Python 3.9 to 3.12: numpy < 2 has no wheels for 3.13 (and the command line uses argparse of
3.9).  MXNet also imports ``distutils``,
which Python 3.12 removed; on 3.12 setuptools, installed with us, provides it.
"""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _version() -> str:
    with open(os.path.join(HERE, "resnet_gluon", "__init__.py"), encoding="utf-8") as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def _long_description() -> str:
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        return f.read()


# A user with a CUDA build (mxnet-cu112, ...) already satisfies the import but
# not the distribution name "mxnet"; RESNET_GLUON_NO_MXNET=1 drops the
# requirement so pip does not put the CPU wheel beside the CUDA one.
_MXNET = [] if os.environ.get("RESNET_GLUON_NO_MXNET") == "1" else ["mxnet>=1.9,<2"]

setup(
    name="resnet_gluon",
    version=_version(),
    description="The ResNet of Dive into Deep Learning (d2l-zh 5.11) as an MXNet Gluon library",
    long_description=_long_description(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["resnet_gluon", "resnet_gluon.*"]),
    # The trained weights shipped in the package (resnet_gluon.pretrained).
    package_data={"resnet_gluon.weights": ["*.params", "*.json"]},
    python_requires=">=3.9,<3.13",
    install_requires=_MXNET + [
        "numpy>=1.17,<2",
        # MXNet imports distutils, which Python 3.12 dropped; setuptools provides it again.
        "setuptools>=60; python_version >= '3.12'",
        "tqdm>=4.40",
        "matplotlib>=3.3",
    ],
    extras_require={
        "test": ["pytest>=7", "d2lzh==1.0.0", "onnx<=1.18.0", "onnxruntime", "scikit-learn"],
        # MXNet 1.9's ONNX exporter uses onnx.mapping, removed after onnx 1.18.
        "onnx": ["onnx<=1.18.0", "onnxruntime"],
    },
    entry_points={"console_scripts": ["resnet-gluon=resnet_gluon.cli:main"]},
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
