"""The vendored EMV vectors (tests/data/conformance) are whole, and the same as ../shared's."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.conftest import CONFORMANCE, SHARED_CONFORMANCE


def _digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != "SHA256SUMS"
    }


def _manifest() -> dict[str, str]:
    lines = (CONFORMANCE / "SHA256SUMS").read_text().splitlines()
    return {name.removeprefix("./"): digest for digest, name in (ln.split() for ln in lines)}


def test_vendored_vectors_match_their_manifest_and_name_their_sources() -> None:
    files = _digests(CONFORMANCE)
    assert files == _manifest()
    assert len([name for name in files if name.endswith(".json")]) >= 11
    sources = (CONFORMANCE / "SOURCES.md").read_text()
    for name in files:
        if name.endswith(".json") and "contactless_traces" not in name:
            assert name.rsplit("/", 1)[-1] in sources, f"{name} has no source line"


def test_vendored_vectors_equal_the_shared_copy_where_present() -> None:
    # CI always lays ../shared beside the checkout; a fresh clone without it still has the
    # manifest check above, so nothing is skipped.
    if SHARED_CONFORMANCE.is_dir():
        assert _digests(CONFORMANCE) == _digests(SHARED_CONFORMANCE)
    else:
        assert _digests(CONFORMANCE) == _manifest()
