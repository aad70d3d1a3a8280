"""Corpus readers and converters (CoNLL-2003, Few-NERD) to spaCy's DocBin."""
