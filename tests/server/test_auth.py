"""Tokens and identities of the dev server: the identity derivation against the official vectors, ES256
tokens that round-trip, survive a restart, and refuse everything not signed by this instance."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spacetime_game.sdk import Identity, SpacetimeError
from spacetime_game.server._auth import AuthError, Claims, TokenAuthority, identity_from_claims
from tests._support import vectors

POSIX = os.name != "nt"
T0 = 1_700_000_000.25  # a fixed "now" for the controlled clock


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(unb64(header)), json.loads(unb64(payload)), signature


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def private_key(data_dir: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key((data_dir / "auth" / "id_ecdsa").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def sign_raw(payload: bytes, key: ec.EllipticCurvePrivateKey) -> str:
    """An ES256 JWS over arbitrary payload bytes (which need not be a JSON object)."""
    return jwt.PyJWS().encode(payload, key, algorithm="ES256")


def good_payload(sub: str = "player-1", iss: str = "localhost") -> dict[str, Any]:
    return {
        "hex_identity": str(identity_from_claims(iss, sub)),
        "sub": sub,
        "iss": iss,
        "aud": ["spacetimedb"],
        "iat": int(time.time()),
        "exp": None,
    }


@pytest.fixture
def authority(tmp_path: Path) -> TokenAuthority:
    return TokenAuthority(tmp_path)


# ---- identity_from_claims ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", vectors()["identity_from_claims"]["cases"], ids=lambda c: f"{c['iss']}|{c['sub']}"
)
def test_identity_from_claims_vectors(case: dict[str, str]) -> None:
    identity = identity_from_claims(case["iss"], case["sub"])
    assert isinstance(identity, Identity)
    assert str(identity) == case["identity_hex"]
    assert identity == Identity.from_string(case["identity_hex"])
    # BSATN order is little-endian: the displayed bytes reversed
    assert bytes(identity) == bytes.fromhex(case["identity_hex"])[::-1]


def test_identity_from_claims_limits_count_utf8_bytes() -> None:
    at_limit = [identity_from_claims("a" * 128, "s"), identity_from_claims("i", "é" * 64)]
    assert len(set(at_limit)) == 2
    assert identity_from_claims("i", "é" * 64) != identity_from_claims("i", "é" * 63)
    with pytest.raises(AuthError, match="128 bytes"):
        identity_from_claims("i", "é" * 65)  # 65 characters, 130 bytes


@pytest.mark.parametrize(
    ("iss", "sub"),
    [("", "s"), ("i", ""), ("a" * 129, "s"), ("i", "b" * 129), (None, "s"), ("i", 7), ("i", "\ud800")],
)
def test_identity_from_claims_refuses_bad_claims(iss: Any, sub: Any) -> None:
    with pytest.raises(AuthError):
        identity_from_claims(iss, sub)


# ---- minting and verifying ----------------------------------------------------------------------------


def test_mint_verify_round_trip() -> None:
    clock = FakeClock()
    auth = TokenAuthority(None, clock=clock)
    claims = auth.mint()
    assert claims.issuer == auth.issuer == "localhost"
    assert uuid.UUID(claims.subject).version == 4
    assert claims.audience == ("spacetimedb",)
    assert claims.issued_at == int(T0)
    assert claims.expires_at is None
    assert claims.identity == identity_from_claims(claims.issuer, claims.subject)
    assert str(claims.identity).startswith("c200")

    header, payload, _ = segments(claims.token)
    assert header["alg"] == "ES256"
    assert set(payload) == {"hex_identity", "sub", "iss", "aud", "iat", "exp"}
    assert payload["hex_identity"] == str(claims.identity)
    assert len(payload["hex_identity"]) == 64 and payload["hex_identity"] == payload["hex_identity"].lower()
    assert payload["exp"] is None and payload["aud"] == ["spacetimedb"]

    assert auth.verify(claims.token) == claims
    # a token never expires, and the token is a credential: not in repr
    clock.now += 10 * 365 * 86400
    assert auth.verify(claims.token).identity == claims.identity
    assert claims.token not in repr(claims)

    other = auth.mint()
    assert other.identity != claims.identity and other.subject != claims.subject


def test_public_key_pem_verifies_tokens_independently() -> None:
    auth = TokenAuthority(None, issuer="example.com")
    claims = auth.mint()
    pem = auth.public_key_pem()
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    # like SpacetimeDB's own tokens, ours carry "exp": null, which PyJWT's default exp check refuses
    options: jwt.types.Options = {"verify_aud": False, "verify_exp": False}
    decoded = jwt.decode(claims.token, pem, algorithms=["ES256"], options=options)
    assert decoded["iss"] == "example.com"
    assert claims.identity == identity_from_claims("example.com", claims.subject)


def test_bad_issuer_for_authority() -> None:
    for issuer in ("", "x" * 129):
        with pytest.raises(ValueError):
            TokenAuthority(None, issuer=issuer)


def test_logs_never_hold_tokens(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="spacetime_game.server.auth")
    auth = TokenAuthority(None)
    claims = auth.mint()
    ws = auth.websocket_token(claims.token)
    auth.verify(ws)
    with pytest.raises(AuthError):
        TokenAuthority(None).verify(claims.token)
    assert claims.token not in caplog.text and ws not in caplog.text
    assert claims.token.split(".")[2] not in caplog.text


# ---- the key on disk ----------------------------------------------------------------------------------


def test_key_persists_across_instances(tmp_path: Path) -> None:
    first = TokenAuthority(tmp_path)
    claims = first.mint()
    key_dir = tmp_path / "auth"
    key_bytes = (key_dir / "id_ecdsa").read_bytes()
    assert key_bytes.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert (key_dir / "id_ecdsa.pub").read_text() == first.public_key_pem()
    assert sorted(os.listdir(key_dir)) == ["id_ecdsa", "id_ecdsa.pub"]  # no temp files left
    if POSIX:
        assert stat.S_IMODE((key_dir / "id_ecdsa").stat().st_mode) == 0o600
        assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700

    second = TokenAuthority(tmp_path)
    assert second.public_key_pem() == first.public_key_pem()
    again = second.verify(claims.token)
    assert again.identity == claims.identity and again.subject == claims.subject
    assert (key_dir / "id_ecdsa").read_bytes() == key_bytes  # loaded, not replaced
    assert first.verify(second.mint().token).issuer == "localhost"


def test_in_memory_authority_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    a, b = TokenAuthority(None), TokenAuthority(None)
    assert a.public_key_pem() != b.public_key_pem()
    assert os.listdir(tmp_path) == []


def test_missing_public_key_file_is_rewritten(tmp_path: Path) -> None:
    auth = TokenAuthority(tmp_path)
    pub = tmp_path / "auth" / "id_ecdsa.pub"
    pub.unlink()
    TokenAuthority(tmp_path)
    assert pub.read_text() == auth.public_key_pem()
    pub.write_text("stale")
    TokenAuthority(tmp_path)
    assert pub.read_text() == auth.public_key_pem()


@pytest.mark.skipif(not POSIX, reason="POSIX file modes")
def test_loose_key_file_mode_is_tightened(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    TokenAuthority(tmp_path)
    key = tmp_path / "auth" / "id_ecdsa"
    os.chmod(key, 0o644)
    os.chmod(key.parent, 0o755)
    with caplog.at_level(logging.WARNING, logger="spacetime_game.server.auth"):
        TokenAuthority(tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert "0644" in caplog.text


def test_unusable_key_file_is_a_server_error(tmp_path: Path) -> None:
    key_dir = tmp_path / "auth"
    key_dir.mkdir()
    key = key_dir / "id_ecdsa"
    key.write_bytes(b"not a key")
    with pytest.raises(SpacetimeError, match="id_ecdsa") as info:
        TokenAuthority(tmp_path)
    assert not isinstance(info.value, AuthError)
    p384 = ec.generate_private_key(ec.SECP384R1())
    key.write_bytes(
        p384.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(SpacetimeError, match="P-256"):
        TokenAuthority(tmp_path)


# ---- refusing tokens ----------------------------------------------------------------------------------


def test_token_of_another_key_is_refused(authority: TokenAuthority) -> None:
    foreign = TokenAuthority(None).mint()
    with pytest.raises(AuthError, match="not signed by this instance") as info:
        authority.verify(foreign.token)
    assert info.value.status == 401


def test_token_of_another_issuer_with_our_key_is_refused(tmp_path: Path) -> None:
    ours = TokenAuthority(tmp_path)
    theirs = TokenAuthority(tmp_path, issuer="https://auth.example.com")
    token = theirs.mint().token
    assert theirs.verify(token).issuer == "https://auth.example.com"
    with pytest.raises(AuthError, match="not signed by this instance") as info:
        ours.verify(token)
    assert "example.com" not in str(info.value)


def test_tampered_tokens_are_refused(authority: TokenAuthority) -> None:
    token = authority.mint().token
    header, payload, signature = token.split(".")
    _, claims, _ = segments(token)

    stolen = dict(claims, sub="someone-else")
    stolen["hex_identity"] = str(identity_from_claims("localhost", "someone-else"))
    forged_payload = b64(json.dumps(stolen).encode())
    with pytest.raises(AuthError, match="not signed by this instance"):
        authority.verify(f"{header}.{forged_payload}.{signature}")

    forged_header = b64(json.dumps({"alg": "ES256", "typ": "JWT", "kid": "x"}).encode())
    with pytest.raises(AuthError):
        authority.verify(f"{forged_header}.{payload}.{signature}")

    middle = len(signature) // 2
    flipped = signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    with pytest.raises(AuthError):
        authority.verify(f"{header}.{payload}.{flipped}")
    with pytest.raises(AuthError):
        authority.verify(f"{header}.{payload}.{signature[:-4]}")
    assert authority.verify(token)  # the original is still fine


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS256", "HS512", "RS256", "ES384", "EdDSA"])
def test_other_algorithms_are_refused(authority: TokenAuthority, alg: str) -> None:
    """alg=none, and the classic confusion attack: HS256 keyed with our public key PEM."""
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64(json.dumps(good_payload()).encode())
    signing_input = f"{header}.{payload}".encode()
    secret = authority.public_key_pem().encode()
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
    for signature in (b64(mac), "AAAA"):
        with pytest.raises(AuthError, match="must be signed with ES256") as info:
            authority.verify(f"{header}.{payload}.{signature}")
        assert info.value.status == 401
    with pytest.raises(AuthError, match="malformed"):
        authority.verify(f"{header}.{payload}.")  # the usual alg=none form: no signature at all


def test_hs256_confusion_with_es256_header_is_refused(authority: TokenAuthority) -> None:
    header = b64(json.dumps({"alg": "ES256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(good_payload()).encode())
    mac = hmac.new(authority.public_key_pem().encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    with pytest.raises(AuthError, match="not signed by this instance"):
        authority.verify(f"{header}.{payload}.{b64(mac.digest())}")


def _payload(**changes: Any) -> dict[str, Any]:
    payload = good_payload()
    for name, value in changes.items():
        if value is _DROP:
            del payload[name]
        else:
            payload[name] = value
    return payload


_DROP = object()


@pytest.mark.parametrize(
    "payload",
    [
        _payload(iss=_DROP),
        _payload(sub=_DROP),
        _payload(iss=""),
        _payload(sub=""),
        _payload(sub=None),
        _payload(sub=42),
        _payload(sub=["player-1"]),
        _payload(sub="é" * 65, hex_identity=None),
        _payload(iss="localhost" + "x" * 120, hex_identity=None),
        _payload(sub="\ud800", hex_identity=None),
        _payload(hex_identity=str(identity_from_claims("localhost", "player-2"))),
        _payload(hex_identity="zz"),
        _payload(hex_identity=12),
        _payload(hex_identity="c200"),
        _payload(aud=5),
        _payload(aud=["spacetimedb", 5]),
        _payload(iat=_DROP),
        _payload(iat="1700000000"),
        _payload(iat=1.5),
        _payload(iat=True),
        _payload(exp="never"),
        _payload(exp=1e12),
        _payload(exp=int(time.time()) - 5),
    ],
)
def test_bad_claims_signed_by_our_key_are_refused(tmp_path: Path, payload: dict[str, Any]) -> None:
    authority = TokenAuthority(tmp_path)
    token = sign_raw(json.dumps(payload).encode(), private_key(tmp_path))
    with pytest.raises(AuthError) as info:
        authority.verify(token)
    assert info.value.status == 401


@pytest.mark.parametrize(
    ("changes", "audience"),
    [
        ({}, ("spacetimedb",)),
        ({"aud": "game"}, ("game",)),
        ({"aud": _DROP}, ()),
        ({"hex_identity": _DROP}, ("spacetimedb",)),
        (
            {"hex_identity": "0x" + str(identity_from_claims("localhost", "player-1")).upper()},
            ("spacetimedb",),
        ),
        ({"exp": _DROP, "extra": {"nested": [1, 2]}}, ("spacetimedb",)),
        ({"exp": int(time.time()) + 3600}, ("spacetimedb",)),
        ({"sub": "é" * 64, "hex_identity": _DROP}, ("spacetimedb",)),
    ],
)
def test_acceptable_claims_signed_by_our_key(
    tmp_path: Path, changes: dict[str, Any], audience: tuple[str, ...]
) -> None:
    authority = TokenAuthority(tmp_path)
    payload = _payload(**changes)
    claims = authority.verify(sign_raw(json.dumps(payload).encode(), private_key(tmp_path)))
    assert claims.audience == audience
    assert claims.identity == identity_from_claims("localhost", payload["sub"])


@pytest.mark.parametrize(
    "payload", [b"[1, 2]", b'"text"', b"null", b"not json", b"\xff\xfe", b"[" * 5000 + b"]" * 5000]
)
def test_signed_payloads_that_are_not_objects_are_malformed(tmp_path: Path, payload: bytes) -> None:
    authority = TokenAuthority(tmp_path)
    with pytest.raises(AuthError, match="malformed") as info:
        authority.verify(sign_raw(payload, private_key(tmp_path)))
    assert info.value.status == 400


@pytest.mark.parametrize(
    "bad",
    [
        None,
        123,
        1.5,
        b"a.b.c",
        ["a", "b", "c"],
        "",
        " ",
        "garbage",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "...",
        "\x00",
        "é.é.é",
        "\ud800.a.b",
        "a" * 20_000,
        "A" * 20_000 + ".a.b",
        b64(b"[" * 3000) + ".e30.AAAA",
        b64(b"[1]") + ".e30.AAAA",
        b64(b'{"alg":"ES256"}') + ".e30=.AAAA",
        "eyJhbGciOiJFUzI1NiJ9.e30.A",
        "Bearer eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
    ],
)
def test_garbage_is_an_auth_error(authority: TokenAuthority, bad: Any) -> None:
    with pytest.raises(AuthError) as info:
        authority.verify(bad)
    assert info.value.status in (400, 401)
    with pytest.raises(AuthError):
        authority.websocket_token(bad)


def test_malformed_is_400_and_whitespace_is_not_trimmed(authority: TokenAuthority) -> None:
    token = authority.mint().token
    # base64 decoders that skip characters outside the alphabet would accept these (4 keeps the padding)
    inserts = (
        "    " + token,
        token + "\n",
        token[:10] + "\n\n\n\n" + token[10:],
        token[:10] + "!!!!" + token[10:],
    )
    for bad in (" " + token, *inserts, token.replace(".", "..", 1)):
        with pytest.raises(AuthError, match="malformed") as info:
            authority.verify(bad)
        assert info.value.status == 400


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_AUTHORITY = TokenAuthority(None)
_TOKEN = _AUTHORITY.mint()


@FUZZ
@given(st.text(max_size=600))
def test_fuzz_random_text(text: str) -> None:
    with pytest.raises(AuthError):
        _AUTHORITY.verify(text)


@FUZZ
@given(st.integers(0, len(_TOKEN.token) - 1), st.sampled_from("AZaz09-_.=+/ é"), st.booleans())
def test_fuzz_mutated_token(index: int, char: str, insert: bool) -> None:
    original = _TOKEN.token
    mutated = original[:index] + char + original[index + (0 if insert else 1) :]
    try:
        claims = _AUTHORITY.verify(mutated)
    except AuthError:
        return
    # a change that only touched unused base64 bits can still be valid; then nothing may differ
    assert claims.identity == _TOKEN.identity and claims.subject == _TOKEN.subject


# ---- websocket tokens ---------------------------------------------------------------------------------


def test_websocket_token_keeps_identity_and_expires_in_60s(authority: TokenAuthority) -> None:
    claims = authority.mint()
    before = time.time()
    short = authority.websocket_token(claims.token)
    after = time.time()
    assert short != claims.token
    again = authority.verify(short)
    assert (again.identity, again.subject, again.issuer, again.audience) == (
        claims.identity,
        claims.subject,
        claims.issuer,
        claims.audience,
    )
    assert again.expires_at is not None
    assert int(before) <= again.issued_at <= after
    assert again.expires_at - again.issued_at == 60
    assert before + 59 <= again.expires_at <= after + 60
    assert segments(short)[1]["hex_identity"] == str(claims.identity)
    # a websocket token can itself be exchanged while it is valid
    assert authority.verify(authority.websocket_token(short)).identity == claims.identity


def test_expired_websocket_token_is_refused() -> None:
    clock = FakeClock()
    auth = TokenAuthority(None, clock=clock)
    claims = auth.mint()
    short = auth.websocket_token(claims.token, ttl_seconds=1)
    verified = auth.verify(short)
    assert verified.expires_at == int(T0) + 1
    clock.now = int(T0) + 0.999
    assert auth.verify(short).identity == claims.identity
    clock.now = int(T0) + 1
    with pytest.raises(AuthError, match="expired") as info:
        auth.verify(short)
    assert info.value.status == 401
    with pytest.raises(AuthError, match="expired"):
        auth.websocket_token(short)
    assert auth.verify(claims.token).identity == claims.identity  # the long-lived token is unaffected


def test_expired_websocket_token_is_refused_by_the_real_clock(tmp_path: Path) -> None:
    an_hour_ago = TokenAuthority(tmp_path, clock=lambda: time.time() - 3600)
    short = an_hour_ago.websocket_token(an_hour_ago.mint().token)
    now = TokenAuthority(tmp_path)
    with pytest.raises(AuthError, match="expired"):
        now.verify(short)


@pytest.mark.parametrize("ttl", [0, -1, True, 1.5, "60"])
def test_websocket_token_ttl_must_be_positive_int(authority: TokenAuthority, ttl: Any) -> None:
    token = authority.mint().token
    with pytest.raises(ValueError):
        authority.websocket_token(token, ttl_seconds=ttl)


def test_claims_is_frozen(authority: TokenAuthority) -> None:
    claims = authority.mint()
    assert isinstance(claims, Claims)
    with pytest.raises(AttributeError):
        claims.subject = "x"  # type: ignore[misc]
