"""The Evaluation page's parts."""
