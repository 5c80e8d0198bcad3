"""Every error and warning capframe raises.

    CapframeError
    ├── InvalidArgumentError   (also ValueError)  a bad id, source, parent, host or option; raised before any request
    ├── ArgumentTypeError      (also TypeError)   an argument of the wrong type; raised before any request
    ├── ConfigurationError     (also ValueError)  no credentials or host configured, a credential that is not text, or a host
    │                                             that cannot be reached (connection refused, unknown name, TLS failed)
    ├── MissingDependencyError (also ImportError) an optional dependency is missing: the message names the extra to install
    ├── AuthenticationError                       HTTP 401: the till code and password, or the OAuth key and secret, were refused
    ├── AccessDeniedError                         HTTP 403: the API client lacks an access group, or v2 is not enabled
    ├── RequestRejectedError                      HTTP 4xx that retrying cannot fix (bad source, batch too large, ...), or a
    │                                             redirect (never followed: check the host)
    ├── FetchError                                a batch still failed after every retry, or its answer passed max_body_bytes;
    │                                             ``.partial`` holds what was fetched
    ├── ParentNotFoundError                       fetch_children: the API does not know the parent (e.g. code 8015)
    └── SnapshotError                             a cache_dir cannot be written, or is damaged with no way to fetch again

    CapframeWarning (UserWarning)
    ├── SchemaDriftWarning                        the API sent fields capframe does not know; they are kept in ``fields``
    ├── UnexpectedEntitiesWarning                 the API sent entities for ids that were not asked; they were ignored
    └── SnapshotDamagedWarning                    a cache_dir file was damaged or missing; its units are fetched again

Messages never hold credentials or personal data: ids and HTTP statuses only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

    from capframe._tables import ChildrenTables, CustomerTables

__all__ = [
    "AccessDeniedError",
    "ArgumentTypeError",
    "AuthenticationError",
    "CapframeError",
    "CapframeWarning",
    "ConfigurationError",
    "FetchError",
    "InvalidArgumentError",
    "MissingDependencyError",
    "ParentNotFoundError",
    "RequestRejectedError",
    "SchemaDriftWarning",
    "SnapshotDamagedWarning",
    "SnapshotError",
    "UnexpectedEntitiesWarning",
]


class CapframeError(Exception):
    """The base of every error capframe raises."""


class InvalidArgumentError(CapframeError, ValueError):
    """An argument has the right type but a bad value."""


class ArgumentTypeError(CapframeError, TypeError):
    """An argument has the wrong type."""


class ConfigurationError(CapframeError, ValueError):
    """capframe does not know which cluster to call or with which credentials, or cannot reach it."""


class MissingDependencyError(CapframeError, ImportError):
    """A feature needs an optional dependency that is not installed (e.g. ``pip install 'capframe[excel]'``)."""


class _HTTPError(CapframeError):
    """An error answer from the API, with its HTTP status and, where it sent one, its error code and
    message (``api_message``: the server's own words, cut short and redacted of credentials)."""

    def __init__(
        self, message: str, *, status: int | None = None, code: int | None = None, api_message: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.api_message = api_message


class AuthenticationError(_HTTPError):
    """The API answered 401."""


class AccessDeniedError(_HTTPError):
    """The API answered 403."""


class RequestRejectedError(_HTTPError):
    """The API rejected the request itself (a 4xx other than 401, 403 and 429)."""


class FetchError(_HTTPError):
    """A batch still failed after every retry.

    ``ids`` are the customer ids of the failed batch (or batches); ``partial`` holds the tables
    fetched before the failure, so nothing already paid for is lost (from a sink, such as
    ``sink_customer_tables``: its LazyFrames, failed ids or parents as rows).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        ids: tuple[int, ...] = (),
        partial: CustomerTables | ChildrenTables | pl.DataFrame | dict[str, pl.LazyFrame] | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.ids = ids
        self.partial = partial


class ParentNotFoundError(_HTTPError):
    """fetch_children was asked for a parent the API does not know."""


class CapframeWarning(UserWarning):
    """The base of capframe's warnings."""


class SchemaDriftWarning(CapframeWarning):
    """The API sent fields that capframe's wire schema does not name."""


class UnexpectedEntitiesWarning(CapframeWarning):
    """The API sent entities for ids nobody asked for."""


class SnapshotError(CapframeError):
    """A ``cache_dir`` snapshot cannot be used: not writable, damaged with no way to fetch again, or of
    another format. ``partial`` holds what a pull fetched before the snapshot failed it, if anything."""

    def __init__(
        self,
        message: str,
        *,
        partial: CustomerTables | ChildrenTables | pl.DataFrame | dict[str, pl.LazyFrame] | None = None,
    ) -> None:
        super().__init__(message)
        self.partial = partial


class SnapshotDamagedWarning(CapframeWarning):
    """A snapshot file was damaged, missing or not what the index says: its units are fetched again."""
