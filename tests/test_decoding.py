"""One decoder on every path: the same file gives the same pixels through the folder reader,
pack + ImageRecordIter, predict, evaluate and the ONNX recipe of docs/own-images.md."""
import os

import numpy as np
import pytest
from PIL import Image, ImageOps

from resnet_gluon.folders import load_image_folder
from resnet_gluon.inputs import InputSpec
from resnet_gluon.model import ResNetSpec
from resnet_gluon.recordio import RecordBatches, pack
from resnet_gluon.sources import open_source
from resnet_gluon.trained import ModelInfo

SIDE = 32
HERE = os.path.dirname(os.path.abspath(__file__))


def _photos():
    """scikit-learn's two real photographs (427 x 640, RGB)."""
    from sklearn.datasets import load_sample_images

    return load_sample_images().images


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    """A folder of the awkward files a phone, a scanner or an editor writes, made from real
    photographs: 16-bit gray, EXIF-rotated, palette, RGBA, CMYK, and plain 8-bit."""
    china, flower = _photos()
    root = tmp_path_factory.mktemp("awkward") / "photos"
    (root / "china").mkdir(parents=True)
    (root / "flower").mkdir()
    gray = np.asarray(Image.fromarray(china).convert("L"))
    Image.fromarray(gray).save(root / "china" / "gray8.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(root / "china" / "gray16.png")
    # Upright the top is white and the bottom black; stored turned a quarter to the left,
    # with EXIF orientation 6 ("turn right to view"), as a phone held on its side writes it.
    upright = np.array(china[:, :427])  # 427 x 427, then a marker band on top
    upright[:40] = 255
    upright[-40:] = 0
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(upright).transpose(Image.ROTATE_90).save(root / "china" / "phone.jpg",
                                                              exif=exif, quality=95)
    Image.fromarray(flower).convert("P", palette=Image.ADAPTIVE).save(root / "flower" / "p.png")
    rgba = np.dstack([flower, np.linspace(0, 255, 640, dtype=np.uint8)[None].repeat(427, 0)])
    Image.fromarray(rgba, "RGBA").save(root / "flower" / "rgba.png")
    Image.fromarray(flower).convert("CMYK").save(root / "flower" / "cmyk.jpg", quality=95)
    Image.fromarray(flower).save(root / "flower" / "rgb.jpg", quality=95)
    return root


def _doc_recipe(path: str, channels: int) -> np.ndarray:
    """The preprocessing lines of docs/own-images.md's onnxruntime block, run as written on
    ``path`` (up to the pixel values, before the normalisation)."""
    page = open(os.path.join(HERE, "..", "docs", "own-images.md"), encoding="utf-8").read()
    block = page.split("<!-- own-onnxruntime -->\n```python\n")[1].split("```")[0]
    lines = block.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("img = "))
    last = next(i for i, line in enumerate(lines) if line.startswith("x = np.asarray"))
    code = "\n".join(lines[first:last + 1]).replace('"photo.jpg"', repr(path))
    scope = dict(np=np, Image=Image, ImageOps=ImageOps, side=SIDE,
                 meta={"in_channels": channels, "resize": SIDE})
    exec(code, scope)
    return np.rint(scope["x"] * 255).astype(np.uint8)


def test_every_path_reads_a_file_as_the_same_pixels(awkward, tmp_path):
    folder = load_image_folder(str(awkward), SIDE, channels=3)
    names = [os.path.basename(f) for f in folder.files]
    assert names == ["gray16.png", "gray8.png", "phone.jpg", "cmyk.jpg", "p.png", "rgb.jpg",
                     "rgba.png"]
    assert folder.images.shape == (7, SIDE, SIDE, 3)
    spec = InputSpec("crop", SIDE, 3, [0.0] * 3, [1.0] * 3)
    # predict's reader: the run's input record
    for path, image in zip(folder.files, folder.images):
        np.testing.assert_array_equal(spec.read(path), image, err_msg=path)
    # evaluate's batches (pixel values / 255 with mean 0 and std 1)
    info = ModelInfo(ResNetSpec(num_classes=2, in_channels=3), spec, ["china", "flower"])
    batches = open_source(str(awkward)).eval_batches(info, batch_size=7).batches
    X = np.concatenate([x.asnumpy() for x, _ in batches])
    np.testing.assert_allclose(X * 255, folder.images.transpose(0, 3, 1, 2), atol=1e-3)
    # pack + ImageRecordIter: the same pixels, as stored losslessly
    packed = pack(str(awkward), str(tmp_path / "all"), size=SIDE, channels=3)
    assert str(packed) == "7 images of 2 classes (colour, 32x32)"
    records = RecordBatches(str(tmp_path / "all.rec"), 7, SIDE, 3, spec.normalize)
    X = np.concatenate([x.asnumpy() for x, _ in records.batches(0)])
    order = np.random.default_rng(0).permutation(7)  # pack's seeded order
    np.testing.assert_allclose(X * 255, folder.images[order].transpose(0, 3, 1, 2), atol=1e-3)
    # the ONNX recipe of the docs (Pillow and numpy alone): within 1/255 (it scales the whole
    # image where the reader resamples only the centre square)
    for path, image in zip(folder.files, folder.images):
        theirs = _doc_recipe(path, 3).astype(int)
        assert np.abs(theirs - image).max() <= 1, path


def test_the_decoder_turns_16_bit_and_exif_files_into_what_they_show(awkward):
    gray = load_image_folder(str(awkward), SIDE, channels=1)
    by_name = dict(zip((os.path.basename(f) for f in gray.files), gray.images))
    # 16-bit gray is the 8-bit image scaled by 257: read back, the very same pixels (Pillow's
    # own conversion clipped every nonzero pixel to 255)
    np.testing.assert_array_equal(by_name["gray16.png"], by_name["gray8.png"])
    assert by_name["gray16.png"].std() > 20
    # EXIF orientation 6 applied: white band on top, black at the bottom, as a viewer shows
    phone = by_name["phone.jpg"]
    assert phone[:2].mean() > 240 and phone[-2:].mean() < 15, (phone[:2].mean(),
                                                                phone[-2:].mean())
    # a colour net sees the gray file as gray repeated over R, G and B
    colour = load_image_folder(str(awkward), SIDE, channels=3)
    sixteen = colour.images[[os.path.basename(f) for f in colour.files].index("gray16.png")]
    np.testing.assert_array_equal(sixteen[..., 0], sixteen[..., 2])
