"""displaCy colours for every zoo label, and entity pages that show each entity's confidence.

displaCy knows colours for OntoNotes labels only, so CoNLL-2003's ``PER`` and all of Few-NERD's
types would render in one grey. Here every label of every zoo model gets a colour. The four CoNLL
types get fixed, distinct hues (close to displaCy's own ``PERSON``/``ORG``/``LOC``). Few-NERD's
types get one hue per coarse family (``person-*`` purple, ``organization-*`` cyan, ...); its fine
types and the coarse label are lighter/darker, more/less saturated shades of it, so a page reads by
family at a glance and by fine type on a closer look. Any other label gets a colour derived from a
hash of its name, the same on every run. All colours are light enough for black text (WCAG AA).

Pages are rendered with displaCy's manual mode and a template that adds a ``title`` attribute to
each ``<mark>``, so hovering an entity shows its label and confidence. Per-entity template
parameters are displaCy's own mechanism (``params``), so nothing is patched into its output.
"""

from __future__ import annotations

import colorsys
import html
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from spacy.displacy import render as displacy_render
from spacy.displacy.templates import TPL_FIGURE, TPL_PAGE
from spacy.language import Language
from spacy.tokens import Doc, Span

from .catalogue import FEWNERD_LABELS, ZOO
from .writing import CONFIDENCE_ATTR

CONLL_COLOURS: dict[str, str] = {
    "PER": "#aa9cfc",  # lavender, displaCy's PERSON
    "ORG": "#7aecec",  # cyan, displaCy's ORG
    "LOC": "#ff9561",  # orange, displaCy's LOC
    "MISC": "#a8e890",  # light green
}

# One hue per Few-NERD coarse family, 45 degrees apart; chosen so person/organization/location
# echo the CoNLL colours above.
FAMILY_HUES: dict[str, float] = {
    "event": 0 / 360,  # red
    "location": 45 / 360,  # orange
    "building": 90 / 360,  # yellow-green
    "other": 135 / 360,  # green
    "organization": 180 / 360,  # cyan
    "product": 225 / 360,  # blue
    "person": 270 / 360,  # purple
    "art": 315 / 360,  # magenta
}

# Shades within a family: lightness steps evenly through this range while saturation cycles
# through three levels, so neighbours differ in both. With the largest family (12 fine types plus
# the coarse label) every pair still differs by >= 19 RGB units, and the darkest shade keeps a
# contrast of >= 4.5 with black text.
_LIGHTNESS = (0.62, 0.90)
_SATURATIONS = (1.0, 0.7, 0.4)
_FALLBACK_LIGHTNESS = 0.78
_FALLBACK_SATURATION = 0.75

_TPL_ENT = (
    '<mark class="entity" title="{title}" style="background: {bg}; padding: 0.45em 0.6em; '
    'margin: 0 0.25em; line-height: 1; border-radius: 0.35em;">{text}<span style="font-size: '
    "0.8em; font-weight: bold; line-height: 1; border-radius: 0.35em; vertical-align: middle; "
    'margin-left: 0.5rem">{label}{kb_link}</span></mark>'
)
_TPL_ENT_RTL = _TPL_ENT.replace("margin-left: 0.5rem", "margin-right: 0.5rem")


def _hex(hue: float, lightness: float, saturation: float) -> str:
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return "#{:02x}{:02x}{:02x}".format(*(round(x * 255) for x in (r, g, b)))


def family_shades(hue: float, n: int) -> list[str]:
    """``n`` distinguishable shades of one hue, all readable under black text."""
    lo, hi = _LIGHTNESS
    return [
        _hex(hue, lo + (hi - lo) * i / max(n - 1, 1), _SATURATIONS[i % len(_SATURATIONS)])
        for i in range(n)
    ]


def _fewnerd_colours() -> dict[str, str]:
    colours: dict[str, str] = {}
    for family, hue in FAMILY_HUES.items():
        fine = [lab for lab in FEWNERD_LABELS if lab.split("-", 1)[0] == family]
        # The coarse label takes the middle shade; the fine types the others, in corpus order.
        shades = family_shades(hue, len(fine) + 1)
        middle = len(shades) // 2
        colours[family] = shades.pop(middle)
        colours.update(zip(fine, shades, strict=True))
    return colours


def fallback_colour(label: str) -> str:
    """A pastel colour for a label no zoo model has, derived from a stable hash of its name."""
    hue = (zlib.crc32(label.encode("utf-8")) % 360) / 360
    return _hex(hue, _FALLBACK_LIGHTNESS, _FALLBACK_SATURATION)


LABEL_COLOURS: dict[str, str] = {**CONLL_COLOURS, **_fewnerd_colours()}
for _entry in ZOO.values():  # labels of zoo entries added later than the two label sets above
    for _label in _entry.labels:
        LABEL_COLOURS.setdefault(_label, fallback_colour(_label))


def label_colour(label: str) -> str:
    """The background colour of ``label``: the zoo's own, else a stable hash-based one."""
    return LABEL_COLOURS.get(label) or fallback_colour(label)


