"""The Training page's Runs tab: every run in a table with its hyperparameters, their curves compared
(smoothing, epoch or time axis), two runs compared on their validation images, resume / delete / export.
The runs of a label check (its folds) are listed under their check only, never in a picker; the pair
compared is the workspace's ``compare`` choice.

The two-run comparison evaluates each run's best checkpoint on its own validation split
(:func:`cnndash.evaluate.predict.predict_run`, cached on disk and here by the checkpoint's fingerprint) and hands
the predictions to :mod:`cnndash.evaluate.compare`; the figures come from :mod:`cnndash.plots.compare`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from cnndash import paths
from cnndash.data import versions
from cnndash.evaluate import compare, predict
from cnndash.jobs.registry import get_registry
from cnndash.plots import compare as plots_compare
from cnndash.plots import training as plots_train
from cnndash.runs import Run, delete_run, list_runs
from cnndash.text import N_
from cnndash.training.loops import TrainConfig
from ui import export_panel, i18n

_ = i18n.translator("training")
_engine = i18n.translator("engine")

COMPARED_RUNS = 3  # runs whose curves are overlaid by default: the newest ones
NORMALIZE = {N_("share of each true class"): "true", N_("images"): None}
PER_CLASS_LABELS = {"f1-score": "F1", "precision": N_("precision"), "recall": N_("recall")}
# Validation images (both runs together) evaluated without asking: the Runs tab is drawn with the
# Training page, so a large evaluation waits for a click instead of delaying every visit.
AUTO_COMPARE_IMAGES = 5_000


def resume(run: Run) -> None:
    """Continue a stopped or failed run from its last checkpoint, in the background, with as many processes as
    trained it (a torchrun run resumes under torchrun: every rank loads the same checkpoint)."""
    with ui.user_errors():  # the job registry refuses it beside a training run or a label check
        config = TrainConfig.from_dict(run.config)
        get_registry().start(config, run_name=run.name, resume=True, processes=run.world_size)
        ui.workspace.put("run", run.name)
        st.rerun()


def _runs_table(runs: list[Run]) -> None:
    table = compare.runs_table(runs)
    for column in table.columns:  # run and dataset names as plain text, their control characters shown
        if table[column].dtype == object or pd.api.types.is_string_dtype(table[column]):
            table[column] = table[column].map(lambda v: ui.plain(v) if isinstance(v, str) else v)
    table["status"] = table["status"].map(lambda s: _engine(compare.RUN_STATUSES.get(s, s)))
    st.dataframe(
        table.rename(columns=_engine),  # the engine's column names, in the reader's language
        key="runs-table",
        hide_index=True,
        column_config={
            _engine("val accuracy"): st.column_config.ProgressColumn(  # wide enough for "100.0%"
                _engine("val accuracy"), min_value=0.0, max_value=1.0, format="percent", width="medium"
            ),
            _engine("LR"): st.column_config.NumberColumn(format="%.2g", help=_("Peak / base learning rate")),
            _engine("batch size"): st.column_config.NumberColumn(format="%d", help=_("The global batch")),
            _engine("image size"): st.column_config.NumberColumn(
                format="%d", help=_("Side in px the model sees")
            ),
            _engine("world size"): st.column_config.NumberColumn(format="%d", help=_("Processes (torchrun)")),
            _engine("best epoch"): st.column_config.NumberColumn(format="%d"),
            _engine("epochs"): st.column_config.NumberColumn(format="%d"),
            _engine("images/sec"): st.column_config.NumberColumn(format="%.0f"),
            _engine("seconds"): st.column_config.NumberColumn(format="%.1f"),
        },
    )
    st.caption(
        _(
            "Every run also writes TensorBoard event files into its folder: "
            "`tensorboard --logdir {folder}` shows them side by side (HPARAMS tab included).",
            folder=paths.runs_dir(),
        )
    )


def _update_selection(names: list[str]) -> None:
    """The runs whose curves are drawn: the newest at first; later, runs that appear join the choice."""
    before = st.session_state.get("runs-compare-for")
    if before == names:
        return
    st.session_state["runs-compare-for"] = names
    if before is None:
        st.session_state["runs-compare"] = names[:COMPARED_RUNS]
        return
    kept = [name for name in st.session_state.get("runs-compare", []) if name in names]
    st.session_state["runs-compare"] = [name for name in names if name not in before] + kept


def _compare_curves(by_name: dict[str, Run]) -> None:
    names = list(by_name)
    _update_selection(names)
    c1, c2 = st.columns([3, 1])
    chosen = c1.multiselect(_("Compare runs"), names, format_func=ui.plain, **ui.keep("runs-compare"))
    metric = c2.selectbox(
        _("Metric"),
        list(plots_train.METRIC_LABELS),
        key="runs-metric",
        format_func=lambda metric: _engine(plots_train.METRIC_LABELS[metric]),
    )
    c1, c2 = st.columns([3, 1])
    smoothing = c1.slider(
        _("Smoothing"),
        min_value=0.0,
        max_value=0.99,
        step=0.01,
        help=_(
            "TensorBoard's exponential moving average, debiased so early epochs are not pulled to 0; "
            "0 draws the raw values. The raw curve stays faint behind a smoothed one."
        ),
        **ui.keep("runs-smoothing", 0.0),
    )
    x_axis = c2.radio(
        _("X axis"),
        list(plots_train.X_AXES),
        format_func=lambda axis: _engine(plots_train.X_AXES[axis]),
        horizontal=True,
        help=_(
            "Wall-clock time: seconds since the run started when each epoch's training ended (validation "
            "and checkpoints included; the pause between a stop and its resume is not counted)."
        ),
        **ui.keep("runs-x-axis", "epoch"),
    )
    if chosen:
        curves = {name: by_name[name].metrics_with_clock() for name in chosen}
        fig = plots_train.compare_runs_figure(curves, metric, smoothing=smoothing, x=x_axis, tr=_engine)
        st.plotly_chart(fig, key="runs-compare-chart")
        if fig.layout.meta and fig.layout.meta["no_time"]:
            missing = ", ".join(ui.text(name) for name in fig.layout.meta["no_time"])
            st.caption(_("Not drawn (no per-epoch times recorded): {runs}", runs=missing))


# --------------------------------------------------------------------------------------------------
# Two runs, class by class


def _parent_dataset(name: str) -> str | None:
    try:
        return versions.read_version(name).parent if versions.is_version(name) else None
    except ValueError:
        return None


def _choose_pair(candidates: list[Run]) -> tuple[Run, Run] | None:
    """Run A and run B: the pair chosen before (the workspace's ``compare``, on any visit) while both runs
    exist, else the default pair (a retrain and the run on its parent dataset, or the two newest runs).
    Once either side is picked the pair is the person's: a run trained later never takes its place."""
    names = [run.name for run in candidates]
    default_a, default_b = compare.default_pair(candidates, _parent_dataset) or (names[1], names[0])
    workspace = ui.workspace
    c1, c2 = st.columns(2)
    a = c1.selectbox(
        _("Run A (reference)"),
        names,
        format_func=ui.plain,
        **workspace.bind("compare.a", "runs-a", default=default_a, options=names),
    )
    b = c2.selectbox(
        _("Run B (compared with A)"),
        names,
        format_func=ui.plain,
        **workspace.bind("compare.b", "runs-b", default=default_b, options=names),
    )
    if workspace.get("compare"):  # one side picked: keep both as shown
        workspace.put("compare", {"a": a, "b": b})
    if a == b:
        st.info(_("Pick two different runs to compare."), icon=":material/info:")
        return None
    by_name = {run.name: run for run in candidates}
    return by_name[a], by_name[b]


def _validation_note(a: Run, b: Run) -> None:
    """Say so when the two accuracies come from different validation images."""
    da, db = str(a.config.get("dataset")), str(b.config.get("dataset"))
    split = [k for k in ("val_fraction", "seed") if a.config.get(k) != b.config.get(k)]
    if da == db and not split:
        st.caption(
            _("Both runs are evaluated on the same validation images of **{dataset}**.", dataset=ui.text(da))
        )
        return
    if da != db:
        related = _parent_dataset(db) == da or _parent_dataset(da) == db
        why = (
            " "
            + _(
                "One dataset is an edited version of the other: relabelled images count with their new label "
                "and removed images are gone, and the split itself can differ."
            )
            if related
            else ""
        )
        text = _("A was trained on **{a}**, B on **{b}**.", a=ui.text(da), b=ui.text(db)) + why
    else:
        text = _("The runs split the data differently ({settings}).", settings=", ".join(split))
    st.warning(
        _("The two validation sets differ: each run is evaluated on its own validation images.") + " " + text,
        icon=":material/compare_arrows:",
    )


def _accuracies(result: compare.RunComparison, a: Run, b: Run) -> None:
    change = result.accuracy_change * 100
    c1, c2, c3 = st.columns(3)
    c1.metric(_("Accuracy A · {run}", run=ui.text(a.name)), f"{result.accuracy_a:.1%}")
    c2.metric(
        _("Accuracy B · {run}", run=ui.text(b.name)),
        f"{result.accuracy_b:.1%}",
        delta=_("{change:+.1f} points vs A", change=change),
    )
    c3.metric(
        _("Validation images (A · B)"),
        f"{result.images_a} · {result.images_b}",
        help=_("Each run's own validation split: the accuracies are of these images."),
    )


def _confusion_change(result: compare.RunComparison) -> None:
    shown = st.radio(
        _("Confusion difference in"),
        list(NORMALIZE),
        format_func=_,
        horizontal=True,
        help=_(
            "Shares of each true class compare validation sets of different sizes; image counts only "
            "make sense when both runs saw the same validation images."
        ),
        **ui.keep("runs-diff-normalize", next(iter(NORMALIZE))),
    )
    normalize = NORMALIZE[shown]
    fig = plots_compare.confusion_change_figure(
        result.confusion_change(normalize), result.classes, fraction=normalize is not None, tr=_engine
    )
    st.plotly_chart(fig, key="runs-diff-chart")
    st.caption(
        _(
            "Blue: B has more of that cell than A, red: fewer. On the diagonal blue is better (more right); "
            "off the diagonal blue is worse (more of that mistake)."
        )
    )


def _per_class_change(result: compare.RunComparison, names: tuple[str, str]) -> None:
    metric = st.selectbox(
        _("Per-class metric"),
        list(PER_CLASS_LABELS),
        format_func=lambda metric: _(PER_CLASS_LABELS[metric]),
        **ui.keep("runs-per-class-metric", "f1-score"),
    )
    fig = plots_compare.per_class_change_figure(result.per_class, metric, names=names, tr=_engine)
    st.plotly_chart(fig, key="runs-per-class-chart")
    table = result.per_class.reset_index()
    labels, config = {}, {}
    for metric_name in compare.PER_CLASS_METRICS:
        short = _(PER_CLASS_LABELS[metric_name])
        for side in ("a", "b"):
            labels[f"{metric_name}_{side}"] = f"{short} {side.upper()}"
            config[labels[f"{metric_name}_{side}"]] = st.column_config.NumberColumn(format="percent")
        labels[f"{metric_name}_change"] = f"Δ {short}"
        table[f"{metric_name}_change"] = table[f"{metric_name}_change"] * 100  # percentage points
        config[f"Δ {short}"] = st.column_config.NumberColumn(
            format="%+.1f", help=_("B − A, percentage points")
        )
    labels |= {"support_a": _("images A"), "support_b": _("images B"), "class": _engine("class")}
    st.dataframe(
        table.rename(columns=labels), hide_index=True, key="runs-per-class-table", column_config=config
    )


def _may_evaluate(a: Run, b: Run) -> bool:
    """Small validation sets, or predictions already on disk, are compared at once; larger ones when asked
    (the answer is kept for the pair)."""
    uncached = [r for r in (a, b) if not predict.predictions_cache_path(r.path).is_file()]
    images = sum(int((r.summary or {}).get("val_images") or 0) for r in uncached)
    asked = st.session_state.setdefault("runs-evaluated-pairs", set())
    if images <= AUTO_COMPARE_IMAGES or (a.name, b.name) in asked:
        return True
    if st.button(
        _.plural(
            "Evaluate both runs ({n:,} validation image)",
            "Evaluate both runs ({n:,} validation images)",
            images,
            n=images,
        ),
        key="runs-evaluate",
        icon=":material/play_arrow:",
    ):
        asked.add((a.name, b.name))
        return True
    st.caption(
        _("Comparing needs each run's predictions on its validation images, computed once and cached.")
    )
    return False


def _compare_two(runs: list[Run]) -> None:
    st.subheader(_("Compare two runs"))
    candidates = [run for run in runs if run.has_checkpoint("best")]
    if len(candidates) < 2:
        st.info(_("Two runs with a checkpoint are needed to compare them."), icon=":material/info:")
        return
    pair = _choose_pair(candidates)
    if pair is None:
        return
    a, b = pair
    if not _may_evaluate(a, b):
        return
    with ui.user_errors():
        pa = ui.predictions(a, "best", progress=False)
        pb = ui.predictions(b, "best", progress=False)
        result = compare.compare_predictions(pa, pb, names=(a.name, b.name))
        if "running" in (a.status, b.status):
            st.caption(_("A run still training is compared through its best checkpoint so far."))
        _validation_note(a, b)
        _accuracies(result, a, b)
        _confusion_change(result)
        _per_class_change(result, (f"A: {a.name}", f"B: {b.name}"))


def _manage_run(by_name: dict[str, Run]) -> None:
    """Resume or delete one run (both in the runs folder, where list_runs found it)."""
    c1, c2, c3 = st.columns([3, 1, 1])
    target = c1.selectbox(_("Run"), list(by_name), format_func=ui.plain, key="runs-target")
    if c2.button(
        _("Resume"),
        key="runs-resume",
        disabled=not by_name[target].resumable,
        icon=":material/replay:",
        help=_("Continue a stopped or failed run from its last checkpoint."),
    ):
        resume(by_name[target])
    confirm = c3.checkbox(_("Really delete"), key="runs-delete-confirm")
    if st.button(_("Delete run"), key="runs-delete", disabled=not confirm, icon=":material/delete:"):
        with ui.user_errors():
            delete_run(target)
            st.session_state.pop("runs-delete-confirm", None)
            st.toast(_("Deleted {run}", run=ui.text(target)))
            st.rerun()
    with st.expander(_("Export {run}", run=ui.text(target)), icon=":material/deployed_code:"):
        export_panel.render_export(by_name[target], key="runs-export")


def _group_label(group: str) -> str:
    kind, _sep, owner = group.partition(":")
    if kind == "label-check":
        return _("Label check of run {run}", run=ui.text(owner))
    if kind == "search":
        return _("Search {run}", run=ui.text(owner))
    return ui.text(group)


def _grouped_runs(groups: dict[str, list[Run]]) -> None:
    """The runs that belong to a label check (its folds) or a search (its trials), under their group:
    listed here only, never in a run picker."""
    for group, members in groups.items():
        label = _.plural(
            "{group}: {n} {purpose} run",
            "{group}: {n} {purpose} runs",
            len(members),
            group=_group_label(group),
            n=len(members),
            purpose=_engine(members[0].purpose),
        )
        with st.expander(label, icon=":material/folder:"):
            table = compare.runs_table(members)[["run", "status", "val accuracy", "epochs", "seconds"]]
            st.dataframe(
                table.rename(columns=_engine),
                hide_index=True,
                key=f"runs-group-{group}",
                column_config={
                    _engine("val accuracy"): st.column_config.ProgressColumn(
                        _engine("val accuracy"), min_value=0.0, max_value=1.0, format="percent"
                    ),
                    _engine("seconds"): st.column_config.NumberColumn(format="%.1f"),
                },
            )
            sure = st.checkbox(_("Really delete them"), key=f"runs-group-confirm-{group}")
            if st.button(
                _("Delete these runs"),
                key=f"runs-group-delete-{group}",
                disabled=not sure,
                icon=":material/delete:",
            ):
                with ui.user_errors():
                    for run in members:
                        delete_run(run.path.name)
                    st.rerun()


def render_runs_tab() -> None:
    every = list_runs()
    runs = [run for run in every if not run.hidden]  # pickers list these (list_runs(include_hidden=False))
    groups: dict[str, list[Run]] = {}
    for run in every:
        if run.hidden:
            groups.setdefault(run.group, []).append(run)
    if not runs and not groups:
        st.info(_("No runs yet: train one in the **Train** tab."), icon=":material/info:")

        return
    if not runs:
        _grouped_runs(groups)
        return
    _runs_table(runs)
    _grouped_runs(groups)
    by_name = {run.name: run for run in runs}
    _compare_curves(by_name)
    st.divider()
    _compare_two(runs)
    st.divider()
    _manage_run(by_name)
