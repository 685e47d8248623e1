"""The Conv calculator page's parts: one module per tab (``single_layer``, ``layer_stack``,
``kernel_playground``) and how they write shapes and counts (``formatting``)."""
