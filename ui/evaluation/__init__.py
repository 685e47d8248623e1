"""The Evaluation page's parts: one module per tab (``confusion``, ``report`` for Report, Top losses and
Learning curves, ``predict_tab``, ``data_view`` with its suspicious-label review ``label_review``) and the
image ``gallery`` two of them share."""
