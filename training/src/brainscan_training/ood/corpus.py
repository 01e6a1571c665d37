"""The out-of-distribution test corpus: ~100 images the classifier must not answer for.

Blank frames, noise, text, photos, drawings, other modalities, real scans from other scanners and
generated slices transformed or configured as training never does. Everything is made at build
time or read from installed packages (no download, nothing committed); deterministic per seed.
CLI: python -m brainscan_training.ood.corpus --out DIR [--seed N] [--sheet sheet.png]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.util
import io
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from brainscan_synthetic_mri.shapes import smooth_noise
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from brainscan_training.ood.corpus_sources import (
    SIZE,
    Entry,
    geometry,
    grey,
    other_modalities,
    real_scans,
    stretch,
    to_uint8,
    unseen_configs,
    upscale,
    windowing,
)

log = logging.getLogger(__name__)

CATEGORIES = (
    "blank",
    "noise",
    "text",
    "photo",
    "drawing",
    "other_modality",
    "geometry",
    "windowing",
    "unseen_config",
    "real_scanner",
)
# A spawn key of its own keeps the corpus's random streams apart from the training images'
# (synthetic.image_rng seeds with a plain 4-word key).
STREAM = 0x00D


@dataclass(frozen=True)
class CorpusItem:
    """One image the OOD detector must flag."""

    name: str  # unique, "category/what"
    category: str  # one of CATEGORIES
    image: Image.Image  # mode "L" or "RGB", 8-bit, >= 64 px a side
    source: str  # one line: how it was made, or which installed file it comes from


# --- blank and noise ----------------------------------------------------------------------------


def _blank(rng: np.random.Generator) -> Iterator[Entry]:
    rows, cols = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    for what, value in (("black", 0), ("white", 255), ("mid_grey", 128), ("dark_grey", 20)):
        yield Entry(what, grey(np.full((SIZE, SIZE), value, np.uint8)), f"every pixel {value}")
    yield Entry("black_rgb", Image.new("RGB", (SIZE, SIZE)), "RGB, every pixel 0")
    faint = grey(np.abs(rng.normal(0.0, 2.0, (SIZE, SIZE))).astype(np.uint8))
    yield Entry("near_black_noise", faint, "|N(0, 2)| grey levels: black with a faint grain")
    yield Entry("gradient_horizontal", grey(to_uint8(cols)), "linear ramp 0-255, left to right")
    radial = 1.0 - np.clip(np.hypot(rows - 0.5, cols - 0.5) / 0.5, 0, 1)
    yield Entry("gradient_radial", grey(to_uint8(radial)), "bright centre fading to black")


def _pink(rng: np.random.Generator) -> np.ndarray:
    """Noise with a 1/f amplitude spectrum, like natural textures."""
    freq = np.hypot(*np.meshgrid(np.fft.fftfreq(SIZE), np.fft.fftfreq(SIZE), indexing="ij"))
    spectrum = np.fft.fft2(rng.standard_normal((SIZE, SIZE))) / np.maximum(freq, 1.0 / SIZE)
    return np.real(np.fft.ifft2(spectrum))


def _noise(rng: np.random.Generator) -> Iterator[Entry]:
    shape = (SIZE, SIZE)
    yield Entry("uniform_grey", grey(rng.integers(0, 256, shape, dtype=np.uint8)), "U(0, 255)")
    rgb = Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8), mode="RGB")
    yield Entry("uniform_rgb", rgb, "U(0, 255) in each RGB channel")
    yield Entry("gaussian", grey(to_uint8(rng.normal(0.5, 0.16, shape))), "N(128, 40) grey")
    draw = rng.random(shape)
    pepper = np.where(draw < 0.15, 0, np.where(draw > 0.85, 255, 128)).astype(np.uint8)
    yield Entry("salt_and_pepper", grey(pepper), "mid grey with 15% black and 15% white pixels")
    blobs = grey(stretch(smooth_noise(rng, shape, 12.0)))
    yield Entry("blobby", blobs, "smooth Gaussian random field, 12 px correlation length")
    real, imag = (0.04 * rng.standard_normal(shape) for _ in range(2))
    source = "magnitude of complex N(0, 0.04): an MR image of empty air"
    yield Entry("rician_on_black", grey(to_uint8(np.hypot(real, imag))), source)
    yield Entry("pink", grey(stretch(_pink(rng))), "1/f noise")
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    disc = np.hypot((rows - 128) / 105, (cols - 128) / 88) < 1
    inside = grey(to_uint8(np.where(disc, rng.normal(120, 35, shape), 0) / 255))
    yield Entry("noise_in_disc", inside, "N(120, 35) inside a head-sized ellipse on black")


# --- text ---------------------------------------------------------------------------------------

LETTER = """Dear Dr. Marsh,

