"""capframe: Capillary CRM customers as tidy, validated polars tables.

>>> import capframe
>>> client = capframe.Client.sandbox()          # the embedded emulator: no network, no credentials
>>> capframe.fetch_customers([565338404], "INSTORE", client=client).select("first_name", "last_name").row(0)
('Muhammad', 'Johns')
"""

import importlib
import importlib.metadata

from capframe._children import scan_children
from capframe._client import Client
from capframe._customers import scan_customers, tidy_customers
from capframe._fetch import (
    afetch_children,
    afetch_children_tables,
    afetch_customer_tables,
    afetch_customers,
    alookup_customer_ids,
    asink_children,
    asink_children_tables,
    asink_customer_tables,
    asink_customers,
    fetch_children,
    fetch_children_tables,
    fetch_customer_tables,
    fetch_customers,
    lookup_customer_ids,
    sink_children,
    sink_children_tables,
    sink_customer_tables,
    sink_customers,
)
from capframe._snapshot import Snapshot, SnapshotInfo
from capframe._tables import ChildrenTables, CustomerLookupTables, CustomerTables, Provenance
from capframe.errors import (
    AccessDeniedError,
    ArgumentTypeError,
    AuthenticationError,
    CapframeError,
    CapframeWarning,
    ConfigurationError,
    FetchError,
    InvalidArgumentError,
    ParentNotFoundError,
    RequestRejectedError,
    SchemaDriftWarning,
    SnapshotDamagedWarning,
    SnapshotError,
    UnexpectedEntitiesWarning,
)

# pyproject.toml says it once; installed, the package's metadata holds it.
__version__ = importlib.metadata.version("capframe")


def __getattr__(name: str) -> object:
    # capframe.schemas imports pandera (and pandera pandas), capframe.testing vcrpy: each is loaded when
    # first asked for, not on import, and `capframe.testing.vcr_config()` works after `import capframe`.
    if name in _LAZY:
        return importlib.import_module(f"capframe.{name}")  # `from capframe import` would come back here
    raise AttributeError(f"module 'capframe' has no attribute {name!r}")


_LAZY = ("schemas", "testing")


__all__ = [
    "AccessDeniedError",
    "ArgumentTypeError",
    "AuthenticationError",
    "CapframeError",
    "CapframeWarning",
    "ChildrenTables",
    "Client",
    "ConfigurationError",
    "CustomerLookupTables",
    "CustomerTables",
    "FetchError",
    "InvalidArgumentError",
    "ParentNotFoundError",
    "Provenance",
    "RequestRejectedError",
    "SchemaDriftWarning",
    "Snapshot",
    "SnapshotDamagedWarning",
    "SnapshotError",
    "SnapshotInfo",
    "UnexpectedEntitiesWarning",
    "__version__",
    "afetch_children",
    "afetch_children_tables",
    "afetch_customer_tables",
    "afetch_customers",
    "alookup_customer_ids",
    "asink_children",
    "asink_children_tables",
    "asink_customer_tables",
    "asink_customers",
    "fetch_children",
    "fetch_children_tables",
    "fetch_customer_tables",
    "fetch_customers",
    "lookup_customer_ids",
    "scan_children",
    "scan_customers",
    "schemas",
    "sink_children",
    "sink_children_tables",
    "sink_customer_tables",
    "sink_customers",
    "tidy_customers",
]
