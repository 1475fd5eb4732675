"""Predict on image files with a net trained for a few steps on real Fashion-MNIST."""
import json
import os
import signal

import numpy as np
import pytest
from PIL import Image

from resnet_gluon.data import BatchIter
from resnet_gluon.evaluate import evaluate
from resnet_gluon.export import export_symbol
from resnet_gluon.predict import load_model, predict_files, read_image
from resnet_gluon.trained import load_trained


def test_predict_on_png_files_agrees_with_evaluate(cli, trained_run, tmp_path, test_images):
    images, labels = test_images
    for i in range(100):
        Image.fromarray(images[i]).save(tmp_path / f"{i:03d}.png")
    result = cli.here("predict", "--model", str(trained_run / "model.params"), str(tmp_path),
                      "--json", "--topk", "2")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [os.path.basename(x["file"]) for x in lines] == [f"{i:03d}.png" for i in range(100)]
    assert all(len(x["top"]) == 2 and x["top"][0]["probability"] >= x["top"][1]["probability"]
               for x in lines)
    net, info = load_trained(str(trained_run / "model.params"))
    evaluated = evaluate(net, BatchIter(images[:100], labels[:100], 50, resize=96))
    ours = np.zeros((10, 10), dtype=np.int64)
    for x, label in zip(lines, labels[:100]):
        ours[label, info.classes.index(x["top"][0]["class"])] += 1
    np.testing.assert_array_equal(ours, evaluated.confusion)


def test_predict_reads_colour_and_other_sizes(cli, trained_run, tmp_path, test_images):
    images, _ = test_images
    gray = images[3]
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(tmp_path / "rgb.png")
    Image.fromarray(np.stack([gray] * 3 + [np.full_like(gray, 255)], axis=-1)).save(
        tmp_path / "rgba.png")
    Image.fromarray(gray).resize((112, 112), Image.BILINEAR).save(tmp_path / "big.jpg",
                                                                  quality=95)
    wide = np.zeros((28, 56), dtype=np.uint8)
    wide[:, 14:42] = gray
    Image.fromarray(wide).save(tmp_path / "wide.png")
    for name in ("gray.png", "rgb.png", "rgba.png"):
        np.testing.assert_array_equal(read_image(str(tmp_path / name)), gray)
    # padded to 56x56 with its (black) border, then shrunk by area: a quarter of the light
    padded = read_image(str(tmp_path / "wide.png"))
    assert padded.shape == (28, 28) and abs(padded.mean() - gray.mean() / 4) < 1
    big = read_image(str(tmp_path / "big.jpg"))
    assert big.shape == (28, 28) and np.abs(big.astype(int) - gray).mean() < 12
    assert (read_image(str(tmp_path / "gray.png"), invert=True) == 255 - gray).all()
    net, info = load_model(str(trained_run / "model.params"))
    predictions, errors = predict_files(net, info, [str(tmp_path / n) for n in
                                                    ("gray.png", "rgb.png", "rgba.png")])
    assert not errors and len({p.top[0][0] for p in predictions}) == 1


def test_predict_names_bad_files_and_labels_the_rest(cli, trained_run, tmp_path, test_images):
    images, _ = test_images
    Image.fromarray(images[0]).save(tmp_path / "good.png")
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    files = [str(tmp_path / n) for n in ("good.png", "notes.png", "missing.png", "empty.jpg")]
    result = cli.here("predict", "--model", str(trained_run / "model.params"), *files)
    assert result.returncode == 1
    out = result.stdout.splitlines()
    assert len(out) == 1 and out[0].startswith(files[0] + ": ")
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 3 and "Traceback" not in result.stderr
    for name, line in zip(("notes.png", "missing.png", "empty.jpg"), errors):
        assert line.startswith("resnet-gluon predict: error: ") and name in line


@pytest.mark.slow
def test_predict_with_an_exported_symbol_model(cli, trained_run, tmp_path, test_images):
    images, _ = test_images
    Image.fromarray(images[5]).save(tmp_path / "x.png")
    net, info = load_trained(str(trained_run / "model.params"))
    export_symbol(net, str(tmp_path / "m"), info)
    by_params = cli.here("predict", "--model", str(trained_run / "model.params"),
                         str(tmp_path / "x.png"))
    by_symbol = cli.here("predict", "--model", str(tmp_path / "m"), str(tmp_path / "x.png"))
    assert by_params.returncode == by_symbol.returncode == 0, by_symbol.stderr
    assert by_params.stdout.split(": ")[1].split()[:2] == by_symbol.stdout.split(": ")[1].split()[:2]
    os.remove(tmp_path / "m-info.json")
    with pytest.raises(ValueError, match="pass --resize"):
        load_model(str(tmp_path / "m"))
    assert load_model(str(tmp_path / "m"), resize=96)[1].resize == 96


