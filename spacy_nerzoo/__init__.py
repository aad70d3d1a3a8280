"""spacy-nerzoo: a zoo of pretrained named-entity recognisers as spaCy components."""

from .about import __version__
from .catalogue import ZOO, ZooEntry, get_entry
from .components.token_classifier import TokenClassifierNER
from .errors import ModelLoadError, NerzooError

__all__ = [
    "ZOO",
    "ModelLoadError",
    "NerzooError",
    "TokenClassifierNER",
    "ZooEntry",
    "__version__",
    "get_entry",
]
