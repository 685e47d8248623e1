"""Evaluation: a run's predictions on its validation split and on new files (``predict``,
``predict_files``), the numbers (``metrics``, pure), two runs compared (``compare``) and suspicious labels
from K-fold out-of-sample probabilities (``label_issues``).

Import the modules themselves; this package's ``__init__`` stays empty.
"""
