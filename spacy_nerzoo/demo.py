"""``python -m spacy_nerzoo.demo``: ``nerzoo demo`` (``cli.demo``), kept for old commands."""

if __name__ == "__main__":
    from spacy_nerzoo.cli.main import run_module

    run_module("demo")
