"""Fuzzed contactless card responses end in a typed error or a defined outcome (issue 4).

Each example takes one of the recorded transcripts and corrupts one recorded response (random
bytes, a flipped byte, a truncation, another status word, or an extension), then replays it
through the Entry Point and both kernels. Allowed endings: a :class:`ContactlessResult` with
an :class:`Outcome`, or an :class:`~terminal.errors.EmvError` (a ``ReplayError`` when the
corruption makes the kernel send a command the recording lacks). Anything else (IndexError,
KeyError, ValueError, a hang) fails.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.contactless import ContactlessResult, Outcome, run_contactless_transaction
from terminal.contactless.replay import ReplayChannel, ReplaySetup, replay_setup
from terminal.errors import EmvError
from tests.terminal.contactless.helpers import TRACES, trace

_SETUPS: dict[str, ReplaySetup] = {}


def _setup(name: str) -> ReplaySetup:
    if name not in _SETUPS:
        _SETUPS[name] = replay_setup(trace(name))
    return _SETUPS[name]


@st.composite
def corrupted(draw: Any) -> tuple[str, list[tuple[bytes, bytes]]]:
    name = draw(st.sampled_from(TRACES))
    apdus = list(_setup(name).apdus)
    index = draw(st.integers(0, len(apdus) - 1))
    cmd, resp = apdus[index]
    kind = draw(st.sampled_from(["random", "flip", "truncate", "sw", "extend"]))
    if kind == "random":
        new = draw(st.binary(min_size=0, max_size=300))
    elif kind == "flip":
        pos = draw(st.integers(0, len(resp) - 1))
        new = resp[:pos] + bytes((resp[pos] ^ draw(st.integers(1, 255)),)) + resp[pos + 1:]
    elif kind == "truncate":
        new = resp[: draw(st.integers(0, len(resp) - 1))]
    elif kind == "sw":
        new = resp[:-2] + draw(st.binary(min_size=2, max_size=2))
    else:
        new = resp[:-2] + draw(st.binary(min_size=1, max_size=40)) + resp[-2:]
    apdus[index] = (cmd, new)
    return name, apdus


@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(corrupted())
def test_fuzzed_card_responses_end_in_typed_error_or_outcome(
    case: tuple[str, list[tuple[bytes, bytes]]],
) -> None:
    name, apdus = case
    setup = _setup(name)
    loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(run_contactless_transaction(
            ReplayChannel(apdus), config=setup.config, request=setup.request, env=setup.env,
            kernel2=setup.kernel2))
    except EmvError:
        return
    finally:
        loop.close()
    assert isinstance(result, ContactlessResult)
    assert isinstance(result.outcome, Outcome)
    result.to_json()
