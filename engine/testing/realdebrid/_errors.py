"""How the fake Real-Debrid says no: error bodies, and the usual status and code per error."""

from __future__ import annotations

from typing import Any

from engine.testing._fakehttp import FakeResponse

__all__ = ["ERRORS", "MAINTENANCE_TEXT", "OAUTH", "REST", "rd_error"]

REST = "/rest/1.0"
OAUTH = "/oauth/v2"

#: Canonical (HTTP status, error_code) per error string, for ``FakeRealDebrid.fail_next``.
#: Statuses are the ones seen in the field (facts section 4.1); codes from [DOC] 4.2.
ERRORS: dict[str, tuple[int, int | None]] = {
    "internal_error": (503, -1),  # "Internal error", July 2024 incident
    "parameter_missing": (400, 1),  # rdt-client#27 logs
    "wrong_parameter": (400, 2),  # string for 2 UNCONFIRMED
    "unknown_method": (404, 3),
    "method_not_allowed": (405, 4),
    "slow_down": (429, 5),
    "ressource_unreachable": (503, 6),
    "unknown_ressource": (404, 7),  # RD's own spelling
    "bad_token": (401, 8),
    "permission_denied": (403, 9),  # free accounts (MediaFusion)
    "two_factor_auth_needed": (403, 10),
    "account_locked": (403, 14),
    "account_not_activated": (403, 15),
    "hoster_unsupported": (400, 16),  # seen once (UNCONFIRMED)
    "hoster_in_maintenance": (503, 17),
    "hoster_limit_reached": (503, 18),
    "hoster_unavailable": (503, 19),  # itsToggle/rclone_RD#10
    "hoster_not_free": (403, 20),
    "too_many_active_downloads": (509, 21),  # [DECY], cli_debrid#202
    "ip_not_allowed": (403, 22),
    "traffic_exhausted": (503, 23),
    "file_unavailable": (503, 24),
    "service_unavailable": (503, 25),
    "upload_too_big": (400, 26),
    "upload_error": (503, 27),
    "file_not_allowed": (400, 28),
    "torrent_too_big": (400, 29),
    "torrent_file_invalid": (400, 30),
    "action_already_done": (202, 31),  # Umbrella _post
    "image_resolution_error": (400, 32),
    "torrent_already_active": (400, 33),
    "too_many_requests": (429, 34),
    "infringing_file": (451, 35),  # 403 in 2024, 503 in DMM, 451 in 2026
    "fair_usage_limit": (503, 36),  # rdt-client#433
    "disabled_endpoint": (403, 37),  # comet#243, decypharr#67
}

MAINTENANCE_TEXT = (
    b"<html><head><title>Real-Debrid</title></head>"
    b"<body><h1>Temporarily Down For Maintenance</h1></body></html>"
)


def rd_error(status: int, error: str, code: int | None = None, **extra: Any) -> FakeResponse:
    """An RD error body ``{"error": ..., "error_code": ...}`` (code omitted when None)."""
    body: dict[str, Any] = {"error": error, **extra}
    if code is not None:
        body["error_code"] = code
    return FakeResponse.json(body, status)
