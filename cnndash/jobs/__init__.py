"""Background work the app starts and follows: the registry and the in-process training job
(``registry``), the torchrun job (``torchrun``), the label check (``label_check``) and the immutable
snapshot every kind of job is read through (``snapshot``).

Import the modules themselves; this package's ``__init__`` stays empty.
"""