Thank you for referring Mrs. Ellis, whom I saw in clinic today.
She reports intermittent headaches over six weeks, worse in the
mornings, without nausea or visual change. Examination was
unremarkable. I have requested an MRI of the head with
contrast and will review her with the results.

Yours sincerely,

A. Kovac, Neurology"""
CODE = """def load_scan(path):
    header = read_header(path)
    if header.bits > 8:
        pixels = decode(path, header)
        return rescale(pixels)
    return decode(path, header)


class Viewer:
    def __init__(self, scan):
        self.scan = scan
        self.window = (40, 400)

    def show(self, index):
        frame = self.scan[index]
        return apply_window(frame, *self.window)"""
REPORT = """Technique: axial T1, T2, FLAIR and post-
contrast T1 of the brain.

Findings: no mass, haemorrhage or
acute infarct. Ventricles normal in size.
No abnormal enhancement. Paranasal
sinuses clear.

Impression: normal MRI of the brain."""
VIEWER_CORNERS = (
    ((6, 6), "ANON^PATIENT\nID 0042871\n1974-03-11"),
    ((150, 6), "Brain routine\nAx T1 SE\n1.5T"),
    ((6, 210), "W 620  L 310\nIm 12/24"),
    ((160, 222), "Zoom 1.00"),
)
WHITE = (255, 255, 255)


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _page(size: tuple[int, int], fill: int | tuple) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A blank L (grey fill) or RGB (tuple fill) image and a pen on it."""
    image = Image.new("RGB" if isinstance(fill, tuple) else "L", size, fill)
    return image, ImageDraw.Draw(image)


