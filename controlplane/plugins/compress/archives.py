"""Kestra's ``io.kestra.plugin.compress.ArchiveCompress`` and ``ArchiveDecompress``.

Archives are read and written with Python's ``zipfile`` and ``tarfile``, and
the archive stream is (de)compressed with ``gzip``, ``bz2``, ``lzma`` or
``zlib``: the algorithms ZIP, JAR and TAR, and the compressions GZIP, BZIP2,
XZ, LZMA and DEFLATE. Kestra's other choices (AR, ARJ, CPIO, DUMP; BROTLI,
DEFLATE64, LZ4, SNAPPY, Z, ZSTD) are refused when the flow is validated.

``ArchiveDecompress`` reads ``from`` (a file of the execution: an earlier
task's ``uri`` or ``outputFiles`` entry) and stores every regular file of the
archive, output as ``files`` (entry name → URI). Entries that would land
outside the task's folder (``../x``, absolute names) and links or devices in
a tar are refused: an archive is data a flow fetched, not a trusted tree.
``ArchiveCompress`` writes the files of ``from`` (archive name → URI) into
one archive, output as ``uri``.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Annotated, Any, ClassVar

from pydantic import Field, field_validator

from controlplane.domain.fields import Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError

_ALGORITHMS = {"ZIP": "zip", "JAR": "zip", "TAR": "tar"}
_UNSUPPORTED_ALGORITHMS = ("AR", "ARJ", "CPIO", "DUMP")
# Kestra's compression names, with the file suffix an archive gets.
_COMPRESSIONS = {"GZIP": ".gz", "BZIP2": ".bz2", "XZ": ".xz", "LZMA": ".lzma", "DEFLATE": ".zz"}
_UNSUPPORTED_COMPRESSIONS = (
    *("BROTLI", "DEFLATE64", "LZ4BLOCK", "LZ4FRAME"),
    *("SNAPPY", "SNAPPYFRAME", "Z", "ZSTD"),
)
_CHUNK = 1024 * 1024


def _choice(value: str, known: Mapping[str, Any], refused: tuple[str, ...], what: str) -> str:
    if "{{" in value or "{%" in value:
        return value  # checked when the task runs
    if value in refused:
        raise ValueError(
            f"{what} {value} is not supported by Flowplane (Python's standard library has no "
            f"codec for it); use one of {', '.join(known)}"
        )
    if value not in known:
        raise ValueError(f"{what} must be one of {', '.join(known)}, not {value!r}")
    return value


class _Archive(TaskBase):
    """The archive format and the compression of its stream."""

    algorithm: Text
    compression: Text | None = None

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, value: str) -> str:
        return _choice(value, _ALGORITHMS, _UNSUPPORTED_ALGORITHMS, "algorithm")

    @field_validator("compression")
    @classmethod
    def _known_compression(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _choice(value, _COMPRESSIONS, _UNSUPPORTED_COMPRESSIONS, "compression")

    def formats(self, context: RunContext) -> tuple[str, str | None]:
        """The rendered algorithm (``zip``/``tar``) and compression name, checked."""
        try:
            algorithm = _choice(
                str(context.render(self.algorithm)),
                _ALGORITHMS,
                _UNSUPPORTED_ALGORITHMS,
                "algorithm",
            )
            compression = (
                _choice(
                    str(context.render(self.compression)),
                    _COMPRESSIONS,
                    _UNSUPPORTED_COMPRESSIONS,
                    "compression",
                )
                if self.compression is not None
                else None
            )
        except ValueError as exc:
            raise TaskFailedError(str(exc)) from None
        return _ALGORITHMS[algorithm], compression


class ArchiveDecompress(_Archive):
    """Extract the regular files of an archive into the execution's storage."""

    TYPE = "io.kestra.plugin.compress.ArchiveDecompress"
    OUTPUTS: ClassVar[Mapping[str, str]] = {"files": "the extracted files: entry name to URI"}

    from_: Annotated[Text, Field(alias="from")]

    def run(self, context: RunContext) -> dict[str, Any]:
        """Open ``from``, undo ``compression``, extract; output ``files``."""
        kind, compression = self.formats(context)
        store = context.working_dir.parent / "output-files" / self.id
        with (
            context.open_file(str(context.render(self.from_))) as raw,
            tempfile.TemporaryFile(dir=context.working_dir) as archive,
        ):
            _copy(_decompressed(raw, compression), archive)
            archive.seek(0)
            entries = _zip_entries(archive) if kind == "zip" else _tar_entries(archive, context)
            files: dict[str, str] = {}
            for name, content in entries:
                target = _target(store, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as writer:
                    _copy(content, writer)
                files[name] = str(target)
        context.log("INFO", f"extracted {len(files)} file(s)")
        return {"files": files}


class ArchiveCompress(_Archive):
    """Write files of the execution into one archive, stored as ``uri``."""

    TYPE = "io.kestra.plugin.compress.ArchiveCompress"
    OUTPUTS: ClassVar[Mapping[str, str]] = {"uri": "the archive"}

    # Archive path -> file URI; or one template rendering to that map as JSON.
    from_: Annotated[dict[str, Text] | Text, Field(alias="from")]

    def run(self, context: RunContext) -> dict[str, Any]:
        """Archive ``from``'s files under their names; output ``uri``."""
        kind, compression = self.formats(context)
        members = self._members(context)
        with (
            tempfile.NamedTemporaryFile(dir=context.working_dir, delete=False) as handle,
            _compressed(handle, compression) as stream,
        ):
            write = self._write_zip if kind == "zip" else self._write_tar
            write(context, members, stream)
        suffix = (".zip" if kind == "zip" else ".tar") + (
            _COMPRESSIONS[compression] if compression else ""
        )
        context.log("INFO", f"archived {len(members)} file(s)")
        return {"uri": context.put_file(Path(handle.name), f"{self.id}{suffix}")}

    def _members(self, context: RunContext) -> dict[str, str]:
        rendered = context.render(self.from_)
        if isinstance(rendered, str):
            try:
                rendered = json.loads(rendered)
            except json.JSONDecodeError:
                rendered = None
        if not isinstance(rendered, dict) or not rendered:
            raise TaskFailedError("from must be a map of archive paths to file URIs")
        members = {str(name): str(uri) for name, uri in rendered.items()}
        for name in members:
            _safe_name(name)
        return members

    @staticmethod
    def _write_zip(context: RunContext, members: dict[str, str], stream: IO[bytes]) -> None:
        with zipfile.ZipFile(stream, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, uri in members.items():
                with context.open_file(uri) as source, archive.open(name, "w") as target:
                    _copy(source, target)

    @staticmethod
    def _write_tar(context: RunContext, members: dict[str, str], stream: IO[bytes]) -> None:
        with tarfile.open(fileobj=stream, mode="w|") as archive:
            for name, uri in members.items():
                with context.open_file(uri) as source:
                    info = tarfile.TarInfo(name)
                    info.size = os.fstat(source.fileno()).st_size
                    info.mode = 0o644
                    archive.addfile(info, source)


# -- streams ----------------------------------------------------------------------------


class _ZlibReader:
    """A read-only stream undoing zlib's DEFLATE format (Commons Compress's DEFLATE)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._inflater = zlib.decompressobj()

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` (else one chunk of) inflated bytes; b"" at the end."""
        limit = size if size > 0 else _CHUNK
        while True:
            # Bounded output per call: a small input can inflate a thousandfold.
            pending = self._inflater.unconsumed_tail
            if not pending:
                pending = self._raw.read(_CHUNK)
                if not pending:
                    return self._inflater.flush()
            data = self._inflater.decompress(pending, limit)
            if data:
                return data


def _decompressed(raw: IO[bytes], compression: str | None) -> Any:
    """A readable stream of ``raw`` with ``compression`` undone."""
    match compression:
        case None:
            return raw
        case "GZIP":
            return gzip.GzipFile(fileobj=raw, mode="rb")
        case "BZIP2":
            return bz2.BZ2File(raw, mode="rb")
        case "XZ" | "LZMA":
            kind = lzma.FORMAT_XZ if compression == "XZ" else lzma.FORMAT_ALONE
            return lzma.LZMAFile(raw, mode="rb", format=kind)
        case _:
            return _ZlibReader(raw)


@contextmanager
def _compressed(handle: IO[bytes], compression: str | None) -> Iterator[Any]:
    """A writable stream that compresses into ``handle`` (or is ``handle``)."""
    match compression:
        case None:
            yield handle
        case "GZIP":
            with gzip.GzipFile(fileobj=handle, mode="wb") as stream:
                yield stream
        case "BZIP2":
            with bz2.BZ2File(handle, mode="wb") as stream:
                yield stream
        case "XZ" | "LZMA":
            kind = lzma.FORMAT_XZ if compression == "XZ" else lzma.FORMAT_ALONE
            with lzma.LZMAFile(handle, mode="wb", format=kind) as stream:
                yield stream
        case _:
            deflater = zlib.compressobj()
            with tempfile.TemporaryFile() as plain:
                yield plain
                plain.seek(0)
                while chunk := plain.read(_CHUNK):
                    handle.write(deflater.compress(chunk))
            handle.write(deflater.flush())


def _copy(source: Any, target: Any) -> None:
    shutil.copyfileobj(source, target, _CHUNK)


# -- entries ------------------------------------------------------------------------------


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\0" in name:
        raise TaskFailedError(f"archive entry {name!r} would land outside the task's folder")
    return path


def _target(store: Path, name: str) -> Path:
    return store.joinpath(*_safe_name(name).parts)


def _zip_entries(archive: IO[bytes]) -> Iterator[tuple[str, IO[bytes]]]:
    try:
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                if info.is_dir():
                    continue
                with zipped.open(info) as content:
                    yield info.filename, content
    except zipfile.BadZipFile as exc:
        raise TaskFailedError(f"from is not a ZIP archive: {exc}") from None


def _tar_entries(archive: IO[bytes], context: RunContext) -> Iterator[tuple[str, IO[bytes]]]:
    try:
        with tarfile.open(fileobj=archive, mode="r:") as tarred:
            for member in tarred:
                if member.isdir():
                    continue
                if not member.isfile():
                    context.log("WARN", f"archive entry {member.name!r} is not a file; skipped")
                    continue
                content = tarred.extractfile(member)
                if content is not None:
                    yield member.name, content
    except tarfile.TarError as exc:
        raise TaskFailedError(f"from is not a TAR archive: {exc}") from None
