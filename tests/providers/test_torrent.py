"""The bencode codec, info-hashes and names of torrents and magnets."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers._torrent import (
    MAX_DEPTH,
    BencodeError,
    bdecode,
    bencode,
    magnet_display_name,
    magnet_info_hash,
    torrent_info_hash,
    torrent_name,
)

INFO: dict[str, Any] = {
    "name": "Some.Show.S01",
    "piece length": 262144,
    "pieces": bytes(range(20)),
    "files": [
        {"length": 1000, "path": ["ep1.mkv"]},
        {"length": 20, "path": ["subs", "ep1.srt"]},
    ],
}
TORRENT = bencode({"announce": "http://tracker.example/announce", "info": INFO})

bencodable = st.recursive(
    st.binary(max_size=20) | st.integers(min_value=-(10**30), max_value=10**30),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.binary(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(deadline=None)  # the suite shares CPUs with actor tests
@given(bencodable)
def test_bdecode_inverts_bencode(value: Any) -> None:
    assert bdecode(bencode(value)) == value


@settings(deadline=None)  # the suite shares CPUs with actor tests
@given(bencodable)
def test_bencode_of_decoded_canonical_bytes_gives_the_same_bytes(value: Any) -> None:
    data = bencode(value)
    assert bencode(bdecode(data)) == data


def test_bencode_sorts_keys_and_encodes_text_as_utf8() -> None:
    assert bencode({"b": 1, b"a": "é"}) == b"d1:a2:\xc3\xa91:bi1ee"


def test_bencode_encodes_tuples_as_lists() -> None:
    assert bencode((1, b"x")) == b"li1e1:xe"


@pytest.mark.parametrize(
    "value",
    [True, 1.5, None, object(), {1: b"x"}, {"a": 1, b"a": 2}, 10**300, "\ud800"],
    ids=["bool", "float", "none", "object", "int-key", "colliding-keys", "huge-int", "surrogate"],
)
def test_bencode_refuses_what_bencode_cannot_express(value: object) -> None:
    with pytest.raises(BencodeError):
        bencode(value)


def test_bencode_refuses_a_list_that_contains_itself() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(BencodeError, match="nesting"):
        bencode(loop)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"i01e",
        b"i-0e",
        b"ie",
        b"i-e",
        b"i1",
        b"i1.5e",
        b"01:a",
        b"2:a",
        b"-1:a",
        b"1a",
        b"l",
        b"le e",
        b"d1:ai1e",
        b"di1ei2ee",
        b"dli1eei2ee",
        b"d1:ae",
        b"d1:ai1e1:ai2ee",
        b"i1ei2e",
        b"e",
        b"x",
        b"i" + b"1" * 300 + b"e",
        b"99999999999999999999999:a",
    ],
)
def test_bdecode_rejects_malformed_input(data: bytes) -> None:
    with pytest.raises(BencodeError):
        bdecode(data)


def test_bdecode_rejects_nesting_past_the_limit_without_recursing() -> None:
    deep = b"l" * (MAX_DEPTH + 1) + b"e" * (MAX_DEPTH + 1)
    with pytest.raises(BencodeError, match="nesting"):
        bdecode(deep)
    ok = b"l" * MAX_DEPTH + b"e" * MAX_DEPTH
    assert isinstance(bdecode(ok), list)


def test_torrent_info_hash_applies_the_same_nesting_limit() -> None:
    inner = MAX_DEPTH - 1  # "d" + "4:info" + "d" + ... reaches the limit exactly
    ok = b"d4:infod1:x" + b"l" * (inner - 1) + b"e" * (inner - 1) + b"ee"
    assert isinstance(bdecode(ok), dict)
    assert torrent_info_hash(ok) == hashlib.sha1(ok[7:-1]).hexdigest()
    too_deep = b"d4:infod1:x" + b"l" * inner + b"e" * inner + b"ee"
    with pytest.raises(BencodeError, match="nesting"):
        bdecode(too_deep)
    with pytest.raises(BencodeError, match="nesting"):
        torrent_info_hash(too_deep)


def test_bdecode_handles_a_long_flat_list() -> None:
    data = b"l" + b"i7e" * 100_000 + b"e"
    assert bdecode(data) == [7] * 100_000


def test_bdecode_accepts_unsorted_keys_and_keeps_keys_as_bytes() -> None:
    assert bdecode(b"d1:bi2e1:ai1ee") == {b"a": 1, b"b": 2}


def test_bdecode_rejects_text_input() -> None:
    with pytest.raises(TypeError):
        bdecode("i1e")  # type: ignore[arg-type]


def test_bdecode_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="offset"):
        bdecode(b"i1x")


def test_torrent_info_hash_is_sha1_of_the_bencoded_info_dict() -> None:
    assert torrent_info_hash(TORRENT) == hashlib.sha1(bencode(INFO)).hexdigest()


def test_torrent_info_hash_slices_the_original_bytes_instead_of_re_encoding() -> None:
    # Keys out of order: re-encoding would sort them and change the hash.
    info = b"d4:name1:x6:lengthi3ee"
    data = b"d4:info" + info + b"8:announce3:urle"
    assert torrent_info_hash(data) == hashlib.sha1(info).hexdigest()
    assert torrent_info_hash(data) != hashlib.sha1(bencode(bdecode(info))).hexdigest()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"i1e",
        b"le",
        b"de",
        b"d4:infoi1ee",
        b"d4:infolee",
        b"d4:info",
        b"d4:infode",
        b"d4:infodee4:infodee",
        b"di1e4:infodee",
        b"d4:infodee1:a",
        TORRENT + b"x",
        TORRENT[:-1],
    ],
)
def test_torrent_info_hash_and_name_reject_what_is_not_a_torrent(data: bytes) -> None:
    with pytest.raises(BencodeError):
        torrent_info_hash(data)
    with pytest.raises(BencodeError):
        torrent_name(data)


def test_an_empty_info_dict_is_still_a_torrent() -> None:
    assert torrent_info_hash(b"d4:infodee") == hashlib.sha1(b"de").hexdigest()


def test_torrent_name_prefers_the_utf8_name() -> None:
    info = {**INFO, "name": b"\xe9t\xe9", "name.utf-8": "été"}
    assert torrent_name(bencode({"info": info})) == "été"
    assert torrent_name(TORRENT) == "Some.Show.S01"


def test_torrent_name_is_none_without_a_name_and_replaces_bad_utf8() -> None:
    assert torrent_name(bencode({"info": {"length": 1}})) is None
    assert torrent_name(bencode({"info": {"name": b"a\xffb"}})) == "a\ufffdb"


HEX = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"


def test_magnet_info_hash_lowercases_hex() -> None:
    assert magnet_info_hash(f"magnet:?xt=urn:btih:{HEX.upper()}&dn=x") == HEX


def test_base32_magnet_gives_the_same_hash_as_hex_magnet() -> None:
    b32 = base64.b32encode(bytes.fromhex(HEX)).decode()
    assert len(b32) == 32
    assert magnet_info_hash(f"magnet:?xt=urn:btih:{b32}") == magnet_info_hash(
        f"magnet:?xt=urn:btih:{HEX}"
    )
    assert magnet_info_hash(f"magnet:?xt=urn:btih:{b32.lower()}") == HEX


def test_magnet_info_hash_finds_xt_after_other_parameters() -> None:
    magnet = f"magnet:?dn=name&xt=urn:btmh:1220{'0' * 64}&xt=urn:btih:{HEX}"
    assert magnet_info_hash(magnet) == HEX


@pytest.mark.parametrize(
    "magnet",
    [
        "magnet:?dn=x",
        f"magnet:?xt=urn:btih:{HEX[:-1]}",
        f"magnet:?xt=urn:btih:{HEX}0",
        "magnet:?xt=urn:btih:" + "1" * 32,  # 1 is not a base32 digit
        f"http://example.com/?xt=urn:btih:{HEX}",
        f"xt=urn:btih:{HEX}",
    ],
)
def test_magnet_info_hash_rejects_magnets_without_a_valid_btih(magnet: str) -> None:
    with pytest.raises(ValueError, match=r"magnet|xt|btih"):
        magnet_info_hash(magnet)


def test_magnet_display_name_decodes_the_dn_parameter() -> None:
    assert magnet_display_name(f"magnet:?xt=urn:btih:{HEX}&dn=My+Show%20S01") == "My Show S01"


def test_magnet_display_name_is_none_when_absent_or_empty() -> None:
    assert magnet_display_name(f"magnet:?xt=urn:btih:{HEX}") is None
    assert magnet_display_name(f"magnet:?xt=urn:btih:{HEX}&dn=") is None


def _params_through_urlsplit(magnet: str) -> tuple[tuple[str, str], ...]:
    from urllib.parse import parse_qsl, urlsplit  # noqa: PLC0415

    parts = urlsplit(magnet)
    assert parts.scheme.lower() == "magnet" and not parts.netloc and not parts.path
    return tuple(parse_qsl(parts.query, keep_blank_values=True))


@pytest.mark.parametrize(
    "magnet",
    [
        "magnet:?xt=urn:btih:" + "a" * 40,
        "MAGNET:?dn=Big+Buck%20Bunny&xt=urn:btih:" + "B" * 40 + "&tr=udp%3A%2F%2Ft%3A1",
        "magnet:?xt=urn:btih:" + "c" * 40 + "&dn=caf\u00e9&empty=&flag",
        "magnet:?xt=urn:btih:" + "d" * 40 + "#fragment",
        "magnet:?xt=urn:btih:" + "e" * 40 + "&dn=a\tb\nc",
        "magnet:?dn=%ZZ&xt=urn:btih:" + "f" * 40 + "?again=1",
    ],
)
def test_magnet_parameters_are_what_urlsplit_and_parse_qsl_give(magnet: str) -> None:
    from providers._torrent import magnet_params  # noqa: PLC0415

    assert magnet_params(magnet) == _params_through_urlsplit(magnet)


@given(st.text(max_size=60))
@settings(max_examples=300)
def test_magnet_parameters_of_any_query_match_urlsplit(query: str) -> None:
    from providers._torrent import magnet_params  # noqa: PLC0415

    magnet = "magnet:?" + query
    assert magnet_params(magnet) == _params_through_urlsplit(magnet)


@given(st.text(alphabet="ab=&;:%2F+# é\t", max_size=40))
@settings(max_examples=500)
def test_magnet_parameters_of_queries_made_of_separators_match_urlsplit(query: str) -> None:
    from providers._torrent import magnet_params  # noqa: PLC0415

    magnet = "magnet:?" + query
    assert magnet_params(magnet) == _params_through_urlsplit(magnet)