def _scanned(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A slight skew, blur and sensor grain, as from a flatbed scanner."""
    image = image.rotate(rng.uniform(-1.2, 1.2), Image.Resampling.BILINEAR, fillcolor=255)
    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(0.6)), dtype=np.float32)
    return grey(to_uint8((pixels + rng.normal(0, 6, pixels.shape)) / 255 * 0.92 + 0.04))


def _text(rng: np.random.Generator) -> Iterator[Entry]:
    letter, draw = _page((380, 400), 250)
    draw.multiline_text((22, 24), LETTER, fill=20, font=_font(11), spacing=5)
    source = "black text on a white page (PIL's default font), skewed, grainy"
    yield Entry("scanned_letter", _scanned(letter, rng), source)
    dark, draw = _page((SIZE, SIZE), 0)
    draw.multiline_text((10, 12), REPORT, fill=235, font=_font(11), spacing=5)
    yield Entry("white_on_black", dark, "white text on black")
    form, draw = _page((300, 360), 255)
    draw.text((20, 14), "PATIENT REGISTRATION", fill=0, font=_font(16))
    fields = ("Surname", "Given names", "Date of birth", "Address", "Phone", "GP", "Allergies")
    for k, label in enumerate(fields):
        draw.text((20, 52 + 38 * k), label, fill=30, font=_font(11))
        draw.line((110, 65 + 38 * k, 280, 65 + 38 * k), fill=0, width=1)
    for k, label in enumerate(("Pacemaker", "Metal implant", "Pregnant")):
        draw.rectangle((20 + 92 * k, 326, 30 + 92 * k, 336), outline=0)
        draw.text((35 + 92 * k, 324), label, fill=30, font=_font(10))
    yield Entry("form", _scanned(form, rng), "a scanned form: labels, lines, tick boxes")
    code, draw = _page((300, 300), (30, 32, 40))
    for k, line in enumerate(CODE.splitlines()):
        keyword = line.lstrip().startswith(("def", "class", "return", "if"))
        draw.text((6, 8 + 17 * k), f"{k + 1:>2}", fill=(110, 112, 120), font=_font(11))
        colour = (200, 120, 220) if keyword else (210, 215, 200)
        draw.text((30, 8 + 17 * k), line, fill=colour, font=_font(11))
    yield Entry("code_page", code, "code in an editor's dark theme, with line numbers")
    report, draw = _page((300, 330), 255)
    draw.text((20, 18), "MRI BRAIN WITH CONTRAST", fill=0, font=_font(17))
    draw.line((20, 44, 280, 44), fill=0, width=2)
    draw.multiline_text((20, 58), REPORT, fill=15, font=_font(11), spacing=6)
    yield Entry("radiology_report", report, "a radiology report page")
    overlay, draw = _page((SIZE, SIZE), 0)
    for xy, label in VIEWER_CORNERS:
        draw.multiline_text(xy, label, fill=230, font=_font(10), spacing=3)
    source = "a DICOM viewer's corner annotations with no image between them"
    yield Entry("viewer_overlay_only", overlay, source)
    glyph, draw = _page((SIZE, SIZE), 255)
    draw.text((128, 128), "R", fill=0, font=_font(220), anchor="mm")
    yield Entry("single_letter", glyph, "one 220 px letter R, black on white")
    ui, draw = _page((320, 240), (236, 236, 240))
    draw.rectangle((0, 0, 320, 26), fill=(52, 84, 160))
    draw.text((10, 6), "Upload scan - brainscan", fill=WHITE, font=_font(12))
    for k, label in enumerate(("Patient ID", "Study date", "Notes")):
        draw.text((16, 44 + 40 * k), label, fill=(40, 40, 40), font=_font(11))
        draw.rectangle((100, 40 + 40 * k, 300, 62 + 40 * k), fill=WHITE, outline=(150, 150, 150))
    draw.rounded_rectangle((200, 190, 300, 218), 6, fill=(52, 120, 220))
    draw.text((226, 196), "Submit", fill=WHITE, font=_font(12))
    yield Entry("ui_screenshot", ui, "a mock application window: fields and a button")


# --- photos -------------------------------------------------------------------------------------


def _package_file(package: str, *parts: str) -> Path:
    """A data file inside an installed package, found without importing it (sklearn.datasets
    takes seconds to import)."""
    return Path(importlib.util.find_spec(package).origin).parent.joinpath(*parts)


def _jpeg_roundtrip(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _photo(rng: np.random.Generator) -> Iterator[Entry]:
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
        hopper = Image.open(file).convert("RGB")
    source = "matplotlib sample_data/grace_hopper.jpg (portrait photograph)"
    yield Entry("grace_hopper", hopper, source)
    yield Entry("grace_hopper_grey", hopper.convert("L"), f"{source}, greyscale")
    face = hopper.convert("L").crop((150, 60, 450, 360)).resize((SIZE, SIZE))
    yield Entry("face_close_up_grey", face, f"{source}, face cropped, greyscale")
    oval, mask = Image.new("L", (SIZE, SIZE)), Image.new("L", (SIZE, SIZE))
    ImageDraw.Draw(mask).ellipse((38, 14, 218, 242), fill=255)
    oval.paste(face, mask=mask)
    yield Entry("face_oval_on_black", oval, f"{source}, the grey face in an oval on black")
    poor = _jpeg_roundtrip(hopper.resize((150, 128)), quality=12)
    yield Entry("grace_hopper_low_quality", poor, f"{source}, 150x128 at JPEG quality 12")
    images = _package_file("sklearn", "datasets", "images")
    china = Image.open(images / "china.jpg").convert("RGB")
    source = "sklearn datasets/images/china.jpg (photograph of a temple)"
    yield Entry("china", china, source)
    x, y = int(rng.integers(0, 300)), int(rng.integers(0, 150))
    crop = china.convert("L").crop((x, y, x + SIZE, y + SIZE))
    yield Entry("china_grey_crop", crop, f"{source}, greyscale 256 px crop")
    flower = Image.open(images / "flower.jpg").convert("RGB")
    source = "sklearn datasets/images/flower.jpg (photograph of a flower)"
    yield Entry("flower", flower, source)
    yield Entry("flower_grey", flower.convert("L").resize((320, 214)), f"{source}, greyscale")


# --- drawings -----------------------------------------------------------------------------------


def _wobbly_outline(rng: np.random.Generator, center, radii, points: int = 90) -> list:
    """A closed outline as if drawn by hand: low harmonics and jitter on an ellipse."""
    theta = np.linspace(0, 2 * np.pi, points, endpoint=False)
    wobble = 1 + 0.03 * np.sin(3 * theta + rng.uniform(0, 6)) + rng.normal(0, 0.006, points)
    xs = center[0] + radii[0] * wobble * np.cos(theta)
    ys = center[1] + radii[1] * wobble * np.sin(theta)
    return [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)] + [(xs[0], ys[0])]


def _figure(draw: Callable, size=(4.0, 3.0)) -> Image.Image:
    """A matplotlib figure drawn by `draw(axes)` on the Agg canvas (no pyplot state), as RGB."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=80)
    canvas = FigureCanvasAgg(figure)
    draw(figure.add_subplot())
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy(), mode="RGB")


