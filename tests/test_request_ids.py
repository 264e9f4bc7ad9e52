"""Request ids (gateway.answers.new_request_id): 16 hex characters from the kernel's CSPRNG, cut
from batches; never repeated, across batches and across forked workers."""

from __future__ import annotations

import os
import re

import pytest

from gateway.answers import _RequestIds, new_request_id

ID = re.compile(r"^[0-9a-f]{16}$")


def test_ids_are_16_hex_and_distinct_across_several_batches():
    ids = [new_request_id() for _ in range(_RequestIds.BATCH * 3 + 5)]
    assert all(ID.match(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_batch_is_used_whole_then_renewed():
    source = _RequestIds()
    first = [source.next() for _ in range(_RequestIds.BATCH)]
    assert "".join(first) == source.batch  # every byte of the batch, once, in order
    following = source.next()
    assert source.offset == _RequestIds.ID_HEX and following not in first


@pytest.mark.slow  # forks a process
def test_a_forked_worker_does_not_repeat_the_parent_ids():
    new_request_id()  # a batch in progress when the worker is forked
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then exit without running pytest's teardown
        try:
            os.write(write, "".join(new_request_id() for _ in range(8)).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 1024).decode()
    os.close(read)
    parent = "".join(new_request_id() for _ in range(8))
    assert len(child) == 8 * 16
    assert child != parent
