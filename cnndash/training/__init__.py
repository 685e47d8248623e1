"""Training: the config (``config``), optimiser and schedule (``optim``), batches on the device
(``batches``), building everything a run needs (``setup``), the epoch loops (``loops``), several processes
(``distributed``), the trainer's typed events (``events``), TensorBoard event files (``tblog``) and what the
model will see before a click on Train (``preflight``).

Import the modules themselves (``from cnndash.training.config import TrainConfig``): this package's
``__init__`` stays empty so that importing one part does not import them all.
"""
