"""The Training page's parts."""
