"""Signed, expiring email-link tokens."""

from __future__ import annotations

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from recommender.tokens import TokenError, make_token, read_token


def test_a_token_round_trips_for_its_purpose():
    token = make_token("k", "rate", {"u": 1, "p": 2, "v": 1})
    assert read_token("k", "rate", token) == {"u": 1, "p": 2, "v": 1}


def test_a_token_for_one_purpose_is_refused_by_another():
    token = make_token("k", "rate", {"u": 1})
    with pytest.raises(TokenError) as info:
        read_token("k", "unsubscribe", token)
    assert info.value.reason == "invalid"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1],
        lambda t: t[: len(t) // 2],
        lambda t: "x" + t,
    ],
)
def test_a_tampered_token_is_invalid(tamper):
    token = make_token("k", "rate", {"u": 1})
    with pytest.raises(TokenError, match="not valid"):
        read_token("k", "rate", tamper(token))


def test_a_token_signed_with_another_key_is_invalid():
    with pytest.raises(TokenError):
        read_token("k", "rate", make_token("other", "rate", {"u": 1}))


def test_an_old_token_has_expired():
    # Sign as if 10 days ago, with the same salt scheme as the module.
    class PastSigner(TimestampSigner):
        def get_timestamp(self):
            return super().get_timestamp() - 10 * 24 * 3600

    past = URLSafeTimedSerializer("k", salt="paperfeed/reset-password", signer=PastSigner)
    token = past.dumps({"u": 1})
    assert read_token("k", "rate", make_token("k", "rate", 1)) == 1  # fresh ones still work
    with pytest.raises(TokenError) as info:
        read_token("k", "reset-password", token)
    assert info.value.reason == "expired" and "expired" in str(info.value)


def test_an_unknown_purpose_is_a_programming_error():
    with pytest.raises(ValueError):
        make_token("k", "launch-missiles", {})