def _png_header_only(path, width, height):
    """A PNG whose header claims ``width`` x ``height`` (the pixels are not there: MXNet's
    decoder still allocated them all)."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
                     + struct.pack(">I", zlib.crc32(chunk)))


def test_a_strip_is_refused_by_name_before_decoding_and_the_good_image_labelled(
        cli, trained_run, tmp_path, test_images):
    # 60000x1 pixels in a few hundred bytes (padded to a square it took 3.6 GB once; a
    # 1x20,000,000 strip scaled to a training size has no end): refused from its header.
    Image.new("L", (60000, 1), 200).save(tmp_path / "strip.png")
    assert os.path.getsize(tmp_path / "strip.png") < 1000
    Image.fromarray(test_images[0][0]).save(tmp_path / "good.png")
    child = ("import resource, sys\n"
             "from resnet_gluon.predict import read_image\n"
             "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
             "before = peak()\n"
             "try:\n"
             "    read_image(sys.argv[1])\n"
             "except ValueError as err:\n"
             "    print(err, peak() - before)\n")
    result = cli.python("-c", child, str(tmp_path / "strip.png"))
    assert result.returncode == 0, result.stderr
    message, grown_mb = result.stdout.rsplit(" ", 1)
    assert message == (f"{tmp_path / 'strip.png'}: the image is 60000x1 pixels, one side more "
                       f"than 100 times the other: a strip, not a picture this reader decodes; "
                       f"crop it first.")
    assert int(grown_mb) < 20, result.stdout
    result = cli.here("predict", "--model", str(trained_run / "model.params"),
                      str(tmp_path / "strip.png"), str(tmp_path / "good.png"))
    assert result.returncode == 1
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        str(tmp_path / "good.png")]
    assert "strip.png: the image is 60000x1 pixels, one side more than 100" in result.stderr


def test_an_image_too_large_to_decode_is_named_as_such(cli, trained_run, tmp_path, test_images):
    _png_header_only(tmp_path / "huge.png", 40000, 40000)
    Image.fromarray(test_images[0][0]).save(tmp_path / "good.png")
    with pytest.raises(ValueError, match=r"huge.png: the image is 40000x40000 pixels, more than "
                                         r"the 50,000,000 this reader decodes"):
        read_image(str(tmp_path / "huge.png"))
    result = cli.here("predict", "--model", str(trained_run / "model.params"),
                 str(tmp_path / "huge.png"), str(tmp_path / "good.png"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.startswith(str(tmp_path / "good.png") + ": ")
    assert "huge.png: the image is 40000x40000 pixels" in result.stderr


# --------------------------------------------------------------------------- files that lie

def _boot_files(tmp_path, test_images):
    """A whole JPEG and PNG of a test image (an ankle boot), and broken copies of them."""
    boot = test_images[0][0]
    Image.fromarray(boot).resize((280, 280)).save(tmp_path / "boot.jpg", quality=95)
    Image.fromarray(boot).save(tmp_path / "boot.png")
    jpeg, png = (tmp_path / "boot.jpg").read_bytes(), (tmp_path / "boot.png").read_bytes()
    (tmp_path / "half.jpg").write_bytes(jpeg[:len(jpeg) // 2])
    (tmp_path / "half.png").write_bytes(png[:len(png) // 2])
    (tmp_path / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    return tmp_path


def test_truncated_or_fake_image_files_are_refused_not_guessed_at(tmp_path, test_images):
    files = _boot_files(tmp_path, test_images)
    assert read_image(str(files / "boot.jpg")).shape == (28, 28)
    for name in ("half.jpg", "half.png", "fake.png"):
        with pytest.raises(ValueError, match=f"{name}: the image is truncated or corrupt"):
            read_image(str(files / name))
    (tmp_path / "notes.gif").write_bytes(b"GIF89a" + bytes(20))
    with pytest.raises(ValueError, match="not an image this library can decode"):
        read_image(str(tmp_path / "notes.gif"))


def test_a_fifo_or_a_device_is_named_and_not_read(tmp_path):
    os.mkfifo(tmp_path / "f.png")  # opening it would block until a writer came

    def stuck(*_):
        raise TimeoutError("read_image blocked on a FIFO or read a device for 20 s")
    old = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(20)  # before: blocked for ever, or read /dev/zero until memory ran out
    try:
        for path in (str(tmp_path / "f.png"), "/dev/zero"):
            with pytest.raises(ValueError, match="not a regular file"):
                read_image(path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.slow
def test_predict_labels_the_good_files_beside_fifos_devices_and_broken_ones(cli, tmp_path,
                                                                            test_images):
    files = _boot_files(tmp_path, test_images)
    os.mkfifo(files / "f.png")
    names = ["f.png", "/dev/zero", "half.jpg", "fake.png", "boot.jpg", "boot.png"]
    result = cli("predict", *[n if n.startswith("/") else str(files / n) for n in names],
                 timeout=120)  # before: blocked for ever on the FIFO
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        str(files / "boot.jpg"), str(files / "boot.png")]
    assert all("ankle boot" in line for line in result.stdout.splitlines())
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 4 and "MXNetError" not in result.stderr
