"""The tests seed their databases with cheap password hashes (tests.support.CHEAP_HASHES); the
product's own hashes must keep argon2id's recommended cost."""

from __future__ import annotations

from storage import seed
from tests.support import CHEAP_HASHES, cheap_password_hashes


def test_the_product_hashes_passwords_at_the_recommended_argon2_cost() -> None:
    hashed = seed.password_hash.hash("a password")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert seed.password_hash.verify("a password", hashed)


def test_only_test_seeding_is_cheap_and_the_cheap_hashes_still_verify() -> None:
    with cheap_password_hashes():
        cheap = seed.password_hash.hash("a password")
    assert cheap.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    # The product's hasher verifies a cheap hash at the hash's own cost (the API signs users in so).
    assert seed.password_hash.verify("a password", cheap) and not seed.password_hash.verify("another", cheap)
    assert seed.password_hash is not CHEAP_HASHES
