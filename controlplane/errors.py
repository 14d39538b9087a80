"""The one error tree of Flowplane.

Every error the project raises on purpose derives from ``FlowplaneError``.
Errors from libraries (SQLAlchemy, YAML, GitPython) are translated into these
inside the adapter that calls the library, and only there. The API maps each
class to an HTTP status in one table (``controlplane.api.errors``)::

    FlowplaneError
    ├── InvalidFlowError          a flow source failed parsing or validation (422)
    ├── InvalidRequestError       a request is malformed in a way we can name (400)
    │   ├── PayloadTooLargeError  a body over the configured limit (413)
    │   └── UnsupportedMediaTypeError  a Content-Type we do not read (415)
    ├── UnauthorizedError         a signature or credential did not check out (401)
    ├── ForbiddenError            the caller may not do this (403), e.g. approve their own plan
    ├── NotFoundError             the object does not exist (404)
    ├── InvalidInputError         execution inputs do not fit the flow's inputs (422)
    ├── ConflictError             the write clashes with current state (409)
    │   ├── OwnershipConflictError   the flow is managed by another origin
    │   └── IllegalTransitionError   a state change the transition rules refuse
    ├── EvaluationError           a task property could not be evaluated at run time
    ├── PreconditionFailedError   If-Match did not match the current ETag (412)
    ├── TooManyRequestsError      a per-caller cap is reached, e.g. log followers (429)
    ├── SourceUnavailableError    a Git remote could not be read (502)
    ├── SandboxError              scripts cannot run under the configured isolation
    │                             (defined in runners/sandbox.py, beside its only user)
    └── StoreError                the database failed underneath us (503)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One located finding in a flow source.

    ``path`` is the field path inside the document (``tasks[2].retry.maxAttempts``);
    ``line`` and ``column`` are 1-based, or ``None`` when the finding has no place
    in the text (for example a document that is empty).
    """

    message: str
    path: str = ""
    line: int | None = None
    column: int | None = None
    file: str | None = None

    def render(self) -> str:
        """Format as ``file:line:col: path: message``, leaving out what is unknown."""
        where = [self.file or "<flow>"]
        if self.line is not None:
            where.append(str(self.line))
            if self.column is not None:
                where.append(str(self.column))
        prefix = ":".join(where)
        field = f"{self.path}: " if self.path else ""
        return f"{prefix}: {field}{self.message}"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view, used by the API error body."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


class FlowplaneError(Exception):
    """Base of every error Flowplane raises on purpose."""


class InvalidFlowError(FlowplaneError):
    """A flow source did not parse or validate; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.render() for p in problems))


class InvalidRequestError(FlowplaneError):
    """A request that is malformed in a way we can explain."""


class PayloadTooLargeError(InvalidRequestError):
    """The request body is over the configured size limit."""


class UnsupportedMediaTypeError(InvalidRequestError):
    """The request body's Content-Type is not one the endpoint reads."""


class UnauthorizedError(FlowplaneError):
    """A webhook signature or credential did not check out."""


class ForbiddenError(FlowplaneError):
    """The caller is not allowed to do this (for example, approve their own plan)."""


class SourceUnavailableError(FlowplaneError):
    """A Git source could not be cloned, fetched or read."""


class NotFoundError(FlowplaneError):
    """The object asked for does not exist (or was deleted)."""


class InvalidInputError(FlowplaneError):
    """Inputs given to an execution (or a resume) do not fit the declared inputs."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems))


class ConflictError(FlowplaneError):
    """The write clashes with the current state."""


class OwnershipConflictError(ConflictError):
    """The flow is managed by another origin, which is named in the message."""


class IllegalTransitionError(ConflictError):
    """The transition rules refuse this state change (e.g. resuming a run that is not paused)."""


class EvaluationError(FlowplaneError):
    """A task's property failed to evaluate at run time; the message names task and field.

    The worker's fault boundary turns it into a FAILED task run with this
    message in its logs; it never reaches the API.
    """


class PreconditionFailedError(FlowplaneError):
    """An If-Match precondition failed: someone else changed the object."""


class TooManyRequestsError(FlowplaneError):
    """A per-caller cap is reached (for example, log followers per token); retry later."""


class StoreError(FlowplaneError):
    """The database failed in a way the caller cannot fix by changing the request."""
