"""Files: LocalFiles in a working directory, and the execution's stored files.

Write, Concat, Split, Size, Delete, PurgeCurrentExecutionFiles, DeduplicateItems
and FilterItems work on the files tasks stored (Kestra's internal storage);
``services/execution_files.py`` says where they live.
"""

from controlplane.plugins.storage.files import LocalFiles
from controlplane.plugins.storage.items import DeduplicateItems, FilterItems
from controlplane.plugins.storage.manage import Delete, PurgeCurrentExecutionFiles, Size
from controlplane.plugins.storage.split import Split
from controlplane.plugins.storage.write import Concat, Write

PLUGINS = (
    LocalFiles,
    Write,
    Concat,
    Split,
    Size,
    Delete,
    PurgeCurrentExecutionFiles,
    DeduplicateItems,
    FilterItems,
)

__all__ = ["PLUGINS"]
