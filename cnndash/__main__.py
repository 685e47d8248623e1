"""``python -m cnndash`` — see :mod:`cnndash.cli`."""

from cnndash.cli import main

raise SystemExit(main())
