"""Augmentation pipelines: a JSON spec <-> a torchvision ``v2.Compose`` <-> standalone Python code.

A spec is a list of steps ``{"op": NAME, **kwargs}`` where NAME is a ``torchvision.transforms.v2`` class
name from :data:`OPS` and kwargs are its constructor arguments (lists where torchvision takes tuples,
dtypes as strings such as ``"float32"``). The same spec drives the preview on the Data page, the saved
pipelines the trainer uses and the exported code, so the three never disagree.

- :func:`build_pipeline` validates a spec (naming the step and the argument in an :class:`AugmentError`)
  and builds the Compose.
- :func:`pipeline_code` writes standalone code that builds the same Compose: with the same
  ``torch.manual_seed`` both give identical outputs.
- :func:`augment_samples` runs a pipeline N times on one image from a seed (the preview grid).
- :func:`save_pipeline` / :func:`load_pipeline` / :func:`list_pipelines` keep named specs as JSON under
  ``data_dir()/pipelines/``.

Modules, all re-exported here: :mod:`.ops` (the catalogue, ``AugmentError``), :mod:`.checks` (spec
validation) with :mod:`.arguments` (an op's arguments: a table of per-op validators), :mod:`.build`
(Compose and code export), :mod:`.preview`, :mod:`.store` (named pipelines), :mod:`.names` (the saved
pipelines' names, without PyTorch).
Each name is imported on first use, so importing one module of the package imports no other.
"""

from __future__ import annotations

from cnndash.lazy import lazy_attributes

# Every name below is imported from its module on first use (PEP 562), for import time only: importing
# one torch-free module of this package (the Training page's first paint imports
# ``cnndash.augment.names``) must not import every other, which pulls in PyTorch and torchvision.
# Not to break an import cycle: tests/test_house.py counts these as imports of their modules.
LAZY_EXPORTS = {
    "build_pipeline": "cnndash.augment.build",
    "build_steps": "cnndash.augment.build",
    "pipeline_code": "cnndash.augment.build",
    "VALIDATORS": "cnndash.augment.arguments",
    "validate_spec": "cnndash.augment.checks",
    "CHOICES": "cnndash.augment.ops",
    "DTYPES": "cnndash.augment.ops",
    "INTERPOLATIONS": "cnndash.augment.ops",
    "OPS": "cnndash.augment.ops",
    "PADDING_MODES": "cnndash.augment.ops",
    "POLICIES": "cnndash.augment.ops",
    "AugmentError": "cnndash.augment.ops",
    "OpInfo": "cnndash.augment.ops",
    "Spec": "cnndash.augment.ops",
    "default_step": "cnndash.augment.ops",
    "normalize_step": "cnndash.augment.ops",
    "steps_to_add": "cnndash.augment.ops",
    "augment_samples": "cnndash.augment.preview",
    "to_image_tensor": "cnndash.augment.preview",
    "delete_pipeline": "cnndash.augment.store",
    "list_pipelines": "cnndash.augment.names",
    "load_pipeline": "cnndash.augment.store",
    "pipelines_dir": "cnndash.augment.names",
    "save_pipeline": "cnndash.augment.store",
}

__all__ = [
    "CHOICES",
    "DTYPES",
    "INTERPOLATIONS",
    "OPS",
    "PADDING_MODES",
    "POLICIES",
    "VALIDATORS",
    "AugmentError",
    "OpInfo",
    "Spec",
    "augment_samples",
    "build_pipeline",
    "build_steps",
    "default_step",
    "delete_pipeline",
    "list_pipelines",
    "load_pipeline",
    "normalize_step",
    "pipeline_code",
    "pipelines_dir",
    "save_pipeline",
    "steps_to_add",
    "to_image_tensor",
    "validate_spec",
]


__getattr__, __dir__ = lazy_attributes(globals(), LAZY_EXPORTS)
