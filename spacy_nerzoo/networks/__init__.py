"""Trainable networks behind the components, as thinc models."""
