"""nnscratch predict end to end: text and JSON output, bad files, --show-input, and real MNIST digits
rendered the ways a user's files differ from MNIST."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.cli import main
from nnscratch.commands.predict import percent
from nnscratch.data.digits import prepare_digit
from nnscratch.layers.softmax import softmax

Image = pytest.importorskip("PIL.Image")
ImageFilter = pytest.importorskip("PIL.ImageFilter")


def templates_model(rng_seed=0):
    """Linear(784, 10): each class scores the input against a (random) template."""
    return nn.Sequential(nn.Linear(784, 10, rng=np.random.default_rng(rng_seed)))


def digit_png(path, seed=0):
    """Dark ink on white paper, 90x60: a bar and a cross-bar whose sizes and place depend on ``seed``."""
    rng = np.random.default_rng(seed)
    gray = np.ones((90, 60), dtype=np.float32)
    top, left = rng.integers(5, 30), rng.integers(5, 25)
    gray[top : top + rng.integers(20, 50), left : left + 8] = 0.0
    gray[top + rng.integers(0, 20) :][:8, left : left + rng.integers(10, 30)] = 0.0
    Image.fromarray(np.rint(gray * 255).astype(np.uint8)).save(path)
    return gray


def expected_probabilities(model, gray):
    x = prepare_digit(gray).astype(np.float32).reshape(1, 784) / 255
    return softmax(model.forward(x))[0]


@pytest.fixture
def files(tmp_path):
    model = templates_model()
    nn.save(model, tmp_path / "bare.npz")
    # the same model as train-mnist saves it: followed by its loss
    nn.save(nn.Sequential(*model, nn.SoftmaxCrossEntropy(), nn.Mean()), tmp_path / "trained.npz")
    grays = [digit_png(tmp_path / f"d{i}.png", seed=i) for i in range(3)]
    return model, grays, tmp_path


def test_text_output_gives_the_top_3_classes_per_image(files, capsys):
    model, grays, tmp_path = files
    assert len({prepare_digit(g).tobytes() for g in grays}) == 3  # three different inputs
    paths = [str(tmp_path / f"d{i}.png") for i in range(3)]
    code = main(["predict", str(tmp_path / "trained.npz"), *paths])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 3
    for path, gray, line in zip(paths, grays, lines):
        p = expected_probabilities(model, gray)
        top = np.argsort(-p)[:3]
        assert line == f"{path}: " + ", ".join(f"{c} ({percent(p[c])})" for c in top)


@pytest.mark.parametrize("p, text", [(1.0, "100%"), (0.99996, ">99.9%"), (0.999, "99.9%"), (0.5, "50.0%"),
                                     (0.0005, "0.1%"), (0.0004, "<0.1%"), (0.0, "0%")])  # fmt: skip
def test_percentages_never_round_to_a_false_certainty(p, text):
    assert percent(p) == text


def test_json_output_and_the_bare_model_give_the_same_answers(files, capsys):
    model, grays, tmp_path = files
    assert main(["predict", str(tmp_path / "bare.npz"), str(tmp_path / "d0.png"), "--json", "--top", "2"]) == 0
    document = json.loads(capsys.readouterr().out)
    p = expected_probabilities(model, grays[0])
    assert document["checkpoint"] == str(tmp_path / "bare.npz")
    (result,) = document["results"]
    assert result["file"] == str(tmp_path / "d0.png")
    np.testing.assert_allclose(result["probabilities"], p, rtol=1e-5)
    top = np.argsort(-p)[:2]
    assert [t["class"] for t in result["top"]] == list(top)
    np.testing.assert_allclose([t["probability"] for t in result["top"]], p[top], rtol=1e-5)


def test_a_model_ending_in_softmax_is_not_softmaxed_twice(files, capsys):
    model, grays, tmp_path = files
    nn.save(nn.Sequential(*model, nn.Softmax(), nn.CrossEntropy(), nn.Mean()), tmp_path / "softmax.npz")
    assert main(["predict", str(tmp_path / "softmax.npz"), str(tmp_path / "d1.png"), "--json"]) == 0
    probabilities = json.loads(capsys.readouterr().out)["results"][0]["probabilities"]
    np.testing.assert_allclose(probabilities, expected_probabilities(model, grays[1]), rtol=1e-5)


def test_npy_input_goes_to_a_conv_network_as_an_image(tmp_path, capsys):
    conv = nn.Sequential(nn.Conv2D(1, 2, 3, rng=np.random.default_rng(1)), nn.Flatten(),
                         nn.Linear(2 * 26 * 26, 10, rng=np.random.default_rng(2)))  # fmt: skip
    nn.save(conv, tmp_path / "conv.npz")
    pixels = np.random.default_rng(3).integers(0, 256, size=(28, 28), dtype=np.uint8)
    np.save(tmp_path / "x.npy", pixels)
    assert main(["predict", str(tmp_path / "conv.npz"), str(tmp_path / "x.npy"), "--json"]) == 0
    probabilities = json.loads(capsys.readouterr().out)["results"][0]["probabilities"]
    expected = softmax(conv.forward(pixels.reshape(1, 1, 28, 28).astype(np.float32) / 255))[0]
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5)


def test_bad_files_get_one_line_each_and_the_others_are_still_classified(files, capsys):
    model, grays, tmp_path = files
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("seven")
    np.save(tmp_path / "wrong.npy", np.zeros((28, 27)))
    Image.fromarray(np.full((30, 30), 200, dtype=np.uint8)).save(tmp_path / "blank.png")
    names = ["d0.png", "empty.png", "notes.txt", "missing.png", "wrong.npy", "blank.png", "d2.png"]
    code = main(["predict", str(tmp_path / "trained.npz"), *[str(tmp_path / n) for n in names]])
    out, err = capsys.readouterr()
    assert code == 1
    assert [line.split(":")[0] for line in out.splitlines()] == [str(tmp_path / "d0.png"), str(tmp_path / "d2.png")]
    assert err.splitlines() == [
        f"predict: {tmp_path / 'empty.png'}: the file is empty",
        f"predict: {tmp_path / 'notes.txt'}: not an image Pillow can read (nor a .npy array)",
        f"predict: {tmp_path / 'missing.png'}: no such file",
        f"predict: {tmp_path / 'wrong.npy'}: expected one MNIST digit of shape (28, 28), (1, 28, 28) or (784,), "
        "got shape (28, 27)",
        f"predict: {tmp_path / 'blank.png'}: no digit found: nothing stands out from the background "
        "(contrast 0.000, at least 0.1 needed)",
    ]
    # the JSON document carries the same errors, in the order given
    main(["predict", str(tmp_path / "trained.npz"), *[str(tmp_path / n) for n in names], "--json"])
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["file"] for r in results] == [str(tmp_path / n) for n in names]
    assert ["error" in r for r in results] == [False, True, True, True, True, True, False]
    assert results[2]["error"] == f"{tmp_path / 'notes.txt'}: not an image Pillow can read (nor a .npy array)"


@pytest.mark.parametrize("make, message", [
    (lambda d: None, r"missing.npz: no such checkpoint"),
    (lambda d: (d / "missing.npz").write_text("junk"), r"missing.npz: not a readable nnscratch checkpoint"),
    (lambda d: nn.save(nn.Sequential(nn.Linear(100, 10)), d / "missing.npz"),
     r"missing.npz: the network does not take a 28x28 digit \(tried the shapes .*\); as \(784,\): .*"
     r"Linear: expected 100 input features"),
])  # fmt: skip
def test_an_unusable_checkpoint_is_one_line_and_exit_2(tmp_path, capsys, make, message):
    make(tmp_path)
    digit_png(tmp_path / "d.png")
    code = main(["predict", str(tmp_path / "missing.npz"), str(tmp_path / "d.png")])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert re.fullmatch(f"predict: error: .*{message}.*\n", err)


@pytest.mark.parametrize("option, message", [
    (["--top", "x"], "--top must be an int, got 'x'"),
    (["--top", "0"], "--top must be >= 1, got 0"),
    (["--show-input", "/nonexistent/dir/a.png"], "--show-input /nonexistent/dir/a.png: the directory /nonexistent/dir does not exist"),
])  # fmt: skip
def test_bad_options_exit_2(files, capsys, option, message):
    _, _, tmp_path = files
    assert main(["predict", str(tmp_path / "bare.npz"), str(tmp_path / "d0.png"), *option]) == 2
    assert capsys.readouterr().err == f"predict: error: {message}\n"


def test_show_input_writes_exactly_what_the_network_saw(files, capsys):
    model, grays, tmp_path = files
    shown = tmp_path / "seen.png"
    assert main(["predict", str(tmp_path / "bare.npz"), str(tmp_path / "d0.png"), "--show-input", str(shown)]) == 0
    picture = np.asarray(Image.open(shown))
    np.testing.assert_array_equal(picture, prepare_digit(grays[0]))
    # several inputs: a grid, 10 a row, in the order given; an unreadable file leaves its cell blank
    names = [f"d{i % 3}.png" for i in range(11)]
    names[4] = "missing.png"
    main(["predict", str(tmp_path / "bare.npz"), *[str(tmp_path / n) for n in names], "--show-input", str(shown)])
    grid = np.asarray(Image.open(shown).convert("RGB"))
    assert grid.shape == (2 * 30 + 2, 10 * 30 + 2, 3)
    for index, name in enumerate(names):
        top, left = 2 + 30 * (index // 10), 2 + 30 * (index % 10)
        cell = grid[top : top + 28, left : left + 28]
        if name == "missing.png":
            assert (cell == (90, 0, 0)).all()
        else:
            np.testing.assert_array_equal(cell, np.repeat(prepare_digit(grays[index % 3])[:, :, None], 3, axis=2))
    assert (grid[0] == (40, 90, 200)).all() and (grid[-1, -1] == (40, 90, 200)).all()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".seen.png")] == []  # no temporary left


def test_without_pillow_npy_works_and_images_name_the_extra(files, tmp_path, capsys, monkeypatch):
    np.save(tmp_path / "x.npy", np.zeros((28, 28), dtype=np.uint8))
    for name in [m for m in sys.modules if m == "PIL" or m.startswith("PIL.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "PIL", None)  # `import PIL` raises ImportError
    code = main(["predict", str(tmp_path / "bare.npz"), str(tmp_path / "x.npy"), str(tmp_path / "d0.png")])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.startswith(f"{tmp_path / 'x.npy'}: ")
    assert err == (f"predict: {tmp_path / 'd0.png'}: reading image files needs Pillow, which is not installed: "
                   "pip install 'nnscratch[images]' (.npy arrays work without it)\n")
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "PIL" else object())
    assert main(["predict", str(tmp_path / "bare.npz"), str(tmp_path / "x.npy"), "--show-input",
                 str(tmp_path / "s.png")]) == 2  # fmt: skip
    assert capsys.readouterr().err == ("predict: error: --show-input needs Pillow, which is not installed: "
                                       "pip install 'nnscratch[images]'\n")


# -- real MNIST digits, as a user's files --------------------------------------------------------
SAMPLES = 300


def render(digit, rng, *, scale=6, canvas=(200, 300), stroke=0, dark_on_light=True):
    """One MNIST digit as a user would draw it: crisp strokes, scaled up, somewhere on a big canvas.

    ``stroke`` > 0 thickens the strokes by that many pixels each side (at the large scale), < 0 thins
    them. Returns (H, W) uint8.
    """
    size = 28 * scale
    big = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    big = big.point(lambda v: 255 if v >= 128 else 0)  # a pen's crisp edge
    if stroke > 0:
        big = big.filter(ImageFilter.MaxFilter(2 * stroke + 1))
    elif stroke < 0:
        big = big.filter(ImageFilter.MinFilter(-2 * stroke + 1))
    height, width = canvas
    page = np.zeros(canvas, dtype=np.uint8)
    top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
    page[top : top + size, left : left + size] = np.asarray(big)
    return 255 - page if dark_on_light else page


def save_variant(path, pixels, kind):
    gray = Image.fromarray(pixels)
    if kind == "rgb-png":
        gray.convert("RGB").save(path)
    elif kind == "rgba-png":  # dark ink, the paper fully transparent (and coloured in the RGB channels)
        rgba = np.zeros((*pixels.shape, 4), dtype=np.uint8)
        rgba[..., :3] = (0, 0, 255)
        rgba[..., 3] = 255 - pixels
        rgba[pixels < 128, :3] = 0
        Image.fromarray(rgba, mode="RGBA").save(path)
    elif kind == "jpeg":
        gray.convert("RGB").save(path, quality=80)
    else:
        gray.save(path)


VARIANTS = {  # name: (render options, file kind)
    "dark on white, 200x300, off-centre, RGB PNG": ({}, "rgb-png"),
    "dark on transparent, RGBA PNG": ({}, "rgba-png"),
    "dark on white, JPEG": ({}, "jpeg"),
    "thicker strokes (+3 px a side at 6x)": ({"stroke": 3}, "rgb-png"),
    "thinner strokes (-2 px a side at 6x)": ({"stroke": -2}, "gray-png"),
    "light on black, small 4x scale, 150x150": ({"scale": 4, "canvas": (150, 150), "dark_on_light": False}, "gray-png"),
}


@pytest.mark.slow
def test_real_mnist_digits_drawn_as_a_user_would_are_read_about_as_well_as_the_test_set(mnist_mirror, tmp_path, capsys):
    from nnscratch.data import load_mnist, scale_images
    from nnscratch.presets import PRESETS

    x_train, y_train, x_test, y_test = load_mnist(tmp_path / "mnist", mirrors=[mnist_mirror], progress=False)
    nn.seed(0)
    net = PRESETS["mlp"].build()
    nn.fit(net[:-2], net[-2:], nn.Adam(net[:-2], lr=3e-3), scale_images(x_train).reshape(-1, 784), y_train,
           epochs=1, batch_size=128, progress=False)  # fmt: skip
    nn.save(net, tmp_path / "mlp.npz")
    digits, labels = x_test[:SAMPLES], y_test[:SAMPLES]
    np.save(tmp_path / "plain.npy", digits[0])
    plain = np.mean(nn.predict(net[:-2], scale_images(digits).reshape(-1, 784)).argmax(axis=1) == labels)
    assert plain >= 0.96

    accuracy = {}
    for index, (name, (options, kind)) in enumerate(VARIANTS.items()):
        rng = np.random.default_rng(index)
        folder = tmp_path / f"v{index}"
        folder.mkdir()
        suffix = ".jpg" if kind == "jpeg" else ".png"
        paths = [folder / f"{i}{suffix}" for i in range(SAMPLES)]
        for path, digit in zip(paths, digits):
            save_variant(path, render(digit, rng, **options), kind)
        assert main(["predict", str(tmp_path / "mlp.npz"), *map(str, paths), "--json"]) == 0
        results = json.loads(capsys.readouterr().out)["results"]
        accuracy[name] = np.mean([r["top"][0]["class"] for r in results] == labels)
    print(f"plain arrays {plain:.3f}; " + "; ".join(f"{k} {v:.3f}" for k, v in accuracy.items()))
    # each variant within a few points of the arrays (one run of 300 digits moves by about a point),
    # and all of them together within two
    for name, value in accuracy.items():
        assert value >= plain - 0.04, f"{name}: {value:.3f} against {plain:.3f} for the test set's own arrays"
    assert np.mean(list(accuracy.values())) >= plain - 0.02


# -- odd inputs: each one line, the others still classified -----------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_among_the_images_is_refused_and_the_others_classified(files):
    _, _, tmp_path = files
    os.mkfifo(tmp_path / "pipe.png")
    names = [str(tmp_path / n) for n in ("d0.png", "pipe.png", "d1.png")]
    result = subprocess.run([sys.executable, "-m", "nnscratch", "predict", str(tmp_path / "bare.npz"), *names],
                            capture_output=True, text=True, timeout=60)  # a hang fails here, not forever
    assert result.returncode == 1
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [names[0], names[2]]
    assert result.stderr == (f"predict: {names[1]}: not a regular file but a FIFO; expected an image or .npy file "
                             "(save what a pipe or device gives to a file first)\n")


def test_a_float_tiff_with_an_infinite_pixel_is_one_line(files, capsys):
    _, _, tmp_path = files
    values = np.zeros((40, 30), dtype=np.float32)
    values[5:35, 12:18] = 3e38
    values[0, 0] = np.inf
    Image.fromarray(values, mode="F").save(tmp_path / "inf.tif")
    code = main(["predict", str(tmp_path / "bare.npz"), str(tmp_path / "inf.tif"), str(tmp_path / "d0.png")])
    out, err = capsys.readouterr()
    assert code == 1 and out.startswith(f"{tmp_path / 'd0.png'}: ") and out.count("\n") == 1
    assert err == f"predict: {tmp_path / 'inf.tif'}: the image holds NaN or infinite pixel values\n"


def test_file_names_that_are_not_utf8_are_shown_with_their_bytes_escaped(files, capsys):
    _, grays, tmp_path = files
    good = tmp_path / os.fsdecode(b"caf\xe9.png")  # a Latin-1 name, in a UTF-8 locale
    os.link(tmp_path / "d0.png", good)
    missing = tmp_path / os.fsdecode(b"\xff.png")
    argv = ["predict", str(tmp_path / "bare.npz"), str(good), str(missing)]
    assert main(argv) == 1  # capsys's stdout encodes strictly, as a UTF-8 terminal does
    out, err = capsys.readouterr()
    assert out.startswith(f"{tmp_path}/caf\\xe9.png: ") and err == f"predict: {tmp_path}/\\xff.png: no such file\n"
    assert main([*argv, "--json"]) == 1
    text = capsys.readouterr().out
    assert "\\udc" not in text  # no lone surrogate, which strict JSON parsers reject
    assert [r["file"] for r in json.loads(text)["results"]] == [f"{tmp_path}/caf\\xe9.png", f"{tmp_path}/\\xff.png"]
    env = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8:strict"}
    result = subprocess.run([os.fsencode(sys.executable), b"-m", b"nnscratch", *map(os.fsencode, argv)],
                            capture_output=True, env=env, timeout=60)
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    assert result.stdout.startswith(os.fsencode(tmp_path) + b"/caf\\xe9.png: ")


# -- non-finite numbers: said out loud, never printed as a prediction --------------------------------
def strict_json(text):
    """json.loads that refuses NaN and Infinity, as strict parsers do."""
    def refuse(name):
        raise ValueError(f"{name} is not standard JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.filterwarnings("error")  # a RuntimeWarning would be a second line on stderr
def test_nan_weights_are_refused_before_any_prediction(files, capsys):
    model, _, tmp_path = files
    broken = nn.Sequential(nn.Linear(784, 10, rng=0))
    broken[0].weight[3, :5] = np.nan
    broken[0].bias[0] = np.inf
    nn.save(broken, tmp_path / "nan.npz")
    for extra in ([], ["--json"]):
        assert main(["predict", str(tmp_path / "nan.npz"), str(tmp_path / "d0.png"), *extra]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err == (f"predict: error: {tmp_path / 'nan.npz'}: 6 weight values in 2 of its 2 parameter "
                                     "arrays are NaN or infinite (did the training diverge?): its predictions would "
                                     "mean nothing\n")


@pytest.mark.filterwarnings("error")  # a RuntimeWarning would be a second line on stderr
def test_scores_that_overflow_are_one_line_per_file_and_the_json_stays_standard(files, capsys):
    _, _, tmp_path = files
    huge = nn.Sequential(nn.Linear(784, 10, rng=0))
    huge[0].weight[...] = 3e38  # finite, but any ink overflows float32 to inf
    nn.save(huge, tmp_path / "huge.npz")
    np.save(tmp_path / "black.npy", np.zeros((28, 28), dtype=np.uint8))  # no ink: scores 0, fine
    argv = ["predict", str(tmp_path / "huge.npz"), str(tmp_path / "d0.png"), str(tmp_path / "black.npy")]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"{tmp_path / 'black.npy'}: ") and out.count("\n") == 1
    assert err == f"predict: {tmp_path / 'd0.png'}: the network's scores for it are NaN or infinite\n"
    assert main([*argv, "--json"]) == 1
    results = strict_json(capsys.readouterr().out)["results"]
    assert "top" not in results[0] and results[0]["error"].endswith("the network's scores for it are NaN or infinite")
    assert [t["probability"] for t in results[1]["top"]] == [0.1, 0.1, 0.1]
