"""Turning failures into Terraform diagnostics.

An exception that escapes a resource method reaches the user as an opaque
"Plugin error … Exception calling application". Every resource and data source
call therefore runs inside ``reporting``, which records the failure as an
error diagnostic instead, with the attribute it concerns when known.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from controlplane.terraform_provider.errors import ApiError
from controlplane.terraform_provider.framework import Diagnostics


@contextmanager
def reporting(
    diagnostics: Diagnostics, action: str, path: list[Any] | None = None
) -> Iterator[None]:
    """Run the block; an exception becomes an error diagnostic and is swallowed.

    ``action`` names what was being done ("create flow ops/backup"); it prefixes
    the summary so that several failing resources stay distinguishable.
    """
    try:
        yield
    except ApiError as exc:
        diagnostics.add_error(f"{action}: {exc.summary}", exc.detail, path=path)
    except Exception as exc:  # noqa: BLE001 - the last line of defence, by design
        detail = "".join(traceback.format_exception_only(exc)).strip()
        diagnostics.add_error(
            f"{action}: internal error in the Flowplane provider",
            f"{detail}\nPlease report this with the Terraform log (TF_LOG=debug).",
            path=path,
        )
