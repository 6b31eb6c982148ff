"""The TorBox provider (torbox.app): torrents and hoster links through TorBox's API.

``TorBoxProvider`` implements the ``Provider`` protocol; ``STATES`` and
``ERRORS`` are its two mapping tables (download states onto ``JobStatus``,
error codes onto ``ProviderError``), ``RATE_LIMITS`` its token buckets.
See docs/torbox.md for the tables, the polling strategy and the decisions taken
where TorBox's documentation is silent.
"""

from providers.torbox._errors import ERRORS, ErrorRule
from providers.torbox._ids import RemoteRef, parse_remote_id
from providers.torbox._provider import DEFAULT_BASE_URL, PLAN_SLOTS, RATE_LIMITS, TorBoxProvider
from providers.torbox._states import STATES, StateEntry, lookup_state

__all__ = [
    "DEFAULT_BASE_URL",
    "ERRORS",
    "PLAN_SLOTS",
    "RATE_LIMITS",
    "STATES",
    "ErrorRule",
    "RemoteRef",
    "StateEntry",
    "TorBoxProvider",
    "lookup_state",
    "parse_remote_id",
]
