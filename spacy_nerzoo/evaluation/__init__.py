"""Evaluation the way NER papers and the Spark NLP model cards report it.

Two blocks, one per module: ``conlleval`` re-implements the CoNLL shared-task script's phrase-level
scoring (the number every CoNLL-2003 result quotes), and ``report`` adds the token-level table the
model cards print first, reads prediction files and scores spaCy ``Doc`` objects. Both work on plain
tag sequences, so a file, a ``Doc`` or a model's raw output are all scored by the same code.
"""
