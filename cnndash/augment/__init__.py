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
validation) with :mod:`.arguments` (an op's arguments: a table of per-op validators), :mod:`.build` (Compose and code export), :mod:`.preview`,
:mod:`.store` (named pipelines).
"""

from cnndash.augment.build import build_pipeline, build_steps, pipeline_code
from cnndash.augment.checks import VALIDATORS, validate_spec
from cnndash.augment.ops import (
    CHOICES,
    DTYPES,
    INTERPOLATIONS,
    OPS,
    PADDING_MODES,
    POLICIES,
    AugmentError,
    OpInfo,
    Spec,
    default_step,
    normalize_step,
    steps_to_add,
)
from cnndash.augment.preview import augment_samples, to_image_tensor
from cnndash.augment.store import delete_pipeline, list_pipelines, load_pipeline, pipelines_dir, save_pipeline

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
