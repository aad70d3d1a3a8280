"""Paths of the Spark NLP fixtures: tiny models saved the way Spark NLP saves them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sparknlp"
TOKEN_ZIPS = {
    name: FIXTURES / f"{name}_token_classifier_tiny_en_3.3.0_3.0.zip"
    for name in ("albert", "distilbert", "longformer")
}


def reference() -> dict[str, Any]:
    """TF outputs recorded when the fixtures were built (make_fixtures.py)."""
    return json.loads((FIXTURES / "reference.json").read_text())