def _on_white(image: Image.Image) -> Image.Image:
    background = Image.new("RGBA", image.size, (*WHITE, 255))
    return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")


def _mpl_sample(name: str) -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / name


def _digit() -> np.ndarray:
    """The first 8x8 handwritten digit of scikit-learn's digits set (values 0-16)."""
    with gzip.open(_package_file("sklearn", "datasets", "data", "digits.csv.gz"), "rt") as file:
        values = [float(v) for v in file.readline().split(",")]
    return np.asarray(values[:64], dtype=np.float32).reshape(8, 8)


def _shapes(rng: np.random.Generator) -> Iterator[Entry]:
    """Drawn with PIL: flat shapes, outlines, a cartoon face, hand-drawn head outlines."""
    shapes, draw = _page((SIZE, SIZE), WHITE)
    for _ in range(7):
        x, y, r = (int(v) for v in rng.integers((20, 20, 15), (236, 236, 50)))
        colour, kind = tuple(int(c) for c in rng.integers(0, 256, 3)), int(rng.integers(3))
        if kind == 0:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        elif kind == 1:
            draw.rectangle((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
    yield Entry("flat_shapes", shapes, "PIL: circles, squares and triangles in flat colours")
    lines, draw = _page((SIZE, SIZE), 255)
    draw.rectangle((30, 40, 120, 130), outline=0, width=3)
    draw.ellipse((140, 30, 230, 120), outline=0, width=3)
    draw.polygon([(60, 230), (128, 150), (200, 230)], outline=0, width=3)
    draw.line((20, 140, 236, 140), fill=0, width=2)
    yield Entry("line_drawing", lines, "PIL: black outlines of shapes on white")
    face, draw = _page((SIZE, SIZE), (250, 250, 245))
    draw.ellipse((28, 28, 228, 228), fill=(255, 214, 60), outline=(60, 40, 0), width=4)
    draw.ellipse((82, 80, 106, 112), fill=(40, 30, 20))
    draw.ellipse((150, 80, 174, 112), fill=(40, 30, 20))
    draw.arc((70, 100, 186, 190), 20, 160, fill=(120, 30, 20), width=6)
    yield Entry("cartoon_face", face, "PIL: a yellow smiley face")
    sketch, draw = _page((SIZE, SIZE), 250)
    draw.line(_wobbly_outline(rng, (128, 124), (92, 108)), fill=30, width=3)
    draw.line(_wobbly_outline(rng, (128, 124), (70, 86)), fill=60, width=2)
    yield Entry("head_outline_sketch", sketch, "PIL: hand-drawn-looking head outlines on white")
    chalk, draw = _page((SIZE, SIZE), 0)
    draw.line(_wobbly_outline(rng, (128, 128), (96, 112)), fill=235, width=5)
    draw.line(_wobbly_outline(rng, (128, 128), (74, 90)), fill=150, width=3)
    draw.line((128, 50, 126, 206), fill=150, width=2)
    yield Entry("head_outline_on_black", chalk, "PIL: white hand-drawn skull and brain on black")


def _drawing(rng: np.random.Generator) -> Iterator[Entry]:
    import matplotlib
    from matplotlib.colors import LightSource

    yield from _shapes(rng)
    t = np.linspace(0, 10, 200)
    chart = _figure(lambda ax: (ax.plot(t, np.sin(t) * np.exp(-t / 8)), ax.set_title("Signal")))
    yield Entry("line_chart", chart, "matplotlib Agg: a line plot with a title")
    heights = rng.uniform(1, 9, 6)
    bars = _figure(lambda ax: ax.bar(list("ABCDEF"), heights, color="tab:orange"))
    yield Entry("bar_chart", bars, "matplotlib Agg: a bar chart")
    dem = np.load(_mpl_sample("jacksboro_fault_dem.npz"))
    elevation, light = dem["elevation"].astype(np.float32), LightSource(azdeg=315, altdeg=45)
    shade = light.hillshade(elevation, vert_exag=0.05, dx=float(dem["dx"]), dy=float(dem["dy"]))
    source = "matplotlib sample_data/jacksboro_fault_dem.npz"
    yield Entry("relief_shaded", grey(to_uint8(shade)), f"{source}, hill-shaded relief")
    yield Entry("elevation_grey", grey(stretch(elevation)), f"{source}, elevation as grey")
    topo = np.load(_mpl_sample("topobathy.npz"))["topo"].astype(np.float32)[::-1]
    source = "matplotlib sample_data/topobathy.npz"
    yield Entry("topobathy_grey", upscale(grey(stretch(topo)), SIZE), f"{source}, grey")
    coloured = light.shade(topo, cmap=matplotlib.colormaps["gist_earth"], blend_mode="soft")
    relief = upscale(Image.fromarray(to_uint8(coloured[..., :3]), mode="RGB"), SIZE)
    yield Entry("topobathy_shaded", relief, f"{source}, shaded relief on gist_earth colours")
    logo = _on_white(Image.open(_mpl_sample("logo2.png")))
    yield Entry("matplotlib_logo", logo, "matplotlib sample_data/logo2.png on white")
    icon = _on_white(Image.open(_mpl_sample("Minduka_Present_Blue_Pack.png")))
    yield Entry("rendered_icon", icon, "matplotlib sample_data/Minduka_Present_Blue_Pack.png")
    digit = grey(to_uint8(_digit() / 16.0)).resize((128, 128), Image.Resampling.NEAREST)
    source = "sklearn datasets/data/digits.csv.gz: first 8x8 handwritten digit, enlarged"
    yield Entry("handwritten_digit", digit, source)


# --- the corpus ---------------------------------------------------------------------------------

BUILDERS: dict[str, Callable[[np.random.Generator], Iterator[Entry]]] = {
    "blank": _blank,
    "noise": _noise,
    "text": _text,
    "photo": _photo,
    "drawing": _drawing,
    "other_modality": other_modalities,
    "geometry": geometry,
    "windowing": windowing,
    "unseen_config": unseen_configs,
    "real_scanner": real_scans,
}


def build_corpus(seed: int = 0) -> list[CorpusItem]:
    """Every corpus item, in CATEGORIES order; the same seed gives the same pixels."""
    items = []
    for index, category in enumerate(CATEGORIES):
        rng = np.random.default_rng(np.random.SeedSequence([seed, index], spawn_key=(STREAM,)))
        for what, image, source in BUILDERS[category](rng):
            items.append(CorpusItem(f"{category}/{what}", category, _as_upload(image), source))
    names = [item.name for item in items]
    if len(set(names)) != len(names):
        raise RuntimeError("corpus item names are not unique")
    return items


def _as_upload(image: Image.Image) -> Image.Image:
    """8-bit L or RGB, as a browser upload decodes."""
    return image if image.mode in ("L", "RGB") else image.convert("RGB")


def write_corpus(out_dir: Path, seed: int = 0, *, items: list[CorpusItem] | None = None) -> Path:
    """PNGs under out_dir/<category>/<what>.png and out_dir/corpus.csv; returns the CSV's path.

    items: an already built corpus to write instead of building one for `seed`.
    """
    out_dir = Path(out_dir)
    items = build_corpus(seed) if items is None else items
    csv_path = out_dir / "corpus.csv"
    for stale in out_dir.glob("*/*.png"):  # an earlier run's items may have had other names
        stale.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    with csv_path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["name", "category", "path", "source"])
        for item in items:
            path = out_dir / f"{item.name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            item.image.save(path, format="PNG")
            writer.writerow([item.name, item.category, f"{item.name}.png", item.source])
    return csv_path


def _label(name: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """The category, then the item's name broken at underscores to fit `width` (3 lines at most)."""
    category, what = name.split("/", 1)
    lines, line = [category], ""
    for part in what.split("_"):
        wider = f"{line}_{part}" if line else part
        if line and font.getlength(wider) > width:
            lines.append(f"{line}_")
            line = part
        else:
            line = wider
    return [*lines, line][:3]


def contact_sheet(items: list[CorpusItem], tile: int = 96, columns: int = 10) -> Image.Image:
    """All items as labelled tiles, for a human to look over."""
    label, pad = 32, 4
    rows = -(-len(items) // columns)
    size = (columns * (tile + pad) + pad, rows * (tile + label + pad) + pad)
    sheet = Image.new("RGB", size, WHITE)
    draw, font = ImageDraw.Draw(sheet), _font(9)
    for k, item in enumerate(items):
        x = pad + (k % columns) * (tile + pad)
        y = pad + (k // columns) * (tile + label + pad)
        thumb = item.image.convert("RGB")
        thumb.thumbnail((tile, tile), Image.Resampling.BILINEAR)
        sheet.paste((40, 40, 40), (x, y, x + tile, y + tile))
        sheet.paste(thumb, (x + (tile - thumb.width) // 2, y + (tile - thumb.height) // 2))
        for line, text in enumerate(_label(item.name, font, tile)):
            draw.text((x, y + tile + 1 + 10 * line), text, fill=(0, 0, 0), font=font)
    return sheet


def main(argv: list[str] | None = None) -> int:
    """Command line entry: write the corpus (and optionally a contact sheet)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet", type=Path, help="also write a contact sheet PNG here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    started = time.perf_counter()
    items = build_corpus(args.seed)
    log.info("built %d items in %.1f s", len(items), time.perf_counter() - started)
    csv_path = write_corpus(args.out, args.seed, items=items)
    log.info("wrote %s", csv_path)
    if args.sheet is not None:
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        contact_sheet(items).save(args.sheet)
        log.info("wrote contact sheet %s", args.sheet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
