"""spaCy pipeline components: the pipes users add with ``nlp.add_pipe``."""
