"""parse_start_job_payload: every rule, the field each error names, and no other exception."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers import FileSelection, StartJobPayload, ValidationError, parse_start_job_payload
from providers._torrent import bencode
from providers._validation import MAX_TORRENT_BYTES, MAX_URL_BYTES

HEX = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
MAGNET = f"magnet:?xt=urn:btih:{HEX}&dn=name"
TORRENT = bencode({"info": {"name": "x", "length": 1, "piece length": 16384, "pieces": b"0" * 20}})
URL = "https://example.com/file.zip"


def error_for(raw: object) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        parse_start_job_payload(raw)
    return info.value


# --- sources -----------------------------------------------------------------


def test_url_payload_gets_the_documented_defaults() -> None:
    payload = parse_start_job_payload({"url": URL})
    assert payload == StartJobPayload(url=URL)
    assert (payload.connections, payload.priority, payload.only_if_cached) == (1, 0, False)
    assert payload.select == FileSelection()
    assert payload.kind == "url"


def test_full_payload_from_the_design_example() -> None:
    payload = parse_start_job_payload(
        {
            "url": "http://host/file",
            "select": {
                "ids": [1, 3],
                "globs": ["*.mkv"],
                "min_size": 1048576,
                "largest_only": False,
            },
            "download_dir": "/path",
            "connections": 16,
            "only_if_cached": True,
            "priority": -1000,
        }
    )
    assert payload.select == FileSelection(ids=(1, 3), globs=("*.mkv",), min_size=1048576)
    assert (payload.download_dir, payload.connections) == ("/path", 16)
    assert (payload.only_if_cached, payload.priority) == (True, -1000)


def test_a_payload_object_is_returned_as_it_is() -> None:
    payload = StartJobPayload(url=URL)
    assert parse_start_job_payload(payload) is payload


@pytest.mark.parametrize("raw", [None, "https://x", [("url", URL)], 3])
def test_payload_that_is_not_a_mapping_is_rejected(raw: object) -> None:
    error = error_for(raw)
    assert error.field == "payload"
    assert "mapping" in error.expected


def test_no_source_is_rejected() -> None:
    error = error_for({"priority": 1})
    assert error.field == "payload"
    assert "exactly one of url, magnet or torrent" in str(error)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"url": URL, "magnet": MAGNET}, "magnet"),
        ({"url": URL, "torrent": TORRENT}, "torrent"),
        ({"magnet": MAGNET, "torrent": TORRENT}, "torrent"),
    ],
)
def test_two_sources_are_rejected(raw: dict[str, Any], field: str) -> None:
    error = error_for(raw)
    assert error.field == field
    assert "exactly one" in error.expected


def test_null_counts_as_absent() -> None:
    payload = parse_start_job_payload({"url": URL, "magnet": None, "connections": None})
    assert payload == StartJobPayload(url=URL)


def test_unknown_top_level_key_is_rejected_by_name() -> None:
    error = error_for({"url": URL, "prio": 1})
    assert error.field == "prio"
    assert "unknown" in error.message
    assert "priority" in error.expected


def test_non_text_key_is_rejected() -> None:
    error = error_for({"url": URL, 7: 1})
    assert error.field == "7"


# --- url -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://example.com", "https://a.b/c?d=e#f", "HTTPS://Example.COM:8443/x", "http://[::1]:80/"],
)
def test_http_and_https_urls_with_a_host_are_accepted(url: str) -> None:
    assert parse_start_job_payload({"url": url}).url == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "example.com/file",
        "https:///path-only",
        "https://",
        "https://exa mple.com/",
        "https://example.com/\nx",
        "https://example.com/\x00",
        "https://example.com/\u2028",
        "https://example.com/\ud800",
        "https://example.com:99999/",
        "https://example.com:port/",
        "http://[::1/",
        "",
        "javascript:alert(1)",
    ],
)
def test_bad_urls_are_rejected(url: str) -> None:
    error = error_for({"url": url})
    assert error.field == "url"
    assert "http or https" in error.expected


def test_url_longer_than_8_kb_is_rejected_and_not_echoed() -> None:
    url = "https://example.com/" + "a" * MAX_URL_BYTES
    error = error_for({"url": url})
    assert error.field == "url"
    assert "too long" in error.message
    assert len(str(error)) < 300
    assert len(str(error.value)) < 300


def test_url_of_exactly_8_kb_is_accepted() -> None:
    base = "https://example.com/"
    url = base + "a" * (MAX_URL_BYTES - len(base))
    assert parse_start_job_payload({"url": url}).url == url


def test_url_limit_counts_utf8_bytes() -> None:
    base = "https://example.com/"
    url = base + "é" * (MAX_URL_BYTES - len(base))  # fewer characters than bytes
    assert error_for({"url": url}).field == "url"


@pytest.mark.parametrize("value", [b"https://example.com", 1, ["https://example.com"], True])
def test_url_that_is_not_text_is_rejected(value: object) -> None:
    error = error_for({"url": value})
    assert error.field == "url"
    assert "text" in error.message


# --- magnet --------------------------------------------------------------------


def test_hex_and_base32_magnets_are_accepted() -> None:
    b32 = base64.b32encode(bytes.fromhex(HEX)).decode()
    for magnet in (MAGNET, f"magnet:?xt=urn:btih:{b32}", f"MAGNET:?xt=urn:btih:{HEX.upper()}"):
        payload = parse_start_job_payload({"magnet": magnet})
        assert payload.magnet == magnet
        assert payload.info_hash == HEX


@pytest.mark.parametrize(
    "magnet",
    [
        "magnet:?xt=urn:btih:abc",
        f"magnet:?xt=urn:btih:{HEX}ff",
        "magnet:?xt=urn:btih:" + "z" * 40,
        "magnet:?dn=only-a-name",
        f"magnet:xt=urn:btih:{HEX}",
        f"https://example.com/?xt=urn:btih:{HEX}",
        f"magnet:?xt=urn:btih:{HEX}&dn=a b",
        f"magnet:?xt=urn:btih:{HEX}\n",
        "magnet:?xt=urn:btih:" + HEX + "&tr=" + "x" * 70_000,
    ],
)
def test_bad_magnets_are_rejected(magnet: str) -> None:
    error = error_for({"magnet": magnet})
    assert error.field == "magnet"
    assert "btih" in error.expected
    assert len(str(error)) < 400


def test_magnet_that_is_not_text_is_rejected() -> None:
    assert error_for({"magnet": 5}).field == "magnet"


# --- torrent -------------------------------------------------------------------


def test_torrent_bytes_are_accepted() -> None:
    payload = parse_start_job_payload({"torrent": TORRENT})
    assert payload.torrent == TORRENT
    assert payload.kind == "torrent"


def test_torrent_bytearray_becomes_bytes() -> None:
    torrent = parse_start_job_payload({"torrent": bytearray(TORRENT)}).torrent
    assert type(torrent) is bytes
    assert torrent == TORRENT


def test_torrent_base64_text_is_decoded_even_when_line_wrapped() -> None:
    text = base64.b64encode(TORRENT).decode()
    wrapped = "\n".join(text[i : i + 20] for i in range(0, len(text), 20))
    assert parse_start_job_payload({"torrent": text}).torrent == TORRENT
    assert parse_start_job_payload({"torrent": wrapped}).torrent == TORRENT


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64!", "base64"),
        ("é", "base64"),
        (base64.b64encode(b"i1e").decode(), "info"),
        (b"", "bencoded"),
        (b"d4:infoi1ee", "info"),
        (b"le", "info"),
        (TORRENT + b"junk", "bencoded"),
        (5, "bytes or base64"),
        (["x"], "bytes or base64"),
    ],
)
def test_bad_torrents_are_rejected(value: object, message: str) -> None:
    error = error_for({"torrent": value})
    assert error.field == "torrent"
    assert message in error.message
    assert "info dictionary" in error.expected


def test_torrent_over_10_mb_is_rejected_without_echoing_it() -> None:
    big = TORRENT[:-1] + b"5:extra" + bencode(b"x" * MAX_TORRENT_BYTES) + b"e"
    error = error_for({"torrent": big})
    assert error.field == "torrent"
    assert str(MAX_TORRENT_BYTES) in error.expected
    assert len(str(error)) < 300
    assert len(str(error.value)) < 300


def test_torrent_base64_text_far_over_the_limit_is_rejected_before_decoding() -> None:
    error = error_for({"torrent": "A" * (MAX_TORRENT_BYTES * 3)})
    assert error.field == "torrent"
    assert "too large" in error.message


# --- select --------------------------------------------------------------------


def test_select_with_only_some_keys_uses_defaults_for_the_rest() -> None:
    payload = parse_start_job_payload({"url": URL, "select": {"largest_only": True}})
    assert payload.select == FileSelection(largest_only=True)


def test_select_given_as_a_file_selection_is_kept() -> None:
    selection = FileSelection(ids=(2,))
    assert parse_start_job_payload({"url": URL, "select": selection}).select is selection


@pytest.mark.parametrize(
    ("select", "field", "expected"),
    [
        ("*.mkv", "select", "mapping"),
        ({"id": [1]}, "select.id", "one of"),
        ({"ids": 1}, "select.ids", "list of integers"),
        ({"ids": "12"}, "select.ids", "list of integers"),
        ({"ids": [1, -1]}, "select.ids[1]", "integer from 0"),
        ({"ids": [True]}, "select.ids[0]", "integer"),
        ({"ids": [1.0]}, "select.ids[0]", "integer"),
        ({"globs": "*.mkv"}, "select.globs", "list of patterns"),
        ({"globs": ["*.mkv", ""]}, "select.globs[1]", "non-empty"),
        ({"globs": [3]}, "select.globs[0]", "glob"),
        ({"min_size": -1}, "select.min_size", "integer from 0"),
        ({"min_size": True}, "select.min_size", "integer"),
        ({"min_size": "10"}, "select.min_size", "integer"),
        ({"min_size": 2**63}, "select.min_size", "integer from 0"),
        ({"largest_only": 1}, "select.largest_only", "boolean"),
        ({"largest_only": "yes"}, "select.largest_only", "boolean"),
    ],
)
def test_bad_select_names_the_nested_field(select: object, field: str, expected: str) -> None:
    error = error_for({"url": URL, "select": select})
    assert error.field == field
    assert expected in error.expected


# --- options -------------------------------------------------------------------


@pytest.mark.parametrize("connections", [1, 8, 16])
def test_connections_from_1_to_16_are_accepted(connections: int) -> None:
    assert parse_start_job_payload({"url": URL, "connections": connections}).connections == (
        connections
    )


@pytest.mark.parametrize("connections", [0, 17, -1, True, False, 2.0, "4"])
def test_connections_outside_1_to_16_or_not_int_are_rejected(connections: object) -> None:
    error = error_for({"url": URL, "connections": connections})
    assert error.field == "connections"
    assert error.expected == "an integer from 1 to 16"


@pytest.mark.parametrize("priority", [-1001, 1001, True, 0.5, 10**400])
def test_priority_outside_range_or_not_int_is_rejected(priority: object) -> None:
    error = error_for({"url": URL, "priority": priority})
    assert error.field == "priority"
    assert "-1000 to 1000" in error.expected
    assert len(str(error)) < 300


@pytest.mark.parametrize("value", [1, 0, "true", None.__class__])
def test_only_if_cached_must_be_a_bool(value: object) -> None:
    error = error_for({"url": URL, "only_if_cached": value})
    assert error.field == "only_if_cached"
    assert error.expected == "a boolean"


@pytest.mark.parametrize("value", ["", "a\x00b", 3, b"/tmp"])
def test_bad_download_dir_is_rejected(value: object) -> None:
    assert error_for({"url": URL, "download_dir": value}).field == "download_dir"


def test_download_dir_keeps_spaces_and_unicode() -> None:
    assert parse_start_job_payload({"url": URL, "download_dir": "/d/My Films é"}).download_dir == (
        "/d/My Films é"
    )


def test_error_messages_truncate_huge_values() -> None:
    error = error_for({"url": URL, "priority": "9" * 100_000})
    assert len(str(error)) < 300
    assert isinstance(error.value, str)
    assert len(error.value) < 200


def test_validation_error_is_a_value_error() -> None:
    assert isinstance(error_for({}), ValueError)


# --- anything at all -----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "url",
        "magnet",
        "torrent",
        "select",
        "download_dir",
        "connections",
        "only_if_cached",
        "priority",
    ]
) | st.text(max_size=10)
select_values = st.dictionaries(
    st.sampled_from(["ids", "globs", "min_size", "largest_only"]) | st.text(max_size=5),
    json_values,
    max_size=4,
)


@settings(deadline=None)  # the suite shares CPUs with actor tests
@given(st.dictionaries(keys, json_values | select_values, max_size=6))
def test_arbitrary_dicts_raise_nothing_but_validation_error(raw: dict[str, Any]) -> None:
    try:
        payload = parse_start_job_payload(raw)
    except ValidationError as error:
        assert error.field
        assert len(str(error)) < 1000
    else:
        assert isinstance(payload, StartJobPayload)
        assert [payload.url, payload.magnet, payload.torrent].count(None) == 2


@settings(deadline=None)  # the suite shares CPUs with actor tests
@given(json_values)
def test_arbitrary_values_raise_nothing_but_validation_error(raw: object) -> None:
    try:
        parse_start_job_payload(raw)
    except ValidationError as error:
        assert error.field


@settings(deadline=None)  # the suite shares CPUs with actor tests
@given(st.text(max_size=200))
def test_arbitrary_text_as_any_source_raises_nothing_but_validation_error(text: str) -> None:
    for source in ("url", "magnet", "torrent"):
        try:
            parse_start_job_payload({source: text})
        except ValidationError as error:
            assert error.field == source
