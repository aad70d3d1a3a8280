"""spacy-nerzoo: a zoo of pretrained named-entity recognisers as spaCy components."""

from .about import __version__
from .catalogue import ZOO, ZooEntry, get_entry
from .components.token_classifier import TokenClassifierNER
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
    "get_entry",
]
