"""Inference backends (torch, onnxruntime): wordpiece ids in, logits out. They never see a Doc."""
