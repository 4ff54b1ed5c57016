"""File identity and deterministic event ids."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shipper.identity import FINGERPRINT_BYTES, FileIdentity, fingerprint


def test_ids_stable_while_fingerprint_grows() -> None:
    content = b"".join(b"line %d\n" % i for i in range(400))
    short = FileIdentity(1, 2, content[:50], "node")
    ids_early = [short.event_id(o) for o in (0, 7, 49)]
    short.extend(50, content[50:2000])
    assert len(short.head) == FINGERPRINT_BYTES
    full = FileIdentity(1, 2, content[:FINGERPRINT_BYTES], "node")
    assert [short.event_id(o) for o in (0, 7, 49)] == ids_early == [full.event_id(o) for o in (0, 7, 49)]
    assert short.event_id(5000) == full.event_id(5000)


def test_ids_differ_by_file_offset_host_and_content() -> None:
    a = FileIdentity(1, 2, b"x" * 2000, "node")
    assert a.event_id(0) != a.event_id(1)
    assert a.event_id(0) != FileIdentity(1, 3, b"x" * 2000, "node").event_id(0)
    assert a.event_id(0) != FileIdentity(1, 2, b"x" * 2000, "other").event_id(0)
    # inode reuse: same device and inode, different first bytes -> different ids
    assert a.event_id(5000) != FileIdentity(1, 2, b"y" * 2000, "node").event_id(5000)


def test_matches_detects_inode_reuse() -> None:
    a = FileIdentity(1, 2, b"hello world", "n")
    n, h = a.fingerprint
    assert a.matches(n, h)
    grown = FileIdentity(1, 2, b"hello world and more", "n")
    assert grown.matches(n, h)  # the same file, grown
    assert not FileIdentity(1, 2, b"other content", "n").matches(n, h)
    assert not FileIdentity(1, 2, b"hello", "n").matches(n, h)  # shorter: not the same file
    assert h == fingerprint(b"hello world")


@given(
    head=st.binary(max_size=FINGERPRINT_BYTES + 10),
    offsets=st.lists(st.integers(0, 1 << 62) | st.integers(0, 2 * FINGERPRINT_BYTES), max_size=8),
)
def test_event_ids_in_bulk_are_the_event_ids(head: bytes, offsets: list[int]) -> None:
    ident = FileIdentity(1, 2, head, "node")
    assert ident.event_ids(offsets) == [ident.event_id(o).encode() for o in offsets]


@given(
    head=st.binary(max_size=FINGERPRINT_BYTES + 10),
    offsets=st.lists(st.integers(0, 1 << 62) | st.integers(0, 2 * FINGERPRINT_BYTES), max_size=8),
    between=st.binary(max_size=40) | st.sampled_from([b"%", b"%d", b"%%s", b'},"f":"100%x"']),
)
def test_offsets_with_ids_are_the_offset_between_and_the_id(head: bytes, offsets: list[int], between: bytes) -> None:
    # `between` is the event's static part, which may hold a '%' (a path, a label): it is not a format
    ident = FileIdentity(1, 2, head, "node")
    expected = [b"%d" % o + between + i for o, i in zip(offsets, ident.event_ids(offsets), strict=True)]
    assert ident.offsets_with_ids(offsets, between) == expected


@given(
    head=st.binary(min_size=FINGERPRINT_BYTES, max_size=FINGERPRINT_BYTES),
    offsets=st.lists(st.integers(FINGERPRINT_BYTES - 1, (1 << 48) - 1), min_size=2, max_size=20),
)
def test_ids_of_one_file_share_a_prefix_and_sort_by_offset(head: bytes, offsets: list[int]) -> None:
    # what makes OpenSearch's `_id` lookup cheap: one prefix per file, then the offset in order
    ident = FileIdentity(1, 2, head, "node")
    ids = ident.event_ids(offsets)
    assert len({i[:20] for i in ids}) == 1
    assert sorted(ids) == [i for _, i in sorted(zip(offsets, ids, strict=True))]
    assert all(len(i) == 32 and i.isalnum() for i in ids)  # the aggregator splices ids of letters and digits
    other = FileIdentity(1, 3, head, "node").event_ids(offsets)
    assert {i[:20] for i in other}.isdisjoint(i[:20] for i in ids)


def test_a_truncated_file_gets_new_ids() -> None:
    ident = FileIdentity(1, 2, b"a" * FINGERPRINT_BYTES, "node")
    before = ident.event_id(5000)
    ident.reset(b"b" * 10)
    ident.extend(10, b"b" * 6000)
    assert ident.event_id(5000) != before
    assert ident.event_id(5000) == FileIdentity(1, 2, b"b" * FINGERPRINT_BYTES, "node").event_id(5000)
