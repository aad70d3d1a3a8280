"""``python -m spacy_nerzoo ...`` runs the ``nerzoo`` command line."""

from .cli.main import main

if __name__ == "__main__":
    main()
