"""Templates on the worker's side: a folder watched for edits.

In: a templates folder. Out: ``FolderTemplates``, whose ``current()`` is the folder's
``TemplateSet`` as it is now. The content side (``TemplateSet``, the Jinja sandbox,
``TemplateRenderError``) lives in ``dsl.templates`` and is re-exported here.
"""

from __future__ import annotations

import os
from pathlib import Path

from dsl.templates import (  # noqa: F401  (re-exported)
    MAX_POWER_DIGITS,
    MAX_REPEAT,
    TEMPLATE_SUFFIX,
    EmailEnvironment,
    SnapshotLoader,
    TemplateRenderError,
    TemplateSet,
    available_templates,
    make_environment,
    template_file,
)


class FolderTemplates:
    """A template source over a folder: ``current()`` is the folder's ``TemplateSet`` as it
    is now (re-read when a file's size or time changes). Without a ``PlanStore`` this keeps
    the old behaviour, where an edit is live at the next send."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._stamp: tuple | None = None
        self._set: TemplateSet | None = None

    def _files_stamp(self) -> tuple:
        if not self.root.is_dir():
            return ()
        out = []
        for dirpath, _, files in os.walk(self.root):
            for f in files:
                p = os.path.join(dirpath, f)
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                out.append((p, st.st_mtime_ns, st.st_size))
        return tuple(sorted(out))

    def current(self) -> TemplateSet:
        stamp = self._files_stamp()
        if self._set is None or stamp != self._stamp:
            self._set, self._stamp = TemplateSet.read(self.root), stamp
        return self._set
