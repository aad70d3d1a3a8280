"""Exporting zoo networks to other runtimes (ONNX, optionally int8-quantised).

Export needs torch and transformers; running an exported network (``backends.onnx_backend``) does
not, so a pipeline can be exported once on a build machine and served without torch.
"""
