"""Figure builders: pure functions from engine results to Plotly figures, one module per page or
feature (``calculator``, ``learn``, ``dataset``, ``training``, ``evaluation``, ``compare``,
``label_issues``, ``gradcam``). Testable without a browser; no Streamlit.

Import the modules themselves; this package's ``__init__`` stays empty.
"""
