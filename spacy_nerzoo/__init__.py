"""spacy-nerzoo: a zoo of pretrained named-entity recognisers as spaCy components."""

from .quiet import silence_framework_banner

# First, so that it holds before any module here imports transformers (see quiet.py).
silence_framework_banner()

from .about import __version__  # noqa: E402
from .api import load, predict  # noqa: E402
from .catalogue import ZOO, ZooEntry, get_entry  # noqa: E402
from .components.token_classifier import TokenClassifierNER  # noqa: E402
from .displacy import displacy_options, render_html  # noqa: E402
from .errors import ModelLoadError, NerzooError  # noqa: E402
from .nerdl import NerDLTagger  # noqa: E402

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
