"""Interrupts held across a storage write (:mod:`entropy_atlas.interrupts`): the first acts
once the block ends, a second at once, and the handlers are put back."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from entropy_atlas.interrupts import held_interrupts


def test_a_ctrl_c_inside_the_block_acts_once_the_block_has_ended() -> None:
    ended = []
    with pytest.raises(KeyboardInterrupt), held_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        ended.append("the block went on")
    assert ended == ["the block went on"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_acts_at_once() -> None:
    reached = []
    with pytest.raises(KeyboardInterrupt), held_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        reached.append("after the second")
    assert reached == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_goes_to_the_handler_it_had() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with held_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == []
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_nested_blocks_act_once_at_the_outer_end() -> None:
    order = []
    with pytest.raises(KeyboardInterrupt), held_interrupts():
        with held_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
        order.append("inner ended, outer goes on")
    assert order == ["inner ended, outer goes on"]


def test_off_the_main_thread_the_block_runs_as_it_is() -> None:
    handlers = []

    def body() -> None:
        with held_interrupts():
            handlers.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert handlers == [signal.default_int_handler]
