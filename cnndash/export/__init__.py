"""Leaving the dashboard: the self-contained bundle (``bundle``: TorchScript, model card, predict.py from
``template/``) and its ONNX model (``onnx_model``).

Import the modules themselves; this package's ``__init__`` stays empty.
"""