def entity_labels(nlp: Language) -> list[str]:
    """Labels of the pipeline's entity-writing components, in order of first appearance.

    Only components that declare ``doc.ents`` in their ``assigns`` count, so a tagger's or
    parser's ``labels`` (tags, dependency relations) never end up in the list. A nerzoo component
    whose weights are not loaded yet has no labels.
    """
    seen: dict[str, None] = {}
    for name, pipe in nlp.pipeline:
        if "doc.ents" not in nlp.get_pipe_meta(name).assigns:
            continue
        for label in getattr(pipe, "labels", None) or ():
            seen.setdefault(str(label), None)
    return list(seen)


def displacy_options(nlp_or_labels: Language | Iterable[str]) -> dict[str, Any]:
    """displaCy ``ent`` options: ``{"ents": labels, "colors": {label: colour}}``.

    ``nlp_or_labels`` is a pipeline (its entity components' labels are used) or the labels
    themselves. ``colors`` covers those labels and every zoo label; ``ents`` is ``None`` (show
    every entity) when no label is known, because an empty list would make displaCy hide them all.
    """
    if isinstance(nlp_or_labels, Language):
        labels = entity_labels(nlp_or_labels)
    else:
        labels = list(dict.fromkeys(str(lab) for lab in nlp_or_labels))
    colours = dict(LABEL_COLOURS)
    colours.update({lab: label_colour(lab) for lab in labels})
    return {"ents": labels or None, "colors": colours}


def entity_confidence(ent: Span) -> float | None:
    """``ent._.confidence`` when a nerzoo component set it, else ``None``."""
    if not Span.has_extension(CONFIDENCE_ATTR):
        return None
    value = ent._.get(CONFIDENCE_ATTR)
    return None if value is None else float(value)


def hover_title(label: str, confidence: float | None) -> str:
    """The tooltip text of one entity, e.g. ``"PER 0.93"``."""
    return label if confidence is None else f"{label} {confidence:.2f}"


def _manual(doc: Doc, colours: dict[str, str]) -> dict[str, Any]:
    """displaCy's manual-mode dict for one Doc, with colour and tooltip set per entity."""
    ents = []
    for ent in doc.ents:
        label = ent.label_
        colour = colours.get(label) or label_colour(label)
        title = hover_title(label, entity_confidence(ent))
        ents.append(
            {
                "start": ent.start_char,
                "end": ent.end_char,
                "label": label,
                # displaCy inserts params into the template unescaped, so escape them here.
                "params": {
                    "title": html.escape(title, quote=True),
                    "label": html.escape(label, quote=True),
                    "bg": html.escape(colour, quote=True),
                },
            }
        )
    return {
        "text": doc.text,
        "ents": ents,
        "title": doc.user_data.get("title") if doc.user_data else None,
        "settings": {
            "lang": doc.lang_,
            "direction": doc.vocab.writing_system.get("direction", "ltr"),
        },
    }


def _render_doc(parsed: dict[str, Any]) -> str:
    """One Doc's entity markup (no page around it), through displaCy's manual mode."""
    template = _TPL_ENT_RTL if parsed["settings"]["direction"] == "rtl" else _TPL_ENT
    return str(
        displacy_render(
            [parsed], style="ent", manual=True, jupyter=False, options={"template": template}
        )
    )


def iter_html(docs: Iterable[Doc], nlp: Language | None = None) -> Iterator[str]:
    """The page of ``render_html`` in pieces, one per Doc, so any number of Docs can be streamed.

    This is the markup ``displacy.render(..., page=True)`` builds, from displaCy's own page and
    figure templates, but written Doc by Doc, so memory stays bounded by one Doc. The page's
    language and writing direction are those of the first Doc, as in displaCy.
    """
    colours = displacy_options(nlp)["colors"] if nlp is not None else dict(LABEL_COLOURS)
    parsed = (_manual(doc, colours) for doc in docs)
    first = next(parsed, None)
    settings = first["settings"] if first else {"lang": "en", "direction": "ltr"}
    marker = "\x00"
    page = TPL_PAGE.format(content=marker, lang=settings["lang"], dir=settings["direction"])
    head, tail = page.strip().split(marker)
    yield head
    if first is not None:
        yield TPL_FIGURE.format(content=_render_doc(first))
    for item in parsed:
        yield TPL_FIGURE.format(content=_render_doc(item))
    yield tail


def render_html(docs: Doc | Iterable[Doc], nlp: Language | None = None) -> str:
    """A self-contained displaCy entity page; hovering an entity shows ``"LABEL 0.93"``.

    Colours come from ``displacy_options(nlp)`` (every zoo label has one; others get a stable
    hash-based colour). Every entity in ``doc.ents`` is shown, whichever component set it;
    entities without a confidence show just their label.
    """
    if isinstance(docs, Doc):
        docs = [docs]
    return "".join(iter_html(docs, nlp))
