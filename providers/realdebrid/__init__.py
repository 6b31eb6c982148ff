"""The Real-Debrid provider: torrents and hoster links through api.real-debrid.com.

``RealDebridProvider`` implements the ``Provider`` protocol; ``DeviceAuthorization``
is what ``start_device_auth`` hands a CLI during the OAuth device login. The
facts behind every choice are in docs/realdebrid.md.
"""

from providers.realdebrid._auth import OPEN_SOURCE_CLIENT_ID, DeviceAuthorization
from providers.realdebrid._provider import DEFAULT_BASE_URL, DEFAULT_OAUTH_URL, RealDebridProvider
from providers.realdebrid._tables import ERROR_CODES, STATUS_TABLE

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_OAUTH_URL",
    "ERROR_CODES",
    "OPEN_SOURCE_CLIENT_ID",
    "STATUS_TABLE",
    "DeviceAuthorization",
    "RealDebridProvider",
]
