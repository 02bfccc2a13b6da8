"""W3C traceparent: format/parse round trip, malformed input ignored and counted, and traces
continued across a process boundary."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from system0.core import tracing
from system0.core.tracing import extract, format_traceparent, inject, span

HEX = "0123456789abcdef"
GOOD = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    tracing.set_sampling(1.0)
    tracing.drain_spans()
    yield
    tracing.set_sampling(1.0)
    tracing.drain_spans()


def reference_parse(header: str) -> tuple[int, int, int] | None:
    """The spec's receiver rules, written independently of the Rust parser."""
    s = header.strip(" \t")
    m = re.fullmatch(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(.*)", s, re.S)
    if m is None:
        return None
    version, trace, parent, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest) or (rest and not rest.startswith("-")):
        return None
    if int(trace, 16) == 0 or int(parent, 16) == 0:
        return None
    return int(trace, 16), int(parent, 16), int(flags, 16)


ids128 = st.integers(1, 2**128 - 1)
ids64 = st.integers(1, 2**64 - 1)


@given(ids128, ids64, st.booleans())
def test_format_then_extract_round_trips(trace_id: int, span_id: int, sampled: bool) -> None:
    header = format_traceparent(trace_id, span_id, sampled)
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]", header)
    ctx = extract(header)
    assert ctx is not None
    assert (ctx.trace_id, ctx.span_id, ctx.sampled, ctx.remote) == (
        trace_id,
        span_id,
        sampled,
        True,
    )
    assert ctx.traceparent() == header


def _mutate(draw: st.DrawFn) -> str:
    s = list(GOOD)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(s) - 1))
        s[i] = draw(st.sampled_from(HEX + "ABCDEFxg-_ 0"))
    tail = draw(st.sampled_from(["", "", "-", "-x", "x", "0"]))
    return "".join(s) + tail


headers = st.one_of(st.composite(_mutate)(), st.text(max_size=70))


@given(headers)
def test_parser_agrees_with_the_spec_and_counts_what_it_ignores(header: str) -> None:
    before = tracing.malformed_traceparent_count()
    ctx = extract(header)
    want = reference_parse(header)
    if want is None:
        assert ctx is None
        blank = header.strip(" \t") == ""
        assert tracing.malformed_traceparent_count() == before + (0 if blank else 1)
    else:
        assert ctx is not None
        assert (ctx.trace_id, ctx.span_id, int(ctx.sampled)) == (want[0], want[1], want[2] & 1)
        assert tracing.malformed_traceparent_count() == before


def test_known_malformed_headers_are_ignored_and_counted() -> None:
    bad = [
        GOOD.upper(),
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
        "ff" + GOOD[2:],
        GOOD + "-extra",
        GOOD[:-1],
    ]
    before = tracing.span_stats()["malformed_traceparent"]
    assert [extract(h) for h in bad] == [None] * len(bad)
    assert tracing.span_stats()["malformed_traceparent"] == before + len(bad)
    assert extract(None) is None and extract("") is None  # absent, not malformed
    assert tracing.malformed_traceparent_count() == before + len(bad)


def test_future_versions_are_read_by_their_first_fields() -> None:
    ctx = extract("cc" + GOOD[2:] + "-more-fields")
    assert ctx is not None and ctx.span_id == 0x00F067AA0BA902B7


def test_a_span_continues_a_remote_trace() -> None:
    with span("server", parent=GOOD) as s:
        assert s.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
        assert s.parent_id == 0x00F067AA0BA902B7
        header = inject()
    assert header == f"00-{s.trace_id_hex}-{s.span_id_hex}-01"
    (f,) = tracing.drain_spans()
    assert f.parent_remote and f.parent_id == 0x00F067AA0BA902B7


def test_use_context_makes_a_remote_parent_current() -> None:
    with tracing.use_context(GOOD) as ctx:
        assert ctx is not None and ctx.remote
        assert inject() == GOOD
        with span("handler") as h:
            assert h.parent_id == ctx.span_id
    assert tracing.current_context() is None
    with tracing.use_context("garbage") as nothing:
        assert nothing is None


def test_a_malformed_parent_starts_a_new_trace_and_is_counted() -> None:
    before = tracing.malformed_traceparent_count()
    with span("server", parent="00-zz") as s:
        assert s.parent_id is None
    assert tracing.malformed_traceparent_count() == before + 1


def test_unsampled_remote_parent_propagates_but_is_not_recorded() -> None:
    header = GOOD[:-2] + "00"
    with span("server", parent=header) as s, span("child") as c:
        assert not s.sampled and not c.sampled
        assert c.parent_id == s.span_id
        assert inject() == f"00-{c.trace_id_hex}-{c.span_id_hex}-00"
    assert tracing.drain_spans() == []


def test_format_rejects_zero_ids() -> None:
    with pytest.raises(ValueError, match="non-zero"):
        format_traceparent(0, 1, True)
    with pytest.raises(ValueError, match="non-zero"):
        tracing.SpanContext(1, 0)
