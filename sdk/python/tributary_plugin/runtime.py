"""Imports inside a component: done when it is built, refused with a clear error after.

componentize-py runs the plugin's imports once, at build time, and snapshots the interpreter.
A module first imported while a call runs would be looked for on a file system the component
does not have, and the component would trap (``wasm `unreachable` instruction executed``). So
the first call into the plugin puts a finder in front of the file-system one that raises
``ImportError`` naming the module instead: the host then shows ``ImportError: module `x` was
not imported when the component was built …``, and code that falls back on ``ImportError``
works. Built-in and frozen modules still import.

The standard library imports a few modules only when first used; those are imported here, so
``datetime.strptime`` and decoding the common single-byte and UTF-16/32 text work in a call.
"""

import sys
from importlib.machinery import PathFinder

# Imported for their side effect: they are in the snapshot.
import _strptime  # noqa: F401  (datetime.strptime, time.strptime)
import encodings.cp1252  # noqa: F401
import encodings.idna  # noqa: F401
import encodings.iso8859_15  # noqa: F401
import encodings.latin_1  # noqa: F401
import encodings.utf_16  # noqa: F401
import encodings.utf_32  # noqa: F401
import encodings.utf_8_sig  # noqa: F401


class _BuiltAlready:
    """A finder refusing every module that is not imported yet, naming it."""

    def find_spec(self, name, path=None, target=None):
        """Raises ``ImportError`` for ``name``: it was not imported when the component was built."""
        raise ImportError(
            f"module `{name}` was not imported when the component was built; a component has no files "
            f"to import it from now: import it at the top of a module of src/ (or of the package that needs it)",
            name=name,
        )


_sealed = False


def seal_imports() -> None:
    """From now on, importing a module that is not imported yet raises ``ImportError``.

    Called by the export glue at the start of every call (the first one does the work)."""
    global _sealed
    if _sealed:
        return
    _sealed = True
    finders = sys.meta_path
    at = next((i for i, finder in enumerate(finders) if finder is PathFinder), len(finders))
    finders.insert(at, _BuiltAlready())
