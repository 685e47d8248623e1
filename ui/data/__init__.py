"""The Data & augmentation page's parts: the Datasets section (``datasets``), the augmentation step editor
(``pipeline_builder``) and the Augmentation section with its preview and export (``augmentation``)."""
