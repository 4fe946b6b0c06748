"""Tokens and identities of the embedded dev server (protocol notes §2.3).

The server signs its own tokens with an ES256 (ECDSA P-256, SHA-256) key, like SpacetimeDB standalone, and
derives an :class:`~spacetime_game.sdk.Identity` from each token's ``iss`` and ``sub`` claims with
:func:`identity_from_claims`.

Only tokens this instance signed are accepted: the real server also accepts tokens of other OpenID Connect
issuers, fetching their keys over the network, which an offline dev server cannot do.

Every :class:`AuthError` message is a fixed text that is safe to send to the client; it never echoes the
token or the claims.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import jwt
from blake3 import blake3
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.types import Options

from spacetime_game.sdk import Identity, SpacetimeError

from ._files import ensure_private_dir, restrict_mode, write_atomic
from ._logsafe import server_logger

__all__ = ["AuthError", "Claims", "TokenAuthority", "identity_from_claims"]

logger = server_logger("spacetime_game.server.auth")

#: The only signature algorithm this server signs or accepts.
ALGORITHM: Final = "ES256"
#: The audience of the tokens the server mints (``SpacetimeAuth::alloc``).
DEFAULT_AUDIENCE: Final = ("spacetimedb",)
#: The longest ``iss`` or ``sub`` accepted, in UTF-8 bytes (``IncomingClaims::try_into``).
MAX_CLAIM_BYTES: Final = 128
#: Tokens longer than this are refused before any parsing. Tokens minted here are about 400 characters.
MAX_TOKEN_LENGTH: Final = 16 * 1024
#: How long a token from :meth:`TokenAuthority.websocket_token` lives (``POST /v1/identity/websocket-token``).
WEBSOCKET_TOKEN_TTL: Final = 60

_KEY_DIR: Final = "auth"
_KEY_FILE: Final = "id_ecdsa"
_PUBLIC_KEY_FILE: Final = "id_ecdsa.pub"
_KEY_ADVICE: Final = "restore it from a backup, or delete it to start with a new key (tokens signed by the old key stop working)"

# JWS compact serialization: three base64url segments, none empty (an empty signature is never ES256).
_COMPACT_JWS: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

# PyJWT checks the signature and the algorithm; every claim is checked here, against our own clock.
_DECODE_OPTIONS: Final[Options] = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
}

_MALFORMED: Final = "malformed token"
_NOT_OURS: Final = "token not signed by this instance"


class AuthError(SpacetimeError):
    """A token was refused. ``str(error)`` is safe to send to the client.

    ``status`` is the HTTP status to answer with: 400 for a token that is not a JWT at all (as SpacetimeDB
    does for a malformed token), 401 for everything else.
    """

    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _claim_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise AuthError(f"{what} must be a string")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raise AuthError(f"{what} is not valid UTF-8") from None
    if not raw:
        raise AuthError(f"{what} is empty")
    if len(raw) > MAX_CLAIM_BYTES:
        raise AuthError(f"{what} is longer than {MAX_CLAIM_BYTES} bytes")
    return raw


def identity_from_claims(issuer: str, subject: str) -> Identity:
    """The identity of the user named ``subject`` by ``issuer`` (``Identity::from_claims``).

    BLAKE3 of ``iss|sub`` keeps its first 26 bytes ``idh``; the identity, big-endian, is
    ``c2 00 ‖ BLAKE3(c2 00 ‖ idh)[0..4] ‖ idh``. Both claims must be non-empty and at most 128 UTF-8 bytes,
    else :class:`AuthError`.
    """
    iss = _claim_bytes(issuer, "issuer")
    sub = _claim_bytes(subject, "subject")
    idh = blake3(iss + b"|" + sub).digest()[:26]
    checksum = blake3(b"\xc2\x00" + idh).digest()[:4]
    identity: Identity = Identity(b"\xc2\x00" + checksum + idh)
    return identity


@dataclass(frozen=True, slots=True)
class Claims:
    """The checked claims of one token, and the token itself (left out of ``repr``: it is a credential)."""

    identity: Identity
    subject: str
    issuer: str
    audience: tuple[str, ...]
    #: ``iat``, seconds since the Unix epoch.
    issued_at: int
    #: ``exp``, seconds since the Unix epoch; None for a token that does not expire.
    expires_at: int | None
    token: str = field(repr=False)


def _int_claim(payload: dict[str, Any], name: str) -> int | None:
    """The integer claim ``name``, or None if it is absent or null."""
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise AuthError(f"token claim '{name}' must be an integer")
    return value


def _audience(payload: dict[str, Any]) -> tuple[str, ...]:
    value = payload.get("aud")
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise AuthError("token claim 'aud' must be a string or a list of strings")


class TokenAuthority:
    """Mints and checks the server's ES256 tokens.

    With a ``data_dir`` the key pair lives in ``<data_dir>/auth/id_ecdsa`` (PKCS#8 PEM, mode 0600, in a
    0700 directory) and ``id_ecdsa.pub`` (SubjectPublicKeyInfo PEM), created on first use, so identities
    survive a restart. With ``None`` the key exists only in memory.

    ``clock`` (seconds since the epoch) is for tests; it dates new tokens and decides expiry.
    """

    issuer: str

    def __init__(
        self,
        data_dir: Path | None,
        issuer: str = "localhost",
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            _claim_bytes(issuer, "issuer")
        except AuthError as exc:
            raise ValueError(f"bad issuer {issuer!r}: {exc}") from None
        self.issuer = issuer
        self._clock = clock
        if data_dir is None:
            self._private_key = ec.generate_private_key(ec.SECP256R1())
        else:
            self._private_key = _load_or_create_key(Path(data_dir) / _KEY_DIR)
        self._public_key = self._private_key.public_key()
        self._public_pem = _public_pem(self._private_key).decode("ascii")

    def public_key_pem(self) -> str:
        """The public key as SubjectPublicKeyInfo PEM (``GET /v1/identity/public-key``)."""
        return self._public_pem

    def mint(self) -> Claims:
        """A new anonymous identity: a random UUIDv4 subject, this issuer, audience ``spacetimedb``, no expiry."""
        claims = self._sign(self.issuer, str(uuid.uuid4()), DEFAULT_AUDIENCE, ttl_seconds=None)
        logger.debug("minted identity %s", claims.identity)
        return claims

    def issue(self, subject: str) -> Claims:
        """A token for the fixed ``subject`` of this issuer (audience ``spacetimedb``, no expiry): the same
        identity each time, for the same issuer. ``ValueError`` for an empty or overlong subject."""
        try:
            _claim_bytes(subject, "subject")
        except AuthError as exc:
            raise ValueError(f"bad subject {subject!r}: {exc}") from None
        return self._sign(self.issuer, subject, DEFAULT_AUDIENCE, ttl_seconds=None)

    def websocket_token(self, token: str, ttl_seconds: int = WEBSOCKET_TOKEN_TTL) -> str:
        """Check ``token`` and sign its issuer, subject and audience again, issued now and expiring
        ``ttl_seconds`` from now (``POST /v1/identity/websocket-token``). :class:`AuthError` if ``token`` is
        refused."""
        if not isinstance(ttl_seconds, int) or isinstance(ttl_seconds, bool) or ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be a positive int, got {ttl_seconds!r}")
        claims = self.verify(token)
        return self._sign(claims.issuer, claims.subject, claims.audience, ttl_seconds=ttl_seconds).token

    def verify(self, token: str) -> Claims:
        """The claims of ``token`` if this instance signed it and it is still valid, else :class:`AuthError`."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not _COMPACT_JWS.fullmatch(token):
            raise AuthError(_MALFORMED, status=400)
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            raise AuthError(_MALFORMED, status=400) from None
        if header.get("alg") != ALGORITHM:
            logger.debug("refused a token signed with %r", header.get("alg"))
            raise AuthError(f"token must be signed with {ALGORITHM}")
        try:
            payload = jwt.decode(token, self._public_key, algorithms=[ALGORITHM], options=_DECODE_OPTIONS)
        except jwt.InvalidSignatureError:
            logger.debug("refused a token with a signature that is not ours")
            raise AuthError(_NOT_OURS) from None
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            raise AuthError(_MALFORMED, status=400) from None
        return self._check_claims(payload, token)

    def _check_claims(self, payload: dict[str, Any], token: str) -> Claims:
        for name, what in (("iss", "issuer"), ("sub", "subject")):
            if name not in payload:
                raise AuthError(f"token has no {what} ('{name}')")
        issuer, subject = payload["iss"], payload["sub"]
        identity = identity_from_claims(issuer, subject)
        if issuer != self.issuer:
            # SpacetimeDB would look the issuer up with OpenID Connect discovery; we cannot do that offline.
            logger.debug("refused a token of another issuer")
            raise AuthError(_NOT_OURS)
        claimed = payload.get("hex_identity")
        if claimed is not None:
            try:
                matches = isinstance(claimed, str) and Identity.from_string(claimed) == identity
            except ValueError:
                matches = False
            if not matches:
                raise AuthError("token identity does not match its issuer and subject")
        audience = _audience(payload)
        issued_at = _int_claim(payload, "iat")
        if issued_at is None:
            raise AuthError("token has no 'iat' claim")
        expires_at = _int_claim(payload, "exp")
        if expires_at is not None and self._clock() >= expires_at:
            raise AuthError("token expired")
        return Claims(identity, subject, issuer, audience, issued_at, expires_at, token)

    def _sign(
        self, issuer: str, subject: str, audience: tuple[str, ...], *, ttl_seconds: int | None
    ) -> Claims:
        identity = identity_from_claims(issuer, subject)
        now = int(self._clock())
        expires_at = None if ttl_seconds is None else now + ttl_seconds
        payload = {
            "hex_identity": str(identity),
            "sub": subject,
            "iss": issuer,
            "aud": list(audience),
            "iat": now,
            "exp": expires_at,
        }
        token = jwt.encode(payload, self._private_key, algorithm=ALGORITHM)
        return Claims(identity, subject, issuer, audience, now, expires_at, token)


