"""cnndash — the engine behind the cnndash app: shape arithmetic, data, augmentation, training, metrics, CAM.

Nothing in this package imports Streamlit; the pages in ``pages/`` call into it, and so do the CLI
(``python -m cnndash``) and the tests.
"""

__version__ = "0.1.0"
