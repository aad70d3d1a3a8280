"""Training of the zoo's built-in models: fine-tuning a pretrained encoder for token classification.

Trained models are plain Hugging Face checkpoint folders, so the spaCy component, the ONNX export
and any other tool can load them without this package's training code.
"""
