"""Compress: Kestra's ArchiveCompress and ArchiveDecompress on the execution's files."""

from controlplane.plugins.compress.archives import ArchiveCompress, ArchiveDecompress

PLUGINS = (ArchiveCompress, ArchiveDecompress)

__all__ = ["PLUGINS"]
