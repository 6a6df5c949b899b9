"""The Concert link procedure as sans-I/O state machines: ENQ/ACK, NAK, retries, EOT."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.protocols.errors import ProtocolError
from drivers.protocols.link import (
    ACK,
    ENQ,
    EOT,
    NAK,
    BadFrame,
    Control,
    Event,
    Failure,
    Frame,
    LinkTimeouts,
    Receiver,
    Sender,
    Step,
    encode_frame,
)

FRAME = encode_frame(b"HELLO")
T = LinkTimeouts(ack=1.0, frame=2.0, eot=0.5, tries=3)
_ENQ, _ACK, _NAK, _EOT = bytes([ENQ]), bytes([ACK]), bytes([NAK]), bytes([EOT])


def test_sender_happy_path() -> None:
    s = Sender(FRAME, T)
    assert s.start() == Step(_ENQ, 1.0)
    assert s.on_event(Control(ACK)) == Step(FRAME, 1.0)
    assert s.on_event(Control(ACK)) == Step(_EOT, None, finished=True)
    assert s.failure is None


def test_sender_retries_enq_then_gives_up_with_eot() -> None:
    s = Sender(FRAME, T)
    s.start()
    assert s.on_timeout() == Step(_ENQ, 1.0)
    assert s.on_timeout() == Step(_ENQ, 1.0)
    assert s.on_timeout() == Step(_EOT, None, finished=True)
    assert s.failure is Failure.NO_ACK
    assert s.enq_tries == 3


def test_sender_nak_on_enq_means_busy() -> None:
    s = Sender(FRAME, T)
    s.start()
    for _ in range(2):
        assert s.on_event(Control(NAK)).send == _ENQ
    assert s.on_event(Control(NAK)).finished
    assert s.failure is Failure.BUSY


def test_sender_retransmits_frame_on_nak_and_timeout() -> None:
    s = Sender(FRAME, T)
    s.start()
    s.on_event(Control(ACK))
    assert s.on_event(Control(NAK)) == Step(FRAME, 1.0)
    assert s.on_timeout() == Step(FRAME, 1.0)
    assert s.on_event(Control(NAK)).finished
    assert s.failure is Failure.REJECTED
    assert s.frame_tries == 3


def test_sender_ignores_noise_while_waiting() -> None:
    s = Sender(FRAME, T)
    s.start()
    assert s.on_event(Frame(b"X")) == Step(b"", 1.0)
    assert s.on_event(Control(EOT)) == Step(b"", 1.0)


def test_receiver_happy_path_and_duplicate_frame() -> None:
    r = Receiver(first_wait=30.0, timeouts=T)
    assert r.start() == Step(b"", 30.0)
    assert r.on_event(Control(ENQ)) == Step(_ACK, 2.0)
    assert r.on_event(Frame(b"HELLO")) == Step(_ACK, 0.5)
    assert r.on_event(Frame(b"HELLO")) == Step(_ACK, 0.5)  # our ACK was lost
    assert r.on_event(Control(EOT)).finished
    assert r.body == b"HELLO"
    assert r.duplicates == 1
    assert r.failure is None


def test_receiver_naks_bad_frames_then_fails() -> None:
    r = Receiver(first_wait=30.0, timeouts=T, enquired=True)
    assert r.start() == Step(_ACK, 2.0)
    err = ProtocolError("LRC mismatch", field="lrc", offset=7)
    assert r.on_event(BadFrame(err)) == Step(_NAK, 2.0)
    assert r.on_timeout() == Step(_NAK, 2.0)
    last = r.on_event(BadFrame(err))
    assert last.send == _NAK
    assert last.finished
    assert r.failure is Failure.BAD_FRAME
    assert r.error is err
    assert r.body is None


def test_receiver_validation_failure_counts_as_bad_frame() -> None:
    def validate(body: bytes) -> None:
        raise ProtocolError("bad length", field="length", offset=len(body))

    r = Receiver(first_wait=1.0, timeouts=T, enquired=True, validate=validate)
    r.start()
    assert r.on_event(Frame(b"X")).send == _NAK
    assert r.error is not None
    assert r.error.field == "length"


def test_receiver_missing_eot_is_tolerated_and_eot_early_aborts() -> None:
    r = Receiver(first_wait=1.0, timeouts=T, enquired=True)
    r.start()
    r.on_event(Frame(b"A"))
    assert r.on_timeout().finished
    assert r.eot_missing
    assert r.body == b"A"
    r2 = Receiver(first_wait=1.0, timeouts=T, enquired=True)
    r2.start()
    assert r2.on_event(Control(EOT)).finished
    assert r2.failure is Failure.ABORTED


def test_receiver_no_enq_in_time() -> None:
    r = Receiver(first_wait=1.0, timeouts=T)
    r.start()
    assert r.on_timeout().finished
    assert r.failure is Failure.NO_FRAME


_events = st.one_of(
    st.sampled_from([ACK, NAK, ENQ, EOT]).map(Control),
    st.binary(max_size=8).map(Frame),
    st.just(BadFrame(ProtocolError("x", field="lrc"))),
    st.none(),  # a timeout
)


def _drive(session: Sender | Receiver, script: list[Event | None]) -> int:
    step = session.start()
    steps = 0
    for item in script:
        if step.finished:
            break
        step = session.on_timeout() if item is None else session.on_event(item)
        steps += 1
    return steps


@settings(max_examples=2000, deadline=None)
@given(st.lists(_events, max_size=40))
def test_fuzz_sessions_never_raise_and_timeouts_bound_them(script: list[Event | None]) -> None:
    sender = Sender(FRAME, T)
    _drive(sender, script)
    receiver = Receiver(first_wait=1.0, timeouts=T, validate=lambda b: None)
    _drive(receiver, script)
    if receiver.body is not None:
        assert receiver.failure is None
    # Whatever happened so far, timeouts alone end every session within 2 x tries steps.
    for session in (Sender(FRAME, T), Receiver(first_wait=1.0, timeouts=T)):
        _drive(session, [*script[:5]])
        for _ in range(2 * T.tries + 2):
            step = session.on_timeout()
            if step.finished:
                break
        assert step.finished
        # A finished exchange stays finished and keeps its result.
        failure = session.failure
        assert session.on_timeout() == Step(b"", None, finished=True)
        assert session.on_event(Control(ACK)) == Step(b"", None, finished=True)
        assert session.failure is failure
