"""displaCy colours for every zoo label, and entity pages with confidences on hover."""

from __future__ import annotations

import colorsys
import itertools
import re

import pytest
import spacy
from spacy.tokens import Doc, Span

from spacy_nerzoo.catalogue import CONLL_LABELS, FEWNERD_LABELS, ZOO
from spacy_nerzoo.displacy import (
    FAMILY_HUES,
    LABEL_COLOURS,
    displacy_options,
    entity_labels,
    fallback_colour,
    iter_html,
    label_colour,
    render_html,
)
from spacy_nerzoo.writing import register_extensions

FAMILIES = sorted({label.split("-", 1)[0] for label in FEWNERD_LABELS})


def rgb(colour: str) -> tuple[int, int, int]:
    assert re.fullmatch(r"#[0-9a-f]{6}", colour), colour
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def hue(colour: str) -> float:
    return colorsys.rgb_to_hls(*(c / 255 for c in rgb(colour)))[0] * 360


def contrast_with_black(colour: str) -> float:
    def channel(c: int) -> float:
        x = c / 255
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb(colour))
    return (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05) / 0.05


def distance(a: str, b: str) -> float:
    return sum((x - y) ** 2 for x, y in zip(rgb(a), rgb(b), strict=True)) ** 0.5


def hue_gap(a: float, b: float) -> float:
    d = abs(a - b) % 360
    return min(d, 360 - d)


def test_every_zoo_label_has_its_own_colour():
    labels = {label for entry in ZOO.values() for label in entry.labels}
    labels |= set(FAMILIES)
    for label in labels:
        assert label in LABEL_COLOURS, label
        assert label_colour(label) == LABEL_COLOURS[label]
        assert displacy_options([label])["colors"][label] == LABEL_COLOURS[label]


def test_conll_colours_are_distinct_and_readable():
    colours = [LABEL_COLOURS[label] for label in CONLL_LABELS]
    for a, b in itertools.combinations(colours, 2):
        assert hue_gap(hue(a), hue(b)) >= 20
    assert all(contrast_with_black(c) >= 4.5 for c in colours)


def test_fewnerd_families_share_a_hue_and_shades_differ():
    assert set(FAMILY_HUES) == set(FAMILIES)
    family_hue = {}
    for family in FAMILIES:
        members = [family] + [lab for lab in FEWNERD_LABELS if lab.startswith(family + "-")]
        colours = [LABEL_COLOURS[lab] for lab in members]
        hues = [hue(c) for c in colours]
        # Hex rounding moves the hue of pale colours by a degree or two, no more.
        assert max(hue_gap(h, hues[0]) for h in hues) < 4, family
        assert len(set(colours)) == len(colours), family
        assert min(distance(a, b) for a, b in itertools.combinations(colours, 2)) >= 15
        family_hue[family] = hues[0]
    for a, b in itertools.combinations(FAMILIES, 2):
        assert hue_gap(family_hue[a], family_hue[b]) >= 40, (a, b)


def test_all_colours_are_readable_under_black_text():
    for label, colour in LABEL_COLOURS.items():
        assert contrast_with_black(colour) >= 4.5, label
    assert contrast_with_black(fallback_colour("SOMETHING-ELSE")) >= 4.5


def test_unknown_labels_get_a_stable_fallback():
    assert label_colour("DRUG") == fallback_colour("DRUG") == fallback_colour("DRUG")
    assert fallback_colour("DRUG") != fallback_colour("GENE")
    options = displacy_options(["DRUG", "PER", "DRUG"])
    assert options["ents"] == ["DRUG", "PER"]
    assert options["colors"]["DRUG"] == fallback_colour("DRUG")


def test_options_from_a_pipeline_use_entity_components_only():
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PER", "pattern": "Ada"}, {"label": "DRUG", "pattern": "x"}])
    nlp.add_pipe("tagger").add_label("NN")  # labels, but no doc.ents: left out
    assert entity_labels(nlp) == ["DRUG", "PER"]
    options = displacy_options(nlp)
    assert options["ents"] == ["DRUG", "PER"]
    assert "NN" not in options["colors"]
    # No labels known yet (e.g. weights not loaded): show everything rather than nothing.
    assert displacy_options(spacy.blank("en"))["ents"] is None


def make_doc(text: str, ents: list[tuple[str, str, float | None]]) -> Doc:
    """A Doc with entities (given by their text, first occurrence) and confidences."""
    register_extensions()
    nlp = spacy.blank("en")
    doc = nlp(text)
    spans = []
    for surface, label, conf in ents:
        start = text.index(surface)
        span = doc.char_span(start, start + len(surface), label=label)
        assert span is not None, surface
        spans.append((span, conf))
    doc.ents = [s for s, _ in spans]
    for ent, (_, conf) in zip(doc.ents, spans, strict=True):
        ent._.confidence = conf
    return doc


def titles(page: str) -> list[str]:
    return re.findall(r'<mark class="entity" title="([^"]*)"', page)


def test_render_adds_confidence_titles_in_order():
    docs = [
        make_doc(
            "Angela Merkel met Tim Cook in Berlin.",
            [("Angela Merkel", "PER", 0.934), ("Tim Cook", "PER", 0.5), ("Berlin", "LOC", 0.07)],
        ),
        make_doc("Nothing here.", []),
        make_doc("Star Wars premiered in Paris.", [("Star Wars", "art-film", 0.81234)]),
    ]
    page = render_html(docs)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<figure") == 3
    assert titles(page) == ["PER 0.93", "PER 0.50", "LOC 0.07", "art-film 0.81"]
    assert f"background: {LABEL_COLOURS['art-film']}" in page
    assert "".join(iter_html(docs)) == page


def test_render_without_confidence_escapes_and_handles_no_docs():
    doc = make_doc("A&B sued C.", [("A&B", "ORG", None)])
    span = Span(doc, 2, 3, label='X"<y>')  # "C."
    doc.ents = [*doc.ents, span]
    page = render_html(doc)
    assert titles(page) == ["ORG", "X&quot;&lt;y&gt;"]
    assert "A&amp;B" in page and 'X"<y>' not in page
    empty = render_html([])
    assert "<html" in empty and "<mark" not in empty


@pytest.mark.parametrize("direction", ["ltr", "rtl"])
def test_render_follows_writing_direction(direction):
    nlp = spacy.blank("he" if direction == "rtl" else "en")
    doc = nlp("שלום עולם" if direction == "rtl" else "hello world")
    doc.ents = [Span(doc, 0, 1, label="PER")]
    page = render_html(doc)
    assert f"direction: {direction}" in page
    assert ("margin-right: 0.5rem" in page) == (direction == "rtl")
