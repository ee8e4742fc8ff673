"""Synthetic documents and charts with known content, for tests and the benchmark.

Every generator returns the rendered artefact together with its ground truth. Nothing here
is used at serving time; matplotlib is a dev dependency and is imported lazily.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw, ImageFont

FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "DejaVuSans.ttf",
)

WORDS = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "river", "stone", "cloud", "maple",
    "amber", "cedar", "harbor", "meadow", "silver", "copper", "garden",
]


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for p in FONT_PATHS:
        try:
            return ImageFont.truetype(p, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


@dataclass
class Synth:
    image: Image.Image
    truth: dict[str, Any] = field(default_factory=dict)


def table_image(rows: list[list[str]], *, ruled: bool = True, font_size: int = 22,
                pad: int = 14, origin: tuple[int, int] = (40, 60),
                size: tuple[int, int] | None = None, title: str | None = None) -> Synth:
    f = font(font_size)
    ncol = max(len(r) for r in rows)
    probe = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    widths = [0] * ncol
    for r in rows:
        for c, v in enumerate(r):
            widths[c] = max(widths[c], int(probe.textlength(v, font=f)))
    col_w = [w + 2 * pad + (0 if ruled else 26) for w in widths]
    row_h = font_size + 2 * pad
    W = size[0] if size else origin[0] * 2 + sum(col_w)
    H = size[1] if size else origin[1] + 40 + row_h * len(rows)
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    if title:
        d.text((origin[0], 15), title, fill="black", font=font(font_size + 4))
    x0, y0 = origin
    xs = [x0]
    for w in col_w:
        xs.append(xs[-1] + w)
    ys = [y0 + i * row_h for i in range(len(rows) + 1)]
    for ri, cells in enumerate(rows):
        for ci, v in enumerate(cells):
            d.text((xs[ci] + pad, ys[ri] + pad), v, fill="black", font=f)
    if ruled:
        for y in ys:
            d.line([(xs[0], y), (xs[-1], y)], fill="black", width=2)
        for x in xs:
            d.line([(x, ys[0]), (x, ys[-1])], fill="black", width=2)
    return Synth(img, {"rows": rows, "box": [xs[0], ys[0], xs[-1], ys[-1]]})


def random_table(seed: int, n_rows: int = 5, n_cols: int = 4) -> list[list[str]]:
    rng = random.Random(seed)
    header = [w.capitalize() for w in rng.sample(WORDS, n_cols)]
    body = []
    for _ in range(n_rows - 1):
        row = [rng.choice(WORDS)]
        for _c in range(n_cols - 1):
            row.append(f"{rng.randint(1, 9999)}" if rng.random() < 0.6 else
                       f"{rng.randint(1, 999)}.{rng.randint(0, 99):02d}")
        body.append(row)
    return [header, *body]


def form_image(pairs: list[tuple[str, str]], *, font_size: int = 24) -> Synth:
    f = font(font_size)
    img = Image.new("RGB", (900, 80 + 60 * len(pairs)), "white")
    d = ImageDraw.Draw(img)
    for i, (k, v) in enumerate(pairs):
        d.text((40, 40 + 60 * i), f"{k}: {v}", fill="black", font=f)
    return Synth(img, {"pairs": pairs})


def text_page(columns: list[list[str]], *, title: str | None = None, width: int = 1200,
              font_size: int = 22, gutter: int = 80) -> Synth:
    """Paragraphs laid out in len(columns) columns; each paragraph is a list entry whose
    lines are already broken with '\\n'."""
    f = font(font_size)
    n = len(columns)
    margin = 60
    col_w = (width - 2 * margin - gutter * (n - 1)) // n
    line_h = int(font_size * 1.35)
    height = 200 + max(sum(p.count("\n") + 2 for p in col) for col in columns) * line_h
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    y_start = margin
    if title:
        d.text((margin, margin), title, fill="black", font=font(font_size + 10))
        y_start += int((font_size + 10) * 2.2)
    for c, paras in enumerate(columns):
        x = margin + c * (col_w + gutter)
        y = y_start
        for p in paras:
            for line in p.split("\n"):
                d.text((x, y), line, fill="black", font=f)
                y += line_h
            y += line_h  # blank line between paragraphs
    return Synth(img, {"columns": columns, "title": title})


def paragraph(seed: int, n_lines: int = 4, words_per_line: int = 5) -> str:
    rng = random.Random(seed)
    return "\n".join(" ".join(rng.choice(WORDS) for _ in range(words_per_line))
                     for _ in range(n_lines))


# --- charts --------------------------------------------------------------------------------


def _fig_to_image(fig: Any, dpi: int = 100) -> Image.Image:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def bar_chart(seed: int, *, horizontal: bool = False, n: int | None = None,
              dpi: int = 100) -> Synth:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = random.Random(seed)
    n = n or rng.randint(4, 7)
    cats = [w.capitalize() for w in rng.sample(WORDS, n)]
    values = [round(rng.uniform(10, 100), 1) for _ in range(n)]
    title = f"{rng.choice(WORDS).capitalize()} report"
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    if horizontal:
        ax.barh(cats, values)
        ax.set_xlabel("Amount")
        ax.set_ylabel("Item")
    else:
        ax.bar(cats, values)
        ax.set_xlabel("Item")
        ax.set_ylabel("Amount")
    ax.set_title(title)
    fig.tight_layout()
    img = _fig_to_image(fig, dpi)
    plt.close(fig)
    return Synth(img, {"type": "bar", "title": title, "categories": cats, "values": values,
                       "horizontal": horizontal})


def line_chart(seed: int, dpi: int = 100) -> Synth:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = random.Random(seed)
    xs = list(range(0, 11, 2))
    ys = [round(rng.uniform(10, 90), 1) for _ in xs]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.plot(xs, ys, label="Series A")
    ax.set_xticks(xs)
    ax.set_title("Line trend")
    ax.set_xlabel("Week")
    ax.set_ylabel("Visits")
    fig.tight_layout()
    img = _fig_to_image(fig, dpi)
    plt.close(fig)
    return Synth(img, {"type": "line", "x": xs, "y": ys})


def pie_chart(seed: int, dpi: int = 100) -> Synth:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = random.Random(seed)
    n = rng.randint(3, 5)
    labels = [w.capitalize() for w in rng.sample(WORDS, n)]
    vals = [rng.uniform(10, 40) for _ in range(n)]
    total = sum(vals)
    shares = [100 * v / total for v in vals]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.pie(vals, labels=labels)
    ax.set_title("Share by kind")
    img = _fig_to_image(fig, dpi)
    plt.close(fig)
    return Synth(img, {"type": "pie", "labels": labels, "shares": shares})


def text_pdf(pages: list[list[str]], *, font_size: int = 14) -> bytes:
    """A real PDF with a text layer (matplotlib's PDF backend, Type 42 fonts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    buf = io.BytesIO()
    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(buf) as pdf:
        for lines in pages:
            fig = plt.figure(figsize=(8.5, 11))
            for i, line in enumerate(lines):
                fig.text(0.1, 0.92 - i * 0.035, line, fontsize=font_size)
            pdf.savefig(fig)
            plt.close(fig)
    return buf.getvalue()
