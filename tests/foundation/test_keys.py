"""Key prefix normalization and object keys (DESIGN §8): a table of every rule, then properties."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from advanced_notes.domain.keys import (
    DERIVED_NAMES,
    build_object_key,
    clip_id_from_key,
    clips_folder,
    derived_key,
    derived_keys,
    normalize_prefix,
)
from advanced_notes.domain.mime import AUDIO_TYPES, DEFAULT_ALLOWED_MIME_TYPES, extension_for

SAFE_KEY = re.compile(r"^[a-z0-9._-]+(/[a-z0-9._-]+)*$")


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("production", "prod"),
        ("prod", "prod"),
        ("live", "prod"),
        ("PRODUCTION", "prod"),
        (" Production/ ", "prod"),
        ("/Live/", "prod"),
        ("development", "dev"),
        ("dev", "dev"),
        ("local", "dev"),
        ("  LOCAL  ", "dev"),
        ("/Development", "dev"),
        ("staging", "staging"),
        ("stage", "staging"),
        ("Stage/", "staging"),
        ("tenants/Acme Corp", "tenants/acme-corp"),
        ("Feature_Branch-42", "feature_branch-42"),
        ("a//b", "a/b"),
        ("a/./b", "a/b"),
        ("../etc/passwd", "etc/passwd"),
        ("a/../b", "a/b"),
        ("préprod", "pr-prod"),
        ("qa.v1", "qa.v1"),
        ("", "dev"),
        ("   ", "dev"),
        ("/", "dev"),
        ("//..//.", "dev"),
        ("???", "dev"),
        (None, "dev"),
    ],
)
def test_normalize_prefix_table(raw, expected):
    assert normalize_prefix(raw) == expected


def test_object_key_shape():
    clip_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert build_object_key("prod", clip_id, "audio/x-m4a") == f"prod/audio-clips/{clip_id}.m4a"
    assert build_object_key("tenants/acme", clip_id, "AUDIO/MPEG") == f"tenants/acme/audio-clips/{clip_id}.mp3"


def test_derived_keys_sit_in_a_folder_named_after_the_clip():
    clip_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    key = build_object_key("tenants/acme", clip_id, "audio/webm")
    assert derived_key(key, "seekable.webm") == f"tenants/acme/audio-clips/{clip_id}/seekable.webm"
    assert derived_keys(key) == [f"tenants/acme/audio-clips/{clip_id}/{name}" for name in DERIVED_NAMES]
    with pytest.raises(ValueError):
        derived_key(key, "../other.json")  # only the fixed names, never input


def test_clip_id_from_key_knows_originals_and_derived_objects():
    clip_id = uuid.UUID("abcdef78-1234-5678-1234-567812345678")
    folder = clips_folder("prod")
    assert clip_id_from_key(folder, f"{folder}{clip_id}.m4a") == clip_id
    for name in DERIVED_NAMES:
        assert clip_id_from_key(folder, f"{folder}{clip_id}/{name}") == clip_id
    for foreign in (
        f"{folder}{clip_id}/other.json",  # not a derived name
        f"{folder}{clip_id}.m4a/peaks.json",  # not a clip folder
        f"{folder}{clip_id}/x/peaks.json",
        f"{folder}{str(clip_id).upper()}/peaks.json",  # keys are built lower-case
        f"{folder}{clip_id}",
        f"dev/audio-clips/{clip_id}/peaks.json",  # another prefix
    ):
        assert clip_id_from_key(folder, foreign) is None, foreign


def test_every_allowed_type_has_a_design_extension():
    assert {t.key_extension for t in AUDIO_TYPES} <= {"m4a", "mp3", "wav", "webm", "ogg", "opus", "flac", "aac", "3gp"}
    assert extension_for("audio/3gpp") == "3gp" and extension_for("Audio/X-M4A; codecs=mp4a") == "m4a"
    with pytest.raises(KeyError):
        extension_for("text/html")


@given(st.one_of(st.none(), st.text(), st.text(alphabet="/. \t\\-_aA0%"), st.text(alphabet=st.characters())))
def test_any_input_gives_a_safe_prefix(raw):
    prefix = normalize_prefix(raw)
    assert SAFE_KEY.match(prefix), prefix
    assert not prefix.startswith("/") and "//" not in prefix
    assert all(segment not in ("", ".", "..") for segment in prefix.split("/"))
    assert normalize_prefix(prefix) == prefix  # idempotent


@given(st.one_of(st.none(), st.text()), st.uuids(), st.sampled_from(DEFAULT_ALLOWED_MIME_TYPES))
def test_any_prefix_gives_a_safe_key(raw, clip_id, mime_type):
    key = build_object_key(normalize_prefix(raw), clip_id, mime_type)
    assert SAFE_KEY.match(key), key
    assert "/audio-clips/" in key and key.endswith(f"{clip_id}.{extension_for(mime_type)}")
    assert ".." not in key.split("/")
