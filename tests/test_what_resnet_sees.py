"""examples/what_resnet_sees.ipynb runs in a real Jupyter kernel on the shipped weights, shows
its four kinds of pictures, and its committed outputs are current (how long it takes is a
benchmark's figure, benchmarks/notebook.py, not a test's)."""
import re

import pytest

from common import TEN_SHAPES, assert_outputs_current, execute_notebook
from common import notebook_cell as _cell
from resnet_gluon.pretrained import pretrained_info

pytestmark = pytest.mark.slow  # a Jupyter kernel over the 10,000 test images
NOTEBOOK = "what_resnet_sees.ipynb"


@pytest.fixture(scope="module")
def executed():
    return execute_notebook(NOTEBOOK, timeout=300)


def _pictures(cell):
    return sum("image/png" in o.get("data", {}) for o in cell.outputs)


def test_it_reports_the_shipped_weights_test_accuracy(executed):
    _, nb, _ = executed
    text = _cell(nb, "probs = predict_images(").outputs[0]["text"]
    accuracy = float(re.match(r"test accuracy (0\.\d{4}) on 10000 images", text).group(1))
    assert accuracy == pytest.approx(pretrained_info()["source"]["test_acc"], abs=0.001)


@pytest.mark.parametrize("needle", ["plot_predictions(", "plot_confusion(", "cams = grad_cam(",
                                    "worst = wrong[", "plot_feature_maps("])
def test_each_section_shows_its_picture(executed, needle):
    _, nb, _ = executed
    assert _pictures(_cell(nb, needle)) == 1


def test_the_feature_maps_have_the_shapes_of_cell_8(executed):
    _, nb, _ = executed
    lines = _cell(nb, "plot_feature_maps(").outputs[0]["text"].splitlines()
    assert [line.split("\t ")[1] for line in lines] == TEN_SHAPES


def test_committed_outputs_are_current(executed):
    committed, nb, _ = executed

    def printed_and_pictures(cell):  # the pictures' pixels differ from run to run
        return ([o["text"] for o in cell.outputs
                 if o["output_type"] == "stream" and o["name"] == "stdout"], _pictures(cell))
    assert_outputs_current(NOTEBOOK, committed, nb, printed_and_pictures)
