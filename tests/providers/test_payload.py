"""A StartJobPayload built directly is held to the same bounds as a parsed one."""

from __future__ import annotations

from typing import Any

import pytest

from providers import FileSelection, StartJobPayload, ValidationError

MAGNET = "magnet:?xt=urn:btih:" + "a" * 40


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "payload"),
        ({"url": "https://a/b", "magnet": MAGNET}, "payload"),
        ({"magnet": MAGNET, "connections": 17}, "connections"),
        ({"magnet": MAGNET, "connections": True}, "connections"),
        ({"magnet": MAGNET, "priority": 1001}, "priority"),
        ({"magnet": MAGNET, "only_if_cached": 1}, "only_if_cached"),
        ({"magnet": MAGNET, "download_dir": 5}, "download_dir"),
        ({"torrent": "not bytes"}, "torrent"),
        ({"magnet": MAGNET, "select": {"ids": [1]}}, "select"),
    ],
)
def test_direct_construction_names_the_bad_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        StartJobPayload(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ids": (-1,)}, "select.ids"),
        ({"globs": ("",)}, "select.globs"),
        ({"min_size": -5}, "min_size"),
        ({"largest_only": "yes"}, "largest_only"),
    ],
)
def test_file_selection_rejects_what_the_parser_would(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        FileSelection(**kwargs)
    assert info.value.field == field


def test_a_valid_payload_builds_and_keeps_its_values() -> None:
    payload = StartJobPayload(magnet=MAGNET, connections=4, select=FileSelection(ids=(1, 2)))
    assert payload.kind == "magnet"
    assert payload.info_hash == "a" * 40
    assert payload.select.ids == (1, 2)


def test_the_info_hash_is_kept_in_the_payload_but_is_not_part_of_its_value() -> None:
    import pickle  # noqa: PLC0415

    import attrs  # noqa: PLC0415

    from providers import converter  # noqa: PLC0415
    from providers._validation import parse_start_job_payload  # noqa: PLC0415

    magnet = "magnet:?xt=urn:btih:" + "AB" * 20
    parsed = parse_start_job_payload({"magnet": magnet})
    built = StartJobPayload(magnet=magnet)  # not asked yet
    assert parsed == built and hash(parsed) == hash(built)
    assert "info_hash" not in repr(parsed)
    data = converter.unstructure(parsed)
    assert "_info_hash" not in data and "info_hash" not in data
    for copy in (
        built,
        converter.structure(data, StartJobPayload),
        attrs.evolve(parsed, priority=5),
        pickle.loads(pickle.dumps(parsed)),
    ):
        assert copy.info_hash == "ab" * 20
    assert StartJobPayload(url="https://example.com/a.zip").info_hash is None
