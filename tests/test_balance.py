"""The board the workers share their connection counts on (portal/server/balance.py);
tests/e2e/test_balance_e2e.py runs it on a real gunicorn."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from portal.server import balance


def test_a_worker_compares_itself_with_live_others_only() -> None:
    board = balance._Board()
    board.seated = 4
    board.publish(0, 9)  # this worker
    board.publish(1, 5)
    board.publish(2, 3)
    assert board.least_other(0) == 3
    board.leave(2)  # stopping or exited
    assert board.least_other(0) == 5
    board.beats[1] = time.monotonic() - balance.STALE_AFTER - 1  # silent: hung or stopped
    assert board.least_other(0) is None


def test_a_new_worker_takes_a_slot_no_live_worker_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(balance, "BOARD", balance._Board())
    first, second, third = (SimpleNamespace() for _ in range(3))
    balance.seat(first, [])
    balance.seat(second, [first])
    assert (first.slot, second.slot) == (0, 1)
    balance.BOARD.publish(0, 7)
    balance.unseat(first)  # exited: its count no longer counts, its slot is free
    assert balance.BOARD.least_other(1) is None
    balance.seat(third, [second])
    assert third.slot == 0 and balance.BOARD.seated == 2


def test_a_worker_with_a_thread_to_spare_takes_every_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Clients that open a connection per request must keep every worker busy:
    comparing counts below one connection a thread halved their rate (measured:
    about 300 pings/s against 650 on plain gthread)."""
    monkeypatch.setattr(balance, "BOARD", balance._Board())
    balance.BOARD.seated = 2
    balance.BOARD.publish(1, 0)  # the other worker holds nothing
    worker = SimpleNamespace(slot=0, nr_conns=7, cfg=SimpleNamespace(threads=8), _looked=0.0)
    assert balance.BalancedThreadWorker._within_share(worker)
    worker.nr_conns = 8  # one a thread: now it leaves the next to the other
    assert not balance.BalancedThreadWorker._within_share(worker)


def test_a_worker_with_a_socket_of_its_own_is_not_held_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With reuse_port the kernel picks a worker's own socket: a worker holding
    back would leave those connections unanswered (measured: over 6 s)."""
    monkeypatch.setattr(balance, "BOARD", balance._Board())
    worker = SimpleNamespace(cfg=SimpleNamespace(reuse_port=True))
    balance.seat(worker, [])
    assert worker.slot == balance.ABSENT


def test_a_stopping_worker_leaves_the_board_even_with_no_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """gunicorn's stop skips the loop that would say so when nothing is open; until
    it was reaped, the others held back against its count of zero."""
    monkeypatch.setattr(balance, "BOARD", balance._Board())
    balance.BOARD.seated = 1
    balance.BOARD.publish(0, 0)
    worker = balance.BalancedThreadWorker.__new__(balance.BalancedThreadWorker)
    worker.alive, worker.slot, worker._accepting, worker.sockets = False, 0, False, []
    worker.set_accept_enabled(False)
    assert balance.BOARD.least_other(1) is None
