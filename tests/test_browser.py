"""A rendered entity page checked in a real headless Chromium: colours on screen, text in the DOM.

Skipped when no Chromium is installed (``apt-get install -y chromium`` on Debian). The screenshot is
decoded with a small PNG reader (zlib + numpy), so no imaging library is needed.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import spacy
from spacy.tokens import Doc

from spacy_nerzoo.displacy import hover_title, label_colour, render_html
from spacy_nerzoo.writing import register_extensions

CHROMIUM = next(
    (p for p in (shutil.which("chromium"), "/usr/bin/chromium", shutil.which("chromium-browser"))
     if p and Path(p).exists()),
    None,
)  # fmt: skip
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--window-size=1200,800",
]

# (text, entities as (surface, label, confidence)); labels from both label families.
DOCS = [
    (
        "Angela Merkel met Tim Cook in Berlin & Paris.",
        [("Angela Merkel", "PER", 0.97), ("Tim Cook", "PER", 0.61), ("Berlin", "LOC", 0.88)],
    ),
    ("No entities here.", []),
    (
        "Apple <sells> the iPhone; Star Wars won an Oscar.",
        [
            ("Apple", "ORG", 0.9),
            ("iPhone", "MISC", 0.42),
            ("Star Wars", "art-film", 0.77),
            ("Oscar", "other-award", None),
        ],
    ),
    ("Ünïcödé: Zürich — 東京 ok.", [("Zürich", "location-GPE", 0.55), ("東京", "location", 0.5)]),
]


def make_docs() -> list[Doc]:
    register_extensions()
    nlp = spacy.blank("en")
    docs = []
    for text, ents in DOCS:
        doc = nlp(text)
        spans = []
        for surface, label, _ in ents:
            start = text.index(surface)
            span = doc.char_span(start, start + len(surface), label=label)
            assert span is not None, surface
            spans.append(span)
        doc.ents = spans
        for ent, (_, _, conf) in zip(doc.ents, ents, strict=True):
            ent._.confidence = conf
        docs.append(doc)
    return docs


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def read_png(path: Path) -> np.ndarray:
    """Decode an 8-bit, non-interlaced RGB/RGBA PNG to an (height, width, channels) array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    width = height = channels = 0
    while pos < len(data):
        length, chunk = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if chunk == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (2, 6), (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif chunk == b"IDAT":
            idat.append(body)
        elif chunk == b"IEND":
            break
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8)
    stride = width * channels
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: a running sum along each channel
            cur = np.cumsum(line.reshape(width, channels), axis=0).reshape(-1) % 256
        elif kind == 2:  # Up
            cur = (line + prev) % 256
        else:  # Average and Paeth depend on the decoded left neighbour: byte by byte
            cur_list = [0] * stride
            up = prev.tolist()
            vals = line.tolist()
            for i in range(stride):
                left = cur_list[i - channels] if i >= channels else 0
                if kind == 3:
                    cur_list[i] = (vals[i] + (left + up[i]) // 2) & 255
                else:
                    up_left = up[i - channels] if i >= channels else 0
                    p = left + up[i] - up_left
                    pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - up_left)
                    pred = left if pa <= pb and pa <= pc else (up[i] if pb <= pc else up_left)
                    cur_list[i] = (vals[i] + pred) & 255
            cur = np.asarray(cur_list, np.int32)
        out[y] = cur
        prev = cur.astype(np.int32)
    return out.reshape(height, width, channels)


class EntityDom(HTMLParser):
    """The text of each ``div.entities`` as a reader sees it, and where each ``<mark>`` sits.

    Text inside a mark's label ``<span>`` is left out (it is displaCy's label tag, not document
    text); ``<br>`` counts as the newline it stands for.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.docs: list[dict] = []
        self.depth = 0  # element depth inside the current div.entities
        self.mark: dict | None = None
        self.in_label = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "div" and "entities" in (attr.get("class") or "").split():
            self.docs.append({"text": "", "marks": []})
            self.depth = 1
            return
        if not self.depth:
            return
        if tag == "br":
            self.docs[-1]["text"] += "\n"
            return
        self.depth += 1
        if tag == "mark":
            start = len(self.docs[-1]["text"])
            self.mark = {"start": start, "title": attr.get("title"), "style": attr.get("style")}
        elif tag == "span" and self.mark is not None:
            self.in_label = True
            self.mark["end"] = len(self.docs[-1]["text"])
            self.mark["label"] = ""

    def handle_endtag(self, tag: str) -> None:
        if not self.depth or tag == "br":
            return
        self.depth -= 1
        if tag == "span" and self.in_label:
            self.in_label = False
        elif tag == "mark" and self.mark is not None:
            self.docs[-1]["marks"].append(self.mark)
            self.mark = None

    def handle_data(self, data: str) -> None:
        if not self.depth:
            return
        if self.in_label:
            assert self.mark is not None
            self.mark["label"] += data
        else:
            self.docs[-1]["text"] += data


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    docs = make_docs()
    path = tmp_path_factory.mktemp("browser") / "page.html"
    path.write_text(render_html(docs), encoding="utf-8")
    return docs, path


def test_dom_keeps_the_text_and_entity_positions(page, tmp_path):
    docs, path = page
    result = chromium(tmp_path, "--dump-dom", path.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = EntityDom()
    dom.feed(result.stdout)
    assert len(dom.docs) == len(docs)
    for doc, seen in zip(docs, dom.docs, strict=True):
        # The page reads exactly as the document, once the label tags are taken out.
        assert seen["text"] == doc.text
        assert len(seen["marks"]) == len(doc.ents)
        for ent, mark in zip(doc.ents, seen["marks"], strict=True):
            assert (mark["start"], mark["end"]) == (ent.start_char, ent.end_char)
            assert seen["text"][mark["start"] : mark["end"]] == ent.text
            assert mark["label"] == ent.label_
            assert mark["title"] == hover_title(ent.label_, ent._.confidence)
            assert f"background: {label_colour(ent.label_)}" in mark["style"]


def test_screenshot_shows_every_label_colour(page, tmp_path):
    docs, path = page
    shot = tmp_path / "shot.png"
    result = chromium(tmp_path, f"--screenshot={shot}", path.as_uri())
    assert shot.exists(), result.stderr[-2000:]
    pixels = read_png(shot)[..., :3].astype(np.int16)
    assert pixels.shape[:2] == (800, 1200)
    labels = {ent.label_ for doc in docs for ent in doc.ents}
    for label in sorted(labels):
        colour = label_colour(label)
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], np.int16)
        close = (np.abs(pixels - rgb) <= 2).all(axis=-1)
        # Each entity box is some 30 px tall and 50+ px wide: hundreds of background pixels.
        assert close.sum() >= 300, f"{label} ({colour}): {close.sum()} pixels"
    # The page background stays white and most of the page is background.
    white = (pixels >= 250).all(axis=-1).mean()
    assert white > 0.5
