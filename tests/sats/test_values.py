"""The value classes: Identity, ConnectionId (= Address), Timestamp, TimeDuration, ScheduleAt."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spacetime_game.sdk import Address, ConnectionId, Identity, ScheduleAt, TimeDuration, Timestamp
from spacetime_game.sdk.sats import (
    AlgebraicType,
    SharedValues,
    compile_codec,
    from_json,
    get_special,
    to_json,
)
from tests._support import CONNECTION_ID_HEX, IDENTITY_HEX

IDENTITY_BE = bytes.fromhex(IDENTITY_HEX)
CONNECTION_ID_BE = bytes.fromhex(CONNECTION_ID_HEX)
IDS: list[tuple[type[Any], str, int]] = [(Identity, IDENTITY_HEX, 32), (ConnectionId, CONNECTION_ID_HEX, 16)]


# --------------------------------------------------------------------------------------------------
# Identity and ConnectionId
# --------------------------------------------------------------------------------------------------
def test_address_is_connection_id() -> None:
    assert Address is ConnectionId


@pytest.mark.parametrize(("cls", "hex_", "size"), IDS)
def test_from_string(cls: type[Any], hex_: str, size: int) -> None:
    value = cls.from_string(hex_)
    assert type(value) is cls
    assert str(value) == hex_
    assert value.to_hex() == hex_
    assert cls.from_string("0x" + hex_) == value
    assert cls.from_string("0X" + hex_.upper()) == value
    assert cls.from_string(hex_.upper()) == value
    assert cls(hex_) == value


@pytest.mark.parametrize(("cls", "hex_", "size"), IDS)
def test_from_bytes_is_big_endian_and_bsatn_is_little_endian(cls: type[Any], hex_: str, size: int) -> None:
    be = bytes.fromhex(hex_)
    value = cls.from_bytes(be)
    assert value == cls.from_string(hex_)
    assert cls(be) == value
    assert cls(bytearray(be)) == value
    assert value.data == be  # the documented SDK's big-endian .data
    assert bytes(value) == be[::-1]  # the BSATN bytes
    assert value.to_le_bytes() == be[::-1]
    assert cls.from_le_bytes(be[::-1]) == value
    assert value.to_int() == int(hex_, 16)
    assert cls.from_int(int(hex_, 16)) == value
    assert str(value) == hex_  # __str__ is big-endian hex


def test_bsatn_of_identity_and_connection_id() -> None:
    identity = Identity.from_string(IDENTITY_HEX)
    codec = compile_codec(AlgebraicType.special("identity"))
    assert codec.encode(identity) == IDENTITY_BE[::-1]
    assert codec.decode(IDENTITY_BE[::-1]) == identity
    conn = ConnectionId.from_string(CONNECTION_ID_HEX)
    ccodec = compile_codec(AlgebraicType.special("connection_id"))
    assert ccodec.encode(conn).hex() == "efcdab8967452301efcdab8967452301"
    assert ccodec.decode(bytes.fromhex("efcdab8967452301efcdab8967452301")) == conn
    assert type(ccodec.decode(bytes(16))) is ConnectionId


def test_satsjson_of_identity() -> None:
    identity = Identity.from_string(IDENTITY_HEX)
    ty = AlgebraicType.special("identity")
    assert to_json(identity, ty) == {"__identity__": "0x" + IDENTITY_HEX}
    assert from_json({"__identity__": "0x" + IDENTITY_HEX}, ty) == identity
    # the identity routes print the plain 64-hex string; it is accepted too
    assert from_json(IDENTITY_HEX, ty) == identity
    assert from_json([f"0x{IDENTITY_HEX}"], ty) == identity
    small = Identity.from_int(5)
    assert to_json(small, ty) == {"__identity__": "0x5"}
    assert from_json({"__identity__": "0x5"}, ty) == small
    conn = ConnectionId.from_int(7)
    assert to_json(conn, AlgebraicType.special("connection_id")) == {"__connection_id__": 7}


@pytest.mark.parametrize(("cls", "hex_", "size"), IDS)
def test_equality_and_hash(cls: type[Any], hex_: str, size: int) -> None:
    a, b = cls.from_string(hex_), cls.from_bytes(bytes.fromhex(hex_))
    other = cls.from_int(1)
    assert a == b
    assert (a != b) is False
    assert a != other
    assert (a == other) is False
    assert hash(a) == hash(b)
    assert len({a, b, other}) == 2
    assert {a: 1}[b] == 1
    # not equal to its raw bytes (either order), to its hex string or to the other id class
    assert a != bytes(a)
    assert bytes(a) != a
    assert (a == bytes(a)) is False
    assert a != a.data
    assert a != hex_
    assert a != bytearray(bytes(a))
    assert Identity.zero() != ConnectionId.zero()
    assert len({a, bytes(a)}) == 2


def test_identity_and_connection_id_are_not_mixed_up() -> None:
    assert Identity.zero() != bytes(32)
    assert ConnectionId.zero() != bytes(16)
    assert Identity.from_int(1) != ConnectionId.from_int(1)


@pytest.mark.parametrize(("cls", "hex_", "size"), IDS)
def test_repr(cls: type[Any], hex_: str, size: int) -> None:
    value = cls.from_string(hex_)
    assert repr(value) == f"{cls.__name__}('{hex_}')"
    assert eval(repr(value), {cls.__name__: cls}) == value


@pytest.mark.parametrize(("cls", "hex_", "size"), IDS)
def test_zero_and_random(cls: type[Any], hex_: str, size: int) -> None:
    zero = cls.zero()
    assert zero.is_zero()
    assert str(zero) == "0" * 2 * size
    assert not cls.from_string(hex_).is_zero()
    assert zero == cls.from_int(0)


def test_connection_id_random() -> None:
    ids = {ConnectionId.random() for _ in range(50)}
    assert len(ids) == 50
    assert all(type(c) is ConnectionId and not c.is_zero() and len(bytes(c)) == 16 for c in ids)


@pytest.mark.parametrize(("cls", "hex_", "size"), IDS)
@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0x",
        "abcd",
        "zz",
        "0x0x",
        "g",
    ],
)
def test_bad_hex_strings(cls: type[Any], hex_: str, size: int, bad: str) -> None:
    with pytest.raises(ValueError):
        cls.from_string(bad)


@pytest.mark.parametrize(("cls", "hex_", "size"), IDS)
def test_bad_hex_strings_of_the_right_length(cls: type[Any], hex_: str, size: int) -> None:
    for bad in (
        "g" + hex_[1:],
        hex_[:-1] + "z",
        hex_[:-2] + "  ",  # bytes.fromhex would skip the spaces and make a short id
        " " + hex_[:-2] + " ",
        hex_[:-1],
        hex_ + "0",
        "0x" + hex_[:-1],
        "-" + hex_[1:],
    ):
        with pytest.raises(ValueError):
            cls.from_string(bad)
    with pytest.raises(TypeError):
        cls.from_string(5)
    with pytest.raises(TypeError):
        cls.from_string(bytes.fromhex(hex_))


@pytest.mark.parametrize(("cls", "hex_", "size"), IDS)
def test_wrong_byte_lengths(cls: type[Any], hex_: str, size: int) -> None:
    for n in (0, 1, size - 1, size + 1, 2 * size):
        with pytest.raises(ValueError):
            cls.from_bytes(bytes(n))
        with pytest.raises(ValueError):
            cls(bytes(n))
        with pytest.raises(ValueError):
            cls.from_le_bytes(bytes(n))
    with pytest.raises(TypeError):
        cls(5)
    with pytest.raises(TypeError):
        cls([0] * size)
    for n in (-1, 1 << (8 * size)):
        with pytest.raises((ValueError, OverflowError)):
            cls.from_int(n)


@given(st.binary(min_size=32, max_size=32))
def test_identity_round_trips(be: bytes) -> None:
    identity = Identity.from_bytes(be)
    assert Identity.from_string(str(identity)) == identity
    assert Identity.from_le_bytes(bytes(identity)) == identity
    assert identity.data == be
    assert Identity.from_int(identity.to_int()) == identity
    assert copy.copy(identity) == identity
    assert copy.deepcopy([identity]) == [identity]
    assert pickle.loads(pickle.dumps(identity)) == identity
    assert type(pickle.loads(pickle.dumps(identity))) is Identity


# --------------------------------------------------------------------------------------------------
# Timestamp
# --------------------------------------------------------------------------------------------------
JAN_1_2024 = datetime(2024, 1, 1, tzinfo=UTC)
MICROS = 1_704_067_200_000_000


def test_timestamp_datetime_conversions() -> None:
    ts = Timestamp(MICROS)
    assert ts.micros_since_epoch == MICROS
    assert ts.to_datetime() == JAN_1_2024
    assert ts.to_datetime().tzinfo is not None
    assert Timestamp.from_datetime(JAN_1_2024) == ts
    assert Timestamp.from_datetime(datetime(2024, 1, 1)) == ts  # naive is UTC
    assert Timestamp.from_datetime(datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))) == ts
    assert Timestamp.from_datetime(JAN_1_2024 + timedelta(microseconds=1)) == Timestamp(MICROS + 1)
    assert Timestamp(-1).to_datetime() == datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert Timestamp.from_datetime(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == Timestamp(-1)
    assert Timestamp(0).to_datetime() == datetime(1970, 1, 1, tzinfo=UTC)
    assert ts.to_seconds() == 1_704_067_200.0
    assert Timestamp.from_seconds(1.5) == Timestamp(1_500_000)
    assert Timestamp.from_seconds(-0.000001) == Timestamp(-1)


@given(st.datetimes(timezones=st.just(UTC)))
def test_timestamp_datetime_round_trip(dt: datetime) -> None:
    assert Timestamp.from_datetime(dt).to_datetime() == dt


def test_timestamp_now() -> None:
    before = datetime.now(UTC)
    now = Timestamp.now()
    after = datetime.now(UTC)
    assert Timestamp.from_datetime(before) <= now <= Timestamp.from_datetime(after)


def test_timestamp_arithmetic_and_order() -> None:
    a, b = Timestamp(10), Timestamp(25)
    assert b - a == TimeDuration(15)
    assert a - b == TimeDuration(-15)
    assert a + TimeDuration(15) == b
    assert a < b <= b
    assert b > a >= a
    assert not a > b
    assert sorted([b, a]) == [a, b]
    assert max(a, b) is b
    with pytest.raises(TypeError):
        a + 5  # type: ignore[operator]
    with pytest.raises(TypeError):
        a - 5  # type: ignore[operator]
    with pytest.raises(TypeError):
        a < 5  # type: ignore[operator]  # noqa: B015


def test_timestamp_equality_hash_repr_str() -> None:
    ts = Timestamp(MICROS)
    assert ts == Timestamp(MICROS)
    assert ts != Timestamp(MICROS + 1)
    assert ts != MICROS
    assert ts != TimeDuration(MICROS)
    assert hash(ts) == hash(Timestamp(MICROS))
    assert len({ts, Timestamp(MICROS), Timestamp(0)}) == 2
    assert repr(ts) == "Timestamp(1704067200000000)"
    assert str(ts) == "2024-01-01T00:00:00+00:00"
    assert str(Timestamp(2**63 - 1)) == "Timestamp(9223372036854775807)"  # past datetime's range


def test_timestamp_errors_and_immutability() -> None:
    for bad in (1.5, "1", True, None):
        with pytest.raises(TypeError):
            Timestamp(bad)  # type: ignore[arg-type]
    ts = Timestamp(1)
    with pytest.raises(AttributeError):
        ts.micros_since_epoch = 2  # type: ignore[misc]


def test_timestamp_bsatn_and_json() -> None:
    ty = AlgebraicType.special("timestamp")
    codec = compile_codec(ty)
    assert codec.encode(Timestamp(MICROS)).hex() == "00202110d70d0600"
    assert codec.decode(bytes.fromhex("00202110d70d0600")) == Timestamp(MICROS)
    assert codec.encode(Timestamp(-1)) == b"\xff" * 8
    assert to_json(Timestamp(MICROS), ty) == {"__timestamp_micros_since_unix_epoch__": MICROS}
    assert from_json({"__timestamp_micros_since_unix_epoch__": MICROS}, ty) == Timestamp(MICROS)


# --------------------------------------------------------------------------------------------------
# TimeDuration
# --------------------------------------------------------------------------------------------------
def test_time_duration_conversions() -> None:
    d = TimeDuration(1_500_000)
    assert d.micros == 1_500_000
    assert d.to_timedelta() == timedelta(seconds=1.5)
    assert TimeDuration.from_timedelta(timedelta(seconds=1.5)) == d
    assert TimeDuration.from_timedelta(timedelta(microseconds=-1)) == TimeDuration(-1)
    assert TimeDuration.from_timedelta(timedelta(days=-1, seconds=1)) == TimeDuration(-86_399_000_000)
    assert TimeDuration(-1).to_timedelta() == timedelta(microseconds=-1)
    assert d.to_seconds() == 1.5
    assert TimeDuration.from_seconds(-0.25) == TimeDuration(-250_000)


@given(st.timedeltas())
def test_time_duration_timedelta_round_trip(td: timedelta) -> None:
    assert TimeDuration.from_timedelta(td).to_timedelta() == td


def test_time_duration_order_equality_hash_repr() -> None:
    a, b = TimeDuration(1), TimeDuration(2)
    assert a < b
    assert a <= b
    assert a <= TimeDuration(1)
    assert b > a
    assert b >= a
    assert not a > b
    assert not b <= a
    assert sorted([b, a]) == [a, b]
    assert a == TimeDuration(1)
    assert a != b
    assert a != 1
    assert a != Timestamp(1)
    assert hash(a) == hash(TimeDuration(1))
    assert repr(a) == "TimeDuration(1)"
    with pytest.raises(TypeError):
        a < 1  # type: ignore[operator]  # noqa: B015
    with pytest.raises(TypeError):
        a <= 1  # type: ignore[operator]  # noqa: B015


def test_time_duration_errors_and_immutability() -> None:
    for bad in (1.5, "1", False, None):
        with pytest.raises(TypeError):
            TimeDuration(bad)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        TimeDuration(1).micros = 2  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# ScheduleAt
# --------------------------------------------------------------------------------------------------
def test_schedule_at() -> None:
    every = ScheduleAt.interval(timedelta(seconds=1))
    assert every.is_interval
    assert every.value == TimeDuration(1_000_000)
    assert every == ScheduleAt(TimeDuration(1_000_000))
    assert ScheduleAt.interval(TimeDuration(5)).value == TimeDuration(5)
    once = ScheduleAt.time(JAN_1_2024)
    assert not once.is_interval
    assert once.value == Timestamp(MICROS)
    assert once == ScheduleAt(Timestamp(MICROS))
    assert ScheduleAt(datetime(2024, 1, 1)) == once
    # the same number of microseconds, but an interval is not a time
    assert ScheduleAt(TimeDuration(5)) != ScheduleAt(Timestamp(5))
    assert ScheduleAt(TimeDuration(5)) != TimeDuration(5)
    assert hash(ScheduleAt(TimeDuration(5))) == hash(ScheduleAt(TimeDuration(5)))
    assert len({ScheduleAt(TimeDuration(5)), ScheduleAt(TimeDuration(5)), ScheduleAt(Timestamp(5))}) == 2
    assert repr(every) == "ScheduleAt.interval(TimeDuration(1000000))"
    assert repr(once) == "ScheduleAt.time(Timestamp(1704067200000000))"
    for bad in (5, 1.0, "x", None):
        with pytest.raises(TypeError):
            ScheduleAt(bad)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        every.value = TimeDuration(1)  # type: ignore[misc]


def test_schedule_at_bsatn_and_json() -> None:
    ty = AlgebraicType.special("schedule_at")
    codec = compile_codec(ty)
    every, once = ScheduleAt(TimeDuration(1_000_000)), ScheduleAt(Timestamp(MICROS))
    assert codec.encode(every).hex() == "0040420f0000000000"
    assert codec.encode(once).hex() == "0100202110d70d0600"
    assert codec.decode(codec.encode(every)) == every
    assert codec.decode(codec.encode(once)) == once
    assert to_json(every, ty) == {"Interval": {"__time_duration_micros__": 1_000_000}}
    assert to_json(once, ty) == {"Time": {"__timestamp_micros_since_unix_epoch__": MICROS}}
    assert from_json({"Interval": {"__time_duration_micros__": 1_000_000}}, ty) == every
    assert from_json([1, [MICROS]], ty) == once


# ---- decoded identities are shared objects ----------------------------------------------------------
def test_decoded_identities_are_shared_and_equal_to_fresh_ones() -> None:
    ty = AlgebraicType.product(
        who=AlgebraicType.special("identity"), n=AlgebraicType.array(AlgebraicType.special("connection_id"))
    )
    codec = compile_codec(ty)
    a, b = Identity.from_int(11), Identity.from_int(12)
    c = ConnectionId.from_int(3)
    rows = [codec.decode(codec.encode({"who": w, "n": [c, c]})) for w in (a, b, a)]
    assert [r["who"] for r in rows] == [a, b, a]
    assert type(rows[0]["who"]) is Identity and type(rows[0]["n"][0]) is ConnectionId
    assert rows[0]["who"] is rows[2]["who"] and rows[0]["who"] is not rows[1]["who"]
    assert rows[0]["n"][0] is rows[1]["n"][1]
    # the fixed-width bulk decoder shares them too
    fixed = compile_codec(AlgebraicType.product(who=AlgebraicType.special("identity")))
    values = fixed.decode_fixed(b"".join(fixed.encode({"who": w}) for w in (a, b, a, b)))
    assert [v["who"] for v in values] == [a, b, a, b] and values[1]["who"] is values[3]["who"]


def test_shared_values_forget_past_their_limit() -> None:
    made: list[bytes] = []

    def make(raw: bytes) -> Identity:
        made.append(raw)
        return Identity.from_le_bytes(raw)

    shared = SharedValues(make, limit=3)
    keys = [bytes([i]) * 32 for i in range(5)]
    first = [shared(k) for k in keys[:3]]
    assert [shared(k) for k in keys[:3]] == first and len(made) == 3  # all three remembered
    assert shared(keys[3]) == Identity.from_le_bytes(keys[3])  # the fourth clears the memory
    assert len(shared.cache) == 1 and len(made) == 4
    assert shared(keys[0]) == first[0] and shared(keys[0]) is not first[0]  # made again, still equal


def test_the_shared_identities_stay_bounded_and_refresh() -> None:
    shared = get_special("identity").from_wire
    assert isinstance(shared, SharedValues)
    fixed = compile_codec(AlgebraicType.product(who=AlgebraicType.special("identity")))
    many = [Identity.from_int(10_000 + i) for i in range(shared.limit + 500)]
    values = fixed.decode_fixed(b"".join(fixed.encode({"who": w}) for w in many))
    assert [v["who"] for v in values] == many  # every value right, shared or not
    assert len(shared.cache) <= shared.limit
    # the next decode starts from an emptied memory: new values are shared again (once the pause that a
    # call of nearly all new values starts is over: see the next test)
    from spacetime_game.sdk.sats._bsatn import SHARE_PAUSE

    for _ in range(SHARE_PAUSE):
        fixed.decode_fixed(fixed.encode({"who": many[0]}))
    late = Identity.from_int(99)
    twice = fixed.decode_fixed(fixed.encode({"who": late}) * 2)
    assert twice[0]["who"] == late and twice[0]["who"] is twice[1]["who"]
    assert len(shared.cache) < shared.limit


def test_bulk_decoding_pauses_sharing_while_values_are_new_and_takes_it_up_again() -> None:
    """A fixed-width bulk decode whose identities are nearly all new (one per row) stops looking them up
    for a while (the lookups would only cost time); values stay right throughout, and once the pause is
    over, repeated identities are shared again; a big load shares all along."""
    from spacetime_game.sdk.sats import PrimitiveType
    from spacetime_game.sdk.sats._bsatn import SHARE_PAUSE, SHARE_PAUSE_ROWS

    fixed = compile_codec(
        AlgebraicType.product(who=AlgebraicType.special("identity"), n=PrimitiveType("U32"))
    )
    shared = get_special("identity").from_wire
    assert isinstance(shared, SharedValues)

    def decode(ids: list[Identity]) -> list[Any]:
        values = fixed.decode_fixed(b"".join(fixed.encode({"who": w, "n": 7}) for w in ids))
        assert [v["who"] for v in values] == ids and all(type(v["who"]) is Identity for v in values)
        return values

    a = Identity.from_int(424242)
    distinct = [Identity.from_int(500_000 + i) for i in range(100)]
    decode(distinct)  # all new: the next calls skip the lookups
    held = len(shared.cache)
    paused = decode([a] * 50)
    assert paused[0]["who"] is not paused[1]["who"]  # made one by one while paused
    assert len(shared.cache) == held  # and not remembered
    big = decode([a] * SHARE_PAUSE_ROWS)  # a big load shares even during the pause
    assert all(v["who"] is big[0]["who"] for v in big)
    for _ in range(SHARE_PAUSE):
        decode([a] * 50)
    again = decode([a] * 50)
    assert all(v["who"] is again[0]["who"] for v in again)  # shared again
    again2 = decode([a] * 50)
    assert again2[0]["who"] is again[0]["who"]