# ---- the key files ------------------------------------------------------------------------------------


def _public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _load_or_create_key(key_dir: Path) -> ec.EllipticCurvePrivateKey:
    ensure_private_dir(key_dir)
    key_path = key_dir / _KEY_FILE
    try:
        pem = key_path.read_bytes()
    except IsADirectoryError:
        raise SpacetimeError(
            f"{key_path}: cannot read the token signing key: it is a directory; {_KEY_ADVICE}"
        ) from None
    except FileNotFoundError:
        key = ec.generate_private_key(ec.SECP256R1())
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_atomic(key_path, private_pem, 0o600)
        logger.info("created a new token signing key %s", key_path)
    except OSError as exc:
        raise SpacetimeError(
            f"{key_path}: cannot read the token signing key: {exc.strerror or exc}; {_KEY_ADVICE}"
        ) from None
    else:
        key = _parse_private_key(pem, key_path)
        restrict_mode(key_path, 0o600)
        logger.debug("loaded the token signing key %s", key_path)

    public_path = key_dir / _PUBLIC_KEY_FILE
    public_pem = _public_pem(key)
    try:
        existing: bytes | None = public_path.read_bytes()
    except FileNotFoundError:
        existing = None
    if existing != public_pem:
        if existing is not None:
            logger.warning("%s did not match %s; rewriting it", public_path, key_path)
        write_atomic(public_path, public_pem, 0o644)
    return key


def _parse_private_key(pem: bytes, path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SpacetimeError(f"{path}: cannot read the token signing key: {exc}; {_KEY_ADVICE}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SpacetimeError(
            f"{path}: the token signing key must be an ECDSA P-256 (ES256) key; {_KEY_ADVICE}"
        )
    return key
