"""One exception hierarchy for the whole library.

Every error a user can cause is a VirtnetError with a stable ``code`` and an exit status,
so the CLI maps errors to messages and exit codes in one place and never shows a traceback.
Messages say what is wrong, where (``element``), and how to fix it (``hint``).
"""

from __future__ import annotations


class VirtnetError(Exception):
    """Base class: something the user can act on."""

    code = "error"
    exit_status = 1

    def __init__(self, message: str, *, element: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.element = element
        self.hint = hint

    def __str__(self) -> str:
        text = self.message
        if self.element:
            text = f"{self.element}: {text}"
        if self.hint:
            text = f"{text}\n  fix: {self.hint}"
        return text


class InvalidDefinition(VirtnetError):
    """A definition is malformed or semantically wrong (bad XML/YAML, bad values)."""

    code = "invalid-definition"
    exit_status = 2


class HostileInput(InvalidDefinition):
    """Input that tries to break out of its context (entities, injection, oversize)."""

    code = "hostile-input"


class NotSupported(VirtnetError):
    """Valid, but this host or this version cannot do it."""

    code = "not-supported"
    exit_status = 3


class NotFound(VirtnetError):
    """A named network, port or file does not exist."""

    code = "not-found"
    exit_status = 4


class Conflict(VirtnetError):
    """The request clashes with existing state (already running, name taken, busy)."""

    code = "conflict"
    exit_status = 5


class HostError(VirtnetError):
    """Applying to the host failed; everything that apply did has been undone."""

    code = "host-error"
    exit_status = 6


class VerificationFailed(VirtnetError):
    """The observed network differs from what its definition promises."""

    code = "verification-failed"
    exit_status = 7


class StoreError(VirtnetError):
    """The state database is unreadable, corrupted or locked."""

    code = "store-error"
    exit_status = 8


class UnsafeHostConfig(VirtnetError):
    """The host's configuration would break VM traffic (e.g. a bond mode behind a bridge)."""

    code = "unsafe-host-config"
    exit_status = 9
