"""The Learn page's parts: the lessons, one module per group as in ``cnndash.lessons`` (``convolution``:
lessons 1–5, ``pool_norm_dropout``: 6–8, ``networks``: 9–10), and the widgets they share (``widgets``)."""
