"""Resume tokens, the push log and the resume settings."""

from __future__ import annotations

from random import Random

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import ConfigError
from pomelo_twisted.resume import PushLog, ResumeClaims, ResumeRefused, ResumeTokens
from pomelo_twisted.resume.negotiator import ResumeSettings, resume_settings
from pomelo_twisted.resume.tokens import FORGED


class TokenTests(SynchronousTestCase):
    """Tokens are signed, name their frontend, and refuse anything altered."""

    def setUp(self) -> None:
        self.tokens = ResumeTokens.with_random_key("connector-1", Random(1))

    def test_round_trip(self) -> None:
        """A token opens to the claims it was issued with."""
        token = self.tokens.issue(7, "alice", "ab")
        self.assertEqual(self.tokens.open(token), ResumeClaims("connector-1", 7, "alice", "ab"))

    def test_other_key_is_forged(self) -> None:
        """A token of the same frontend id signed with another key is refused."""
        other = ResumeTokens.with_random_key("connector-1", Random(2))
        with self.assertRaises(ResumeRefused) as caught:
            self.tokens.open(other.issue(7, "alice", "ab"))
        self.assertEqual(caught.exception.reason, FORGED)

    def test_altered_claims_are_refused(self) -> None:
        """Changing the uid in the payload breaks the signature."""
        token = self.tokens.issue(7, "alice", "ab")
        _, _, signature = token.partition(".")
        mallory = self.tokens.issue(7, "mallory", "ab").partition(".")[0]
        with self.assertRaises(ResumeRefused):
            self.tokens.open(f"{mallory}.{signature}")

    def test_other_frontend_is_named(self) -> None:
        """A token of another frontend names it."""
        other = ResumeTokens.with_random_key("connector-2", Random(3))
        with self.assertRaises(ResumeRefused) as caught:
            self.tokens.open(other.issue(7, None, "ab"))
        self.assertEqual(caught.exception.frontend_id, "connector-2")

    def test_malformed_tokens_are_refused(self) -> None:
        """Anything that is not a token is refused as malformed, never raising else."""
        for token in (None, 3, "", "abc", "a.b", "x" * 2000, "W10.sig", "bnVsbA.sig"):
            with self.assertRaises(ResumeRefused) as caught:
                self.tokens.open(token)
            self.assertEqual(caught.exception.reason, "malformed resume token", token)

    def test_short_secret_is_refused(self) -> None:
        """A secret under 16 bytes is refused at construction."""
        self.assertRaises(ValueError, ResumeTokens, "c", b"short")


class PushLogTests(SynchronousTestCase):
    """The log numbers pushes and keeps the recent ones within its bounds."""

    def test_since(self) -> None:
        """The pushes after the first ``received``, in order."""
        pushes = PushLog(10, 1000)
        for package in (b"a", b"b", b"c"):
            pushes.record(package)
        self.assertEqual(pushes.since(1), [b"b", b"c"])
        self.assertEqual(pushes.since(3), [])
        self.assertIsNone(pushes.since(4))
        self.assertIsNone(pushes.since(-1))

    def test_count_bound(self) -> None:
        """Beyond ``max_pushes`` the oldest go; asking for them is refused."""
        pushes = PushLog(2, 1000)
        for package in (b"a", b"b", b"c"):
            pushes.record(package)
        self.assertEqual((pushes.first, pushes.sent, len(pushes)), (2, 3, 2))
        self.assertIsNone(pushes.since(0))
        self.assertEqual(pushes.since(1), [b"b", b"c"])
        self.assertIn("overflowed", pushes.describe(0))

    def test_byte_bound(self) -> None:
        """Beyond ``max_bytes`` the oldest go, even the only one."""
        pushes = PushLog(10, 5)
        pushes.record(b"abc")
        pushes.record(b"def")
        self.assertEqual((pushes.first, pushes.bytes), (2, 3))
        pushes.record(b"0123456789")
        self.assertEqual((len(pushes), pushes.bytes, pushes.first), (0, 0, 4))


class SettingsTests(SynchronousTestCase):
    """Resume settings are checked, naming the wrong one."""

    def test_defaults(self) -> None:
        """Nothing set: enabled, 60 s, bounded buffer, random key."""
        self.assertEqual(resume_settings("c", lambda key, default: default), ResumeSettings())

    def test_wrong_values_name_the_setting(self) -> None:
        """Each invalid setting is named in the error."""
        cases = {
            "resume": "yes",
            "resume_window": 0,
            "resume_max_pushes": -1,
            "resume_max_bytes": True,
            "resume_secret": "short",
        }
        for key, value in cases.items():
            settings = {key: value}
            with self.assertRaises(ConfigError) as caught:
                resume_settings("c-1", lambda k, d, s=settings: s.get(k, d))
            self.assertIn(key, str(caught.exception))
            self.assertIn("c-1", str(caught.exception))
