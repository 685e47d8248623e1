"""The Grad-CAM page's parts: the chosen run (``subject``), the image (``images``), the controls and the
main view (``views``), and the Explore views under it (``explore``)."""
