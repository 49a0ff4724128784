"""The one exception sandbox handlers raise: it becomes Intercom's `error.list` answer."""

from __future__ import annotations


class SandboxError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(message: str = "Resource Not Found", code: str = "not_found") -> SandboxError:
    return SandboxError(404, code, message)


def invalid(message: str, code: str = "parameter_invalid") -> SandboxError:
    return SandboxError(400, code, message)
