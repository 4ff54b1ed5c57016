"""Bad input through the real shipper and aggregator: every corpus line reaches OpenSearch exactly
once, with its flag, and its good neighbours intact (tests/faults/corpus.py lists the cases)."""

from __future__ import annotations

import os

import pytest

from tests.faults.corpus import Corpus
from tests.faults.rig import Rig, wait_for

pytestmark = pytest.mark.slow

MAX_EVENT = 1024 * 1024


def test_bad_input_corpus_is_shipped_flagged_with_neighbours_intact(rig: Rig) -> None:
    corpus_dir = rig.root / "corpus"
    rig.start_aggregator()
    rig.start_shipper(
        inputs=[
            {"type": "containers", "paths": [str(corpus_dir / "corpus-*.log")]},
            {"type": "app", "paths": [str(corpus_dir / "log-*.log")]},  # no multi-line: one event per line
        ],
        max_event_bytes=MAX_EVENT,
    )
    corpus = Corpus.write(corpus_dir, rig.prefix.strip("-"), MAX_EVENT)
    finished = [e for e in corpus.expects if e.case != "partial_unfinished"]
    wait_for(lambda: rig.count() >= len(finished), 120, f"{len(finished)} finished corpus lines")

    # the partial lines are never finished: rotate their files away, as kubelet does, to flush them
    for f in corpus.files:
        if f.unfinished_tail:
            os.rename(f.path, f"{f.path}.1")
    wait_for(lambda: rig.count() >= len(corpus.expects), 120, "the unfinished partial lines")

    docs = rig.documents()
    problems = corpus.check(docs)
    assert problems == [], "\n".join(problems)
    assert len(docs) == len(corpus.expects)
    # the shipper and aggregator survived all of it
    assert rig.shipper is not None and rig.aggregator is not None
    rig.shipper.check_alive()
    rig.aggregator.check_alive()
    assert not os.path.exists(rig.data / "dead-letter.ndjson") or os.path.getsize(rig.data / "dead-letter.ndjson") == 0
