"""Error types shared by the whole SDK. Each says which side is at fault and where."""

from __future__ import annotations

__all__ = ["DecodeError", "EncodeError", "SchemaError", "SpacetimeError"]


class SpacetimeError(Exception):
    """Base class of every error raised by spacetime_game."""


class DecodeError(SpacetimeError, ValueError):
    """Bytes that came from the other side could not be decoded.

    This is not a bug in the caller: the data is malformed, truncated, or of another type than expected.
    ``path`` names the place in the type (``ServerMessage::SubscribeApplied.rows.tables[0].table``),
    ``offset`` the byte offset in the buffer where decoding of that place began.
    """

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(f"cannot decode {path} at byte offset {offset}: {reason}")

    def within(self, prefix: str) -> DecodeError:
        """The same error with ``prefix`` put in front of its path."""
        return DecodeError(_join(prefix, self.path), self.offset, self.reason)


class EncodeError(SpacetimeError, TypeError):
    """A Python value does not fit the SATS type it is being encoded as (a caller error).

    ``path`` names the field (``args.name``), ``reason`` what was wrong with the value.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot encode {path or 'value'}: {reason}")

    def within(self, prefix: str) -> EncodeError:
        """The same error with ``prefix`` put in front of its path."""
        return EncodeError(_join(prefix, self.path), self.reason)


class SchemaError(SpacetimeError, ValueError):
    """A schema or type description is malformed; ``path`` says where."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"invalid schema at {path}: {reason}")


def _join(prefix: str, path: str) -> str:
    if not path:
        return prefix
    if not prefix:
        return path
    if path[0] in ".[:":
        return prefix + path
    return f"{prefix}.{path}"
