"""TrainConfig from any JSON: accepted, or a ConfigError naming the setting — never anything else (a
hand-edited config.json or launch.json must not give a traceback, issue 22)."""

from __future__ import annotations

from dataclasses import fields

from hypothesis import given, settings
from hypothesis import strategies as st

from cnndash.training.config import ConfigError, TrainConfig

FIELDS = [f.name for f in fields(TrainConfig)]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
# Values near the valid ones, so that many configs pass some checks and fail later ones.
plausible = st.one_of(
    json_values,
    st.sampled_from(
        ["digits", "lenet", "cpu", "cuda:0", "adam", "step", "freeze", "train", "", "auto", "cpu:x"]
    ),
    st.integers(-5, 70_000),
    st.floats(-2, 2),
    st.lists(st.fixed_dictionaries({"op": st.text(max_size=8)}), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), plausible, max_size=len(FIELDS)), json_values)
def test_any_json_config_is_accepted_or_a_config_error(settings_dict, extra):
    for data in (settings_dict, {"dataset": "digits", **settings_dict}, extra):
        try:
            config = TrainConfig.from_dict(data)
            config.validate()
        except ConfigError as exc:
            assert str(exc).endswith(".") and "\n" not in str(exc)
            continue
        assert TrainConfig.from_dict(config.to_dict()) == config  # what passes round-trips as JSON


def test_every_field_has_a_check():
    from cnndash.training import config

    assert [name for name, _, _ in config.SETTING_CHECKS] == FIELDS


def test_a_one_cycle_of_a_few_steps_never_divides_by_zero():
    import torch

    from cnndash.training.optim import make_scheduler

    for steps in range(1, 41):  # every run length up to 40 optimiser steps, e.g. 80 images in batches of 32
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        make_scheduler(optimizer, schedule="onecycle", epochs=1, steps_per_epoch=steps)
