"""Read an OCI image archive (what `buildah push oci-archive:` writes and containerd imports) without
any container tool: its config (user, entrypoint, env, ports, workdir) and its filesystem as the
layers stack up (whiteouts applied), with modes, owners and the text of small files."""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Entry:
    path: str
    kind: str  # "dir", "file", "symlink", "other"
    mode: int
    uid: int
    gid: int
    link: str = ""


@dataclass
class Image:
    config: dict[str, Any]
    entries: dict[str, Entry] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def text(self, path: str) -> str:
        return self.files[path].decode()

    def users(self) -> dict[str, tuple[int, int, str, str]]:
        """name -> (uid, gid, home, shell) from /etc/passwd."""
        out = {}
        for line in self.text("/etc/passwd").splitlines():
            name, _, uid, gid, _, home, shell = line.split(":")
            out[name] = (int(uid), int(gid), home, shell)
        return out

    def groups(self) -> dict[str, int]:
        return {line.split(":")[0]: int(line.split(":")[2]) for line in self.text("/etc/group").splitlines()}


KEEP_TEXT = {"/etc/passwd", "/etc/group", "/opt/logship/pyvenv.cfg", "/opt/logship/bin/logship"}


def read_oci_archive(path: Path) -> Image:
    with tarfile.open(path) as outer:

        def blob(digest: str) -> bytes:
            algo, hexd = digest.split(":", 1)
            f = outer.extractfile(f"blobs/{algo}/{hexd}")
            assert f is not None, digest
            return f.read()

        index = json.loads(blob_from(outer, "index.json"))
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        image = Image(config=json.loads(blob(manifest["config"]["digest"])))
        for layer in manifest["layers"]:
            data = blob(layer["digest"])
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            _apply_layer(image, data)
    return image


def blob_from(outer: tarfile.TarFile, name: str) -> bytes:
    f = outer.extractfile(name)
    assert f is not None, name
    return f.read()


def _apply_layer(image: Image, data: bytes) -> None:
    with tarfile.open(fileobj=io.BytesIO(data)) as layer:
        for m in layer:
            path = "/" + posixpath.normpath(m.name.lstrip("./")).lstrip("/")
            if path == "/.":
                path = "/"
            base = posixpath.basename(path)
            parent = posixpath.dirname(path)
            if base == ".wh..wh..opq":
                for p in [p for p in image.entries if p.startswith(parent.rstrip("/") + "/")]:
                    image.entries.pop(p)
                    image.files.pop(p, None)
                continue
            if base.startswith(".wh."):
                gone = posixpath.join(parent, base[4:])
                for p in [p for p in image.entries if p == gone or p.startswith(gone + "/")]:
                    image.entries.pop(p)
                    image.files.pop(p, None)
                continue
            kind = "dir" if m.isdir() else "file" if m.isfile() else "symlink" if m.issym() else "other"
            if m.islnk():
                kind = "file"
            image.entries[path] = Entry(path, kind, m.mode & 0o7777, m.uid, m.gid, m.linkname if m.issym() else "")
            if m.isfile() and path in KEEP_TEXT:
                f = layer.extractfile(m)
                assert f is not None
                image.files[path] = f.read()
