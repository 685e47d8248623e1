"""Explanations of a trained model: class activation maps (``cam``; public API in :mod:`cnndash.cam`),
which layer to explain (``target_layers``; a run's default layer in ``default_layer``), feature maps,
filters and CAM faithfulness (``feature_maps``), and 2-D embeddings of the validation images
(``embeddings``).

Import the modules themselves; this package's ``__init__`` stays empty.
"""
