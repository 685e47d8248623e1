"""The Evaluation page's suspicious-label review (part of the **Data** view): how far to trust the
suggestions, the score histogram, bulk accept as a deliberate step, and the gallery of suggestions with one
Relabel and one Remove per image whose outcome is shown where the user is.

Trust (:func:`cnndash.evaluate.label_trust.suggestion_trust`) is the model's accuracy on the very
probabilities the suggestions come from: images it never trained on. Bulk accept opens a confirmation
that repeats the count and that figure, and is off while the figure is below
:data:`~cnndash.evaluate.label_trust.BULK_ACCEPT_MIN_ACCURACY`. Every edit goes through ``edit`` (the
Data view's working version); :func:`render_suggestions` never writes anything itself.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st
from PIL import Image

import ui
from cnndash.evaluate.label_trust import BULK_ACCEPT_MIN_ACCURACY, SuggestionTrust
from cnndash.plots import label_issues as plots_labels
from ui import i18n
from ui.engine_text import engine_text
from ui.state import Said, said

_ = i18n.translator("evaluation")
_engine = i18n.translator("engine")

Edit = Callable[
    [list[dict]], None
]  # applies edits ({"op": "relabel" | "remove", "path", "to"}) to the version
Thumb = Callable[[str], Image.Image]  # a dataset path -> its thumbnail

GALLERY_COLUMNS = 4
# Keyboard shortcuts of the suspicious-label gallery: they act on its first image (the most suspicious one
# not yet edited), so pressing them repeatedly walks down the list. "C" and "R" are Streamlit's own.
SHORTCUT_RELABEL, SHORTCUT_REMOVE, SHORTCUT_UNDO = "A", "X", "U"
LAST_EDIT_KEY = "data-last-edit"  # (owner, what the last click did), shown at the top of that gallery


def render_trust(trust: SuggestionTrust) -> None:
    """How much the suggestions can be trusted: the model's out-of-sample accuracy, in a sentence."""
    if trust.images == 0:
        return
    show = st.info if trust.bulk_ok else st.warning
    show(
        ui.text(engine_text(trust.sentence())),
        icon=":material/verified:" if trust.bulk_ok else ":material/help:",
    )


def _apply(edit: Edit, edits: list[dict], message: Said, owner: str) -> None:
    """Apply ``edits`` and say what happened twice: a toast where the user looks now, and a line at the top
    of ``owner``'s gallery (the card clicked leaves the grid, so the grid moves under the pointer)."""
    edit(edits)
    st.session_state[LAST_EDIT_KEY] = (owner, message)  # said again in the language of each later run
    st.toast(said(message), icon=":material/check_circle:")


def _why_bulk_off(trust: SuggestionTrust) -> str | None:
    """Why bulk accept is off (None while it is on): the model's out-of-sample accuracy is too low."""
    if trust.bulk_ok:
        return None
    return _("Off: the model agrees with only {accuracy:.0%} of the labels out of sample (bulk accept needs "
             "{needed:.0%}); relabel images one by one.", accuracy=trust.accuracy, needed=BULK_ACCEPT_MIN_ACCURACY)  # fmt: skip


def _accept_list(above: pd.DataFrame) -> None:
    """What bulk accept will change: each image's path, given and suggested label, and score."""
    table = above[["path", "given", "suggested", "score"]].copy()
    for column in ("path", "given", "suggested"):
        table[column] = table[column].map(ui.plain)
    headers = {"path": _("path"), "given": _("given"), "suggested": _("suggested"), "score": _("score")}
    st.dataframe(table.rename(columns=headers), hide_index=True, height=min(36 * (len(table) + 1) + 2, 260),
                 key="data-accept-list")  # fmt: skip


def _bulk_accept(
    above: pd.DataFrame, threshold: float, trust: SuggestionTrust, edit: Edit, owner: str
) -> None:
    """Accept every suggestion above ``threshold``: a popover that repeats the count and the trust figure
    and lists what will change; off while the model's out-of-sample accuracy is low."""
    n = len(above)
    why_off = _why_bulk_off(trust)
    with st.popover(
        _.plural("Accept all {n:,} suggestion above {threshold:.2f}…",
                 "Accept all {n:,} suggestions above {threshold:.2f}…", n, threshold=threshold),
        key="data-accept-all",
        disabled=above.empty or not trust.bulk_ok,
        help=why_off,
        icon=":material/done_all:",
    ):  # fmt: skip
        st.markdown(
            _.plural("Relabel **{n:,} image** as the model suggests?", "Relabel **{n:,} images** as the model suggests?", n)
            + " " + ui.text(engine_text(trust.sentence()))
        )  # fmt: skip
        _accept_list(above)
        if st.button(_.plural("Yes, relabel {n:,} image", "Yes, relabel {n:,} images", n),
                     key="data-accept-all-confirm", type="primary"):  # fmt: skip
            edits = [
                {"op": "relabel", "path": p, "to": s}
                for p, s in zip(above["path"], above["suggested"], strict=True)
            ]
            _apply(edit, edits, lambda: _.plural("Relabelled {n:,} image as the model suggests.",
                                                 "Relabelled {n:,} images as the model suggests.", len(edits)),
                   owner)  # fmt: skip
            st.rerun()
    if why_off:
        st.caption(why_off)


