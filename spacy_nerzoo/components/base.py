"""What both NER components (token classifier, NerDL) do the same way inside spaCy's loop."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from thinc.api import Optimizer

from ..serialization import FolderBytesMixin
from ..writing import write_predictions
from .common import EntsFilter, Prediction


class NERPipe(FolderBytesMixin, TrainablePipe):
    """A trainable NER pipe: spaCy's ``update`` contract around the component's own
    :meth:`train_step`, and predictions written by :func:`~spacy_nerzoo.writing.write_predictions`
    with the component's ``ents_filter`` and ``spans_key``."""

    ents_filter: EntsFilter
    spans_key: str | None

    def train_step(self, examples: list[Example]) -> float | None:
        """Forward and backward passes on ``examples``, gradients left for the optimizer; the
        loss, or None when the examples hold nothing to learn from (then no step is taken)."""
        raise NotImplementedError

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optimizer | None = None,
        losses: dict[str, float] | None = None,
    ) -> dict[str, float]:
        """One optimizer step on :meth:`train_step`'s loss (``finish_update(sgd)``).

        ``drop`` is not used: dropout is the torch network's own setting, active in train mode
        (thinc's dropout rate reaches only thinc layers).
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, f"{type(self).__name__}.update")
        loss = self.train_step(examples)
        if loss is None:
            return losses
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def set_annotations(self, docs: Iterable[Doc], predictions: Sequence[list[Prediction]]) -> None:
        for doc, ents in zip(docs, predictions, strict=True):
            write_predictions(doc, ents, ents_filter=self.ents_filter, spans_key=self.spans_key)
