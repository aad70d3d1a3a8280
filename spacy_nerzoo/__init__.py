"""spacy-nerzoo: a zoo of pretrained named-entity recognisers as spaCy components."""

from .about import __version__
from .api import load, predict
from .catalogue import ZOO, ZooEntry, get_entry
from .components.token_classifier import TokenClassifierNER
from .displacy import displacy_options, render_html
from .errors import ModelLoadError, NerzooError
from .nerdl import NerDLTagger

__all__ = [
    "ZOO",
    "ModelLoadError",
    "NerDLTagger",
    "NerzooError",
    "TokenClassifierNER",
    "ZooEntry",
    "__version__",
    "displacy_options",
    "get_entry",
    "load",
    "predict",
    "render_html",
]
