"""The console's view of the protection records: the library's :class:`~vmferry.replication.store.Store`,
whose records are parsed again only when their file changed. Records are written whole and renamed into
place (``Store.save``), so a file's inode, size and modification time change with every write; the
console, which never writes a record, keeps the parsed one while they stay the same."""

from __future__ import annotations

import os

from vmferry.replication.store import ProtectionGroup, Store


class CachedStore(Store):
    def __init__(self, root=None) -> None:
        super().__init__(root)
        self._parsed: dict[str, tuple[tuple[int, int, int], ProtectionGroup]] = {}

    def load(self, app: str) -> ProtectionGroup:
        try:
            st = os.stat(self._path(app, ".json"))
        except OSError:
            self._parsed.pop(app, None)
            return super().load(app)          # the library's own error for a missing record
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        hit = self._parsed.get(app)
        if hit is not None and hit[0] == key:
            return hit[1]
        group = super().load(app)
        self._parsed[app] = (key, group)
        return group