def _card(row, first: bool, thumb: Thumb, edit: Edit, owner: str) -> None:
    """One suggestion: the image, given → suggested and the score, its path, Relabel and Remove."""
    st.image(thumb(row.path), caption=_("{given} → {suggested} · {score:.2f}", given=ui.text(row.given),
                                        suggested=ui.text(row.suggested), score=float(row.score)))  # fmt: skip
    st.caption(ui.text(row.path))
    if st.button(_("Relabel as {cls}", cls=ui.text(row.suggested)), key=f"data-relabel-{row.path}", wrap=True,
                 shortcut=SHORTCUT_RELABEL if first else None):  # fmt: skip
        _apply(edit, [{"op": "relabel", "path": row.path, "to": row.suggested}],
               lambda: _("Relabelled {path} as {cls}.", path=ui.text(row.path), cls=ui.text(row.suggested)),
               owner)  # fmt: skip
        st.rerun()
    if st.button(
        _("Remove"), key=f"data-remove-{row.path}", wrap=True, shortcut=SHORTCUT_REMOVE if first else None
    ):
        _apply(
            edit,
            [{"op": "remove", "path": row.path}],
            lambda: _("Removed {path}.", path=ui.text(row.path)),
            owner,
        )
        st.rerun()


def render_suggestions(
    frame: pd.DataFrame, edited: set[str], trust: SuggestionTrust, *, thumb: Thumb, edit: Edit, owner: str
) -> None:
    """The ranked suggestions (``frame`` from :meth:`LabelIssues.frame`) not yet ``edited``: trust, the
    threshold and its histogram, bulk accept, then one card per image, most suspicious first. ``owner``
    (the run) keeps the last edit's line to its own gallery."""
    render_trust(trust)
    threshold = st.slider(_("Score threshold"), 0.5, 1.0, step=0.01, **ui.keep("data-threshold", 0.9))
    st.plotly_chart(
        plots_labels.score_histogram(frame["score"], threshold, tr=_engine), key="data-score-hist"
    )
    disagree = frame[(frame["suggested"] != frame["given"]) & ~frame["path"].isin(edited)]
    above = disagree[disagree["score"] >= threshold]
    st.markdown(
        _.plural(
            "**{n:,} image** where the model suggests another label, **{above}** above the threshold; cleanlab "
            "flags **{flagged}** of {total}.",
            "**{n:,} images** where the model suggests another label, **{above}** above the threshold; cleanlab "
            "flags **{flagged}** of {total}.",
            len(disagree),
            above=len(above),
            flagged=int(frame["issue"].sum()),
            total=len(frame),
        )
    )
    _bulk_accept(above, threshold, trust, edit, owner)
    shown = st.number_input(_("Images shown"), 4, 96, step=4, **ui.keep("data-top", 12))
    rows = list(disagree.head(int(shown)).itertuples(index=False))
    last = st.session_state.get(LAST_EDIT_KEY)
    if last is not None and last[0] == owner:
        st.success(
            said(last[1]) + " " + _("Undo with **{key}** or *Undo last edit* below.", key=SHORTCUT_UNDO),
            icon=":material/undo:",
        )
    if rows:
        st.caption(
            _(
                "Keys: **{relabel}** relabels the first image as suggested, **{remove}** removes it, **{undo}** "
                "undoes the last edit; the next image then moves up.",
                relabel=SHORTCUT_RELABEL,
                remove=SHORTCUT_REMOVE,
                undo=SHORTCUT_UNDO,
            )
        )
    for start in range(0, len(rows), GALLERY_COLUMNS):
        for col, row in zip(st.columns(GALLERY_COLUMNS), rows[start : start + GALLERY_COLUMNS], strict=False):
            with col:
                _card(row, row is rows[0], thumb, edit, owner)
