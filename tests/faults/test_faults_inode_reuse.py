"""Regression: a new file on a reused inode must not share its first event's id with the old file.

kubelet rotation gzips and deletes old files, and the new `0.log` often gets a freed inode. Event ids
come from (device, inode, first bytes, offset); with only the first byte ('{' in every Docker file)
the first line of the new file got the old file's id and OpenSearch dropped it as a duplicate (found
by test_faults_kill.py::test_shipper_sigkill_five_times_while_writing_and_rotating[kubelet]).
"""

from __future__ import annotations

from shipper.identity import FileIdentity

OLD = b'{"log":"run=a seq=1\\n","stream":"stdout","time":"2026-11-26T21:53:01.1Z"}\n'
NEW = b'{"log":"run=a seq=570\\n","stream":"stdout","time":"2026-11-26T21:53:04.6Z"}\n'


def test_first_event_ids_differ_between_files_on_the_same_inode() -> None:
    old = FileIdentity(65024, 10437507, OLD, "node")
    new = FileIdentity(65024, 10437507, NEW, "node")
    assert old.event_id(0) != new.event_id(0)


def test_first_event_id_is_stable_while_the_file_grows() -> None:
    ident = FileIdentity(1, 2, NEW, "node")
    first = ident.event_id(0)
    ident.extend(len(NEW), NEW * 20)
    assert ident.event_id(0) == first
    assert FileIdentity(1, 2, NEW * 21, "node").event_id(0) == first
    assert FileIdentity(1, 2, NEW * 21, "node").event_id(len(NEW)) == ident.event_id(len(NEW))
