"""What a forked Lambda environment gets from the fork server about its modules, and what it
reports back.

The server (``forkserver_process.py``) works out, before it forks, which of its preloaded modules
the function's own code shadows and which modules it already has (:class:`Inherited`): a child
that walked ``sys.modules`` itself would write the reference count of every module name and so
copy ~400 of the server's pages (~130 of a new environment's ~3,900 page copies, ~1 ms CPU). The
child then reports, after init and after each invocation, what it imported and which botocore
data files and listings it parsed (:class:`ImportReport`), so the server preloads them for the
next fork. Standard library only, loaded by the server beside itself like ``forkserver_warm.py``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

__all__ = ["FILE_PREFIX", "LISTING_PREFIX", "ImportReport", "Inherited", "own_names"]

#: a report line naming a botocore data file the child parsed, and one naming a listing it made
FILE_PREFIX = "file:"
LISTING_PREFIX = "listing:"
#: code directories whose answer the server keeps (each version of a function has its own)
KEPT_ANSWERS = 64


def own_names(task_root: str) -> set[str]:
    """Top-level module names the function's code provides (minus the standard library's)."""
    try:
        names = {entry.partition(".")[0] for entry in os.listdir(task_root)}
    except OSError:
        return set()
    return names - sys.stdlib_module_names


class Inherited:
    """The server's answer for one code directory: the function's top-level names, the preloaded
    modules its code shadows, what the server has imported and how many botocore files and
    listings it holds (``files`` and ``listings``: the server's shared tables, which only grow)."""

    _known: dict[str, Inherited] = {}

    def __init__(self, task_root: str, files: dict[str, Any], listings: dict[Any, Any]) -> None:
        self.own = frozenset(own_names(task_root))
        #: the preloaded modules the function's own code provides (the child forgets them)
        self.shadowed = tuple(n for n in sys.modules if n.partition(".")[0] in self.own)
        self.modules = frozenset(sys.modules)  #: what the server has imported
        self.files, self.listings = files, listings
        self.files_known, self.listings_known = len(files), len(listings)

    @classmethod
    def of(cls, task_root: str, files: dict[str, Any], listings: dict[Any, Any]) -> Inherited:
        """The answer for ``task_root``, worked out again only when the server imported or
        parsed more, or the directory's top-level names changed."""
        known = cls._known.get(task_root)
        if (
            known is None
            or len(known.modules) != len(sys.modules)
            or known.files_known != len(files)
            or known.listings_known != len(listings)
            or known.own != frozenset(own_names(task_root))
        ):
            if len(cls._known) >= KEPT_ANSWERS:
                cls._known.clear()
            known = cls._known[task_root] = cls(task_root, files, listings)
        return known


class ImportReport:
    """In a child: tells the server which modules outside the function's code it imported, and
    the botocore data files and listings it parsed (one line each, to the report pipe)."""

    def __init__(self, fd: int, inherited: Inherited) -> None:
        self._fd: int | None = fd
        self._before = inherited.modules
        self._reported: set[str] = set()
        # the handler's package is the function's even where it is found outside its code
        self._own = inherited.own | {os.environ.get("_HANDLER", "").partition(".")[0]}
        self._seen = len(sys.modules)  # what was imported later sits after it in sys.modules
        self._files, self._listings = inherited.files, inherited.listings
        self._files_known, self._listings_known = inherited.files_known, inherited.listings_known

    def _new_modules(self) -> list[str]:
        """Modules imported since the last report: read from the end of ``sys.modules`` (it
        keeps insertion order), so the server's module names are not touched (nor copied)."""
        names: list[str] = []
        for count, name in enumerate(reversed(sys.modules)):
            if count >= len(sys.modules) - self._seen + 64:  # deletions shift it: a margin
                break
            if (
                name not in self._before
                and name not in self._reported
                and name.partition(".")[0] not in self._own
            ):
                names.append(name)
        self._seen = len(sys.modules)
        self._reported.update(names)
        return names[::-1]

    def __call__(self, last: bool) -> None:
        if self._fd is None:
            return
        names = self._new_modules()
        # both tables only grow: what was added since the last report is at their end
        files = [FILE_PREFIX + path for path in list(self._files)[self._files_known :]]
        listings = [
            LISTING_PREFIX + json.dumps([list(key[0]), *key[1:]])
            for key in list(self._listings)[self._listings_known :]
        ]
        self._files_known, self._listings_known = len(self._files), len(self._listings)
        try:
            data = "\n".join(names + files + listings).encode() + b"\n"
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError:  # the server is gone: nothing to teach
            last = True
        if last:
            os.close(self._fd)
            self._fd = None
