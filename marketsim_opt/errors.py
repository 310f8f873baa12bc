"""The package's own exception types, besides ValueError (and `data.DataError`) for bad input."""

from __future__ import annotations

__all__ = ["MissingExtraError"]


class MissingExtraError(ImportError):
    """An optional extra is not installed; the message says which and how to install it."""
