"""One shape for the engine work the app runs in a thread of its own process — a label check
(:mod:`cnndash.jobs.label_check`), a search and the learning-rate finder (:mod:`cnndash.search.job`).

The work runs in a daemon thread under a claim of the jobs rule (:mod:`cnndash.jobs.claims`); the page
polls an immutable snapshot (a frozen dataclass with at least ``status`` and ``error``); Stop sets
:attr:`ThreadJob.stop_event`, which the work checks between batches; and the claim is released however
the work ends. A user's error (a ``ValueError``) ends the job ``failed`` with its message — kept as a
:class:`~cnndash.text.Phrase` when it is a typed one, so the page says it in the reader's language — and
anything else is a bug: its traceback goes to the log and one line to the page.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any, Generic, TypeVar

from cnndash.errors import UserError
from cnndash.jobs.claims import Claim
from cnndash.text import Phrase

S = TypeVar("S")


def said(exc: ValueError) -> str:
    """A user error's message, keeping its template for the page (``Phrase.of``) when it is a typed one."""
    return Phrase.of(exc) if isinstance(exc, UserError) else str(exc)


class ThreadJob(Generic[S]):
    """A job's thread, snapshot, stop flag and claim. Subclasses implement :meth:`work`, which returns the
    snapshot's final changes (e.g. ``{"status": "finished"}``) and may call :meth:`update` as it goes."""

    def __init__(self, snapshot: S, claim: Claim, name: str, log: logging.Logger) -> None:
        self.claim = claim
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._snap = snapshot
        self._log = log
        self._thread = threading.Thread(target=self._guarded, name=name, daemon=True)

    def work(self) -> dict[str, Any]:
        raise NotImplementedError

    def update(self, **changes: Any) -> None:
        with self._lock:
            self._snap = replace(self._snap, **changes)

    def _guarded(self) -> None:
        try:
            self.update(**self.work())
        except ValueError as exc:  # the user's data or settings: the message as is
            self.update(status="failed", error=said(exc))
        except Exception as exc:  # a bug: traceback in the log, one line for the page
            self._log.exception("%s crashed", self._thread.name)
            self.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self.claim.release()

    def start(self) -> None:
        """Start the thread; if it cannot start, the claim is released before the error propagates."""
        try:
            self._thread.start()
        except BaseException:
            self.claim.release()
            raise

    def snapshot(self) -> S:
        with self._lock:
            return self._snap

    def status_text(self) -> str:
        """One line for the sidebar: the snapshot's ``text()`` (a Phrase while running)."""
        return self.snapshot().text()

    def fraction_done(self) -> float:
        return self.snapshot().fraction

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self.stop_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the job to end; whether it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()
