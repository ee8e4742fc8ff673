"""Content-addressed blob store: files named by their sha256, written atomically."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from indexer.errors import MediaTooLarge, NotFound

_HEX = frozenset("0123456789abcdef")


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp = self.root / ".tmp"
        self.tmp.mkdir(exist_ok=True)

    def path(self, sha256: str) -> Path:
        # a name that is not a full hex digest would land on a folder ("" is the root
        # itself): an upload whose hash never finished once became a catalog row so
        if len(sha256) != 64 or not _HEX.issuperset(sha256):
            raise NotFound(f"blob {sha256[:12]!r} is not a sha256 name")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def open_path(self, sha256: str) -> Path:
        p = self.path(sha256)
        if not p.exists():
            raise NotFound(f"blob {sha256[:12]}… is missing from the store")
        return p

    def spool(self, chunks: Iterable[bytes], *, max_bytes: int) -> tuple[Path, str, int]:
        """Write chunks to a temp file while hashing; stop as soon as max_bytes is passed."""
        fd, name = tempfile.mkstemp(dir=self.tmp)
        h = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaTooLarge(f"file is larger than the {max_bytes} byte limit")
                    h.update(chunk)
                    f.write(chunk)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name), h.hexdigest(), size

    def commit(self, tmp_path: Path, sha256: str) -> Path:
        """Move a spooled file into place under its hash (no-op if the blob exists)."""
        try:
            dest = self.path(sha256)
        except NotFound:
            tmp_path.unlink(missing_ok=True)
            raise
        if dest.exists():
            tmp_path.unlink(missing_ok=True)
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_path, dest)
        return dest

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if not self.exists(sha):
            fd, name = tempfile.mkstemp(dir=self.tmp)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self.commit(Path(name), sha)
        return sha

    def put_file(self, src: Path, *, max_bytes: int) -> tuple[str, int]:
        with open(src, "rb") as f:
            tmp, sha, size = self.spool(iter(lambda: f.read(1 << 20), b""), max_bytes=max_bytes)
        self.commit(tmp, sha)
        return sha, size

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def clear_tmp(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(exist_ok=True)
