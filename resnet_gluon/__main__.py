"""``python -m resnet_gluon``: the same CLI as the ``resnet-gluon`` console script."""
import sys

from .cli import main

sys.exit(main())
