"""Metadata in one SQLite database: what exists, what refers to what, and who is doing what.

Bytes stay files (images, checkpoints, event files: written under a hidden name and published by one
rename); what the files mean lives in ``data_dir()/cnndash.sqlite3``, so that a change of meaning — a
dataset replaced, a version edited, a reference taken, a job started — is one transaction that any number
of processes see whole or not at all. This is the split MLflow made when it retired its file store
(mlflow#18534). :mod:`cnndash.store.db` is the connection and transaction core; each domain (datasets,
jobs, …) owns its tables and their migrations.
"""
