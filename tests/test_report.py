"""Pictures from the command line: ``predict --explain`` PNGs and ``evaluate --report``'s
page, looked at as a person would (the page in headless Chromium)."""
import json
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from common import BF16_RUNS, NO_BF16, look_in_browser, report_sections
from resnet_gluon import load_model
from resnet_gluon.evaluate import EvalResult
from resnet_gluon.model import ResNetSpec
from resnet_gluon.predict import read_for
from resnet_gluon.report import write_report
from resnet_gluon.trained import ModelInfo
from resnet_gluon.visualize import grad_cam

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOT = os.path.join(ROOT, "examples", "ankle_boot.png")


def _halves(path):
    """The left (the image as the net saw it) and right (the overlay) halves of a PNG."""
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    half = rgb.shape[1] // 2
    return rgb[:, :half], rgb[:, half:]


def _colourful(rgb):
    """Share of pixels whose channels differ (a gray picture has none)."""
    return float(np.mean(np.ptp(rgb, axis=2) > 24))


def test_predict_explain_writes_one_png_per_image_named_after_it(cli, tmp_path):
    (tmp_path / "other").mkdir()
    shutil.copy(BOOT, tmp_path / "other" / "ankle_boot.png")  # the same name twice
    Image.open(BOOT).convert("RGB").save(tmp_path / "ankle_boot.jpg")
    out = tmp_path / "out"
    result = cli.here("predict", "--explain", str(out), "--json", BOOT,
                 str(tmp_path / "other" / "ankle_boot.png"), str(tmp_path / "ankle_boot.jpg"))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["explanation"] for line in lines] == [
        str(out / "ankle_boot-explained.png"), str(out / "ankle_boot-explained-2.png"),
        str(out / "ankle_boot-explained-3.png")]
    assert lines[0]["top"][0]["class"] == "ankle boot"
    assert sorted(os.listdir(out)) == ["ankle_boot-explained-2.png",
                                       "ankle_boot-explained-3.png", "ankle_boot-explained.png"]
    for line in lines:
        with Image.open(line["explanation"]) as png:
            assert png.size == (480, 295) and png.format == "PNG"
        bare, overlay = _halves(line["explanation"])
        assert _colourful(bare) == 0.0  # the gray image as the net saw it
        assert _colourful(overlay) > 0.3  # the Grad-CAM over it
    result = cli.here("predict", "--explain", str(out), BOOT)  # the text line names it too
    assert result.stdout.startswith(f"{BOOT}: ankle boot 0.909")
    assert result.stdout.rstrip().endswith(f"-> {out / 'ankle_boot-explained.png'}")


def test_explain_refuses_a_file_or_an_impossible_directory_in_one_line(cli, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("x")
    for where, says in ((note, "is a file; give a directory"),
                        (note / "sub", "cannot create it")):
        result = cli.here("predict", "--explain", str(where), BOOT)
        assert result.returncode != 0 and result.stdout == ""
        assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr


def test_an_export_is_explained_as_the_layered_net_and_int8_is_refused(tmp_path):
    from resnet_gluon.export import export_symbol
    from resnet_gluon.inference import for_inference
    from resnet_gluon.quantize import quantize

    net, info = load_model()
    X = info.prepare(np.stack([read_for(info, BOOT)]))
    layered = grad_cam(net, X)
    export_symbol(net, str(tmp_path / "f32"), info)
    exact = grad_cam(load_model(str(tmp_path / "f32"))[0], X)
    assert np.array_equal(exact, layered)
    if BF16_RUNS:
        export_symbol(for_inference(net, "bfloat16", fuse=False), str(tmp_path / "bf16"), info)
        # bf16: its float32 weights, BatchNorm folded: equal within float32 rounding
        np.testing.assert_allclose(grad_cam(load_model(str(tmp_path / "bf16"))[0], X),
                                   layered, atol=1e-5)
    else:
        with pytest.raises(RuntimeError, match=NO_BF16):
            for_inference(net, "bfloat16", fuse=False)
    with pytest.raises(TypeError, match="quantized .INT8. or fused: Grad-CAM needs the "
                                        "float32 weights"):
        grad_cam(quantize(net, X), X)


@pytest.mark.slow
def test_the_report_of_the_shipped_weights_in_a_browser(cli, tmp_path):
    page = tmp_path / "r.html"
    result = cli.here("evaluate", "--report", str(page), "--limit-test", "500", "--mistakes", "8")
    assert result.returncode == 0, result.stderr
    assert f"wrote {page}" in result.stdout
    assert page.stat().st_size < 5e6
    shot, loaded, count, dom = look_in_browser(page, tmp_path)
    assert shot.std() > 20 and (shot < 128).mean() > 0.02  # not blank: text and pictures
    # per class (bars), the confusion matrix and 8 mistakes: 10 pictures, all shown
    assert (loaded, count) == (10, 10)
    assert report_sections(dom) == ["accuracy", "per-class", "confusion", "mistakes", "run",
                                    "made-by"]
    assert dom.count("<figure>") == 8
    accuracy = re.search(r"test acc (0\.\d{4})", result.stdout).group(1)
    assert f'<p class="accuracy">{accuracy}</p>' in dom
    assert "500 test images" in dom and "The weights shipped in the package" in dom
    assert f"evaluate --report {page} --limit-test 500 --mistakes 8" in dom
    result = cli.here("evaluate", "--report", str(page))  # refused before any work
    assert result.returncode != 0 and "exists; give another name, or --force" in result.stderr


def test_the_report_stays_readable_at_1000_classes(tmp_path):
    rng = np.random.default_rng(0)
    confusion = rng.integers(0, 3, size=(1000, 1000)) + np.diag(np.full(1000, 40))
    confusion[7, 3] = 99  # the most confused pair
    result = EvalResult(float(np.trace(confusion) / confusion.sum()),
                        (np.diag(confusion) / confusion.sum(axis=1)).tolist(), confusion)
    classes = [f"class {i}" for i in range(1000)]
    info = ModelInfo(ResNetSpec(num_classes=1000), classes=classes)
    page = write_report(str(tmp_path / "r.html"), result, info, [], "test images",
                        command="python -m resnet_gluon evaluate --report r.html")
    text = open(page, encoding="utf-8").read()
    assert len(text) < 1e6
    assert 'alt="confusion matrix"' not in text and 'alt="per-class accuracy"' not in text
    assert "the 20 most confused pairs of the 1,000 classes" in text
    assert "<tr><td>class 7</td><td>class 3</td><td>99</td></tr>" in text
    assert "The 20 classes with the lowest accuracy of 1,000" in text
    assert "<details><summary>all 1,000 classes</summary>" in text


@pytest.mark.slow
def test_a_report_of_an_int8_net_is_computed_on_float32_and_says_so_once(cli, tmp_path):
    page = tmp_path / "r.html"
    result = cli.here("evaluate", "--report", str(page), "--int8", "--calib-images", "32",
                 "--limit-test", "200", "--mistakes", "2")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("computed on the float32 net") == 1
    assert "int8 test acc" in result.stdout  # the printed tables stay the INT8 net's
    text = page.read_text(encoding="utf-8")
    assert text.count("Computed on the float32 net") == 1
    fp32 = re.search(r"^test acc (0\.\d{4})", result.stdout, re.M).group(1)
    assert f'<p class="accuracy">{fp32}</p>' in text
