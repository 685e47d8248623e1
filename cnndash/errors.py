"""Errors a user can cause, typed so that a page can say them in the user's language.

A :class:`UserError` is a ``ValueError`` (the house's mark of an error a user can cause, which the CLI
prints as one line and a page shows with ``ui.user_errors()``) built from a message **template** and its
parameters::

    raise DatasetError("No class folder in {file}.", file=name)

``str(exc)`` is the English text, formatted; ``exc.template`` and ``exc.params`` let the UI format the
translation of the template instead (``ui.i18n``; the catalogue of the class's :attr:`UserError.domain`).
A single message already formatted (an f-string) is still accepted: it is shown in English. A parameter that
is itself a word of the engine (an axis name) is a :class:`Term`, translated with the template. Templates are
the message ids of the catalogues, extracted with Babel by the class name (``ui/catalogs.py``), so a
template must be a string literal at the raise.
"""

from __future__ import annotations

from typing import Any

from cnndash.text import Phrase

__all__ = ["Phrase", "Term", "UserError"]


class Term(str):
    """A word of the engine's own vocabulary used as a parameter (an axis: ``Term(N_("height"))``): shown
    translated, in the error's domain, where the message is translated; English in ``str(exc)``."""

    __slots__ = ()


class UserError(ValueError):
    """An error a user can cause; the message says what is wrong and how to fix it.

    ``template`` uses ``str.format`` fields filled from ``params`` (names, numbers); the translated template
    gets the same parameters. ``domain`` is the translation domain holding the class's templates.
    """

    domain = "engine"

    def __init__(self, template: object, /, **params: Any) -> None:
        self.template = str(template)
        self.params = params
        super().__init__(self.english())

    def english(self) -> str:
        """The message in English: the template with its parameters filled in."""
        return self.template.format(**self.params) if self.params else self.template

    def __str__(self) -> str:
        return self.english()

    def __reduce__(self) -> tuple:
        # Pickled across processes (torchrun workers, a label check) with its template, parameters and
        # extra attributes (ConfigError.field), whatever the subclass's own constructor takes.
        return (_rebuild, (type(self), self.template, self.params, self.__dict__))


def _rebuild(cls: type[UserError], template: str, params: dict[str, Any], state: dict[str, Any]) -> UserError:
    exc = cls.__new__(cls)
    ValueError.__init__(exc, template.format(**params) if params else template)
    exc.__dict__.update(state)
    return exc
