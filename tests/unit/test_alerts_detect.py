"""The alert detectors, on an injected clock: thresholds (strict: *more than* N in a window that
excludes its far edge; down *longer than* N seconds), learning and bounds of the new-signer
detector, and attacker-controlled image names kept out of labels and cut short in annotations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signet.alerts import Alerts, AlertSettings
from signet.alerts.deliver import _postable
from signet.alerts.detect import DenialSpike, KeyLifecycle, RegistryOutage, TrustReload
from signet.alerts.event import MAX_TEXT, printable
from signet.alerts.signers import NewSigners, load, write
from signet.audit.record import Decision, SignerFact

DIGEST = "sha256:" + "a" * 64
DEV = SignerFact("dev-team", "key-1", "sigstore-bundle")
OTHER_KEY = SignerFact("dev-team", "key-2", "sigstore-bundle")
CI = SignerFact("ci", "keyless", "sigstore-bundle", "https://ci.example/build", "https://oidc")
CI_OTHER = SignerFact("ci", "keyless", "sigstore-bundle", "https://evil.example", "https://oidc")


def denied(key: str = "registry.example/app:1", reason: str = "NO_SIGNATURE") -> Decision:
    return Decision(1.0, "r", key, DIGEST, reasons=(reason,))


def verified(key: str, *signers: SignerFact) -> Decision:
    return Decision(1.0, "r", key, DIGEST, tuple(s.attestor for s in signers), signers)


def transient(key: str = "registry.example/app:1") -> Decision:
    return Decision(1.0, "r", key, None, reasons=("REGISTRY_UNAVAILABLE",), error="503")


# -- denial spike ------------------------------------------------------------------------------


def test_a_spike_is_more_than_the_limit_not_the_limit_itself() -> None:
    spike = DenialSpike(limit=3, window=60)
    assert spike.observe([denied()] * 3, now=100) == []
    (alert,) = spike.observe([denied()], now=100)
    assert alert.name == "SignetDenialSpike" and alert.firing
    assert alert.labels == ()
    assert alert.all_labels() == {
        "alertname": "SignetDenialSpike",
        "severity": "warning",
        "service": "signet",
    }
    assert spike.observe([denied()] * 10, now=101) == []  # fires once


def test_a_spike_counts_only_deterministic_denials() -> None:
    spike = DenialSpike(limit=2, window=60)
    ok = verified("registry.example/app:1", DEV)
    assert spike.observe([transient()] * 10 + [ok] * 10, now=100) == []
    assert spike.observe([denied()] * 2, now=100) == []


def test_the_window_slides_and_its_far_edge_is_outside() -> None:
    spike = DenialSpike(limit=2, window=60)
    spike.observe([denied()], now=100)
    spike.observe([denied()], now=130)
    assert spike.observe([denied()], now=160) == []  # the first is exactly 60 s old: out
    (alert,) = spike.observe([denied()], now=160)  # 130, 160, 160: three within the window
    assert alert.firing
    assert spike.tick(189) == []  # 130 is 59 s old: still three
    (resolved,) = spike.tick(190)  # 130 is out: two left, the limit itself
    assert resolved.ends_at == 190 and resolved.starts_at == 160
    assert spike.tick(500) == []


def test_a_spike_fires_again_after_resolving() -> None:
    spike = DenialSpike(limit=1, window=10)
    assert len(spike.observe([denied()] * 2, now=0)) == 1
    assert spike.tick(11)[0].ends_at == 11
    (again,) = spike.observe([denied()] * 2, now=20)
    assert again.firing and again.starts_at == 20


def test_attacker_controlled_image_names_stay_out_of_labels_and_are_cut_short() -> None:
    hostile = 'evil.example/x:1", "severity": "none", "team": "\n\x1b[31m' + "é" * 500
    spike = DenialSpike(limit=1, window=60)
    (alert,) = spike.observe([denied(hostile)] * 2, now=1)
    body = _postable(alert)
    assert body["labels"] == {
        "alertname": "SignetDenialSpike",
        "severity": "warning",
        "service": "signet",
    }
    description = body["annotations"]["description"]
    assert "\n" not in description and "\x1b" not in description and "é" not in description
    assert "\\x0a" in description and "\\x1b" in description and "\\xe9" in description
    # Each of the (at most 3) examples is cut to MAX_TEXT characters.
    assert len(description) <= len("Recently denied, for example: .") + 3 * MAX_TEXT + 2 * 2
    assert description.count("...") == 2  # two denials, two examples
    assert json.loads(json.dumps(body))["labels"] == body["labels"]


def test_printable_cuts_to_the_limit_with_an_ellipsis() -> None:
    assert printable("a" * MAX_TEXT) == "a" * MAX_TEXT
    cut = printable("a" * (MAX_TEXT + 1))
    assert len(cut) == MAX_TEXT and cut.endswith("...")
    assert printable("tab\there") == "tab\\x09here"


# -- revoked or expired key --------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["KEY_REVOKED", "KEY_EXPIRED", "KEY_NOT_YET_VALID"])
def test_a_lifecycle_refusal_fires_once_per_reason_and_resolves_after_the_hold(
    reason: str,
) -> None:
    lifecycle = KeyLifecycle(hold=100)
    (alert,) = lifecycle.observe([denied("registry.example/app:1", reason)], now=10)
    assert alert.name == "SignetRevokedOrExpiredKeyUsed"
    assert alert.labels == (("reason", reason),)
    assert "registry.example/app:1" in alert.description and DIGEST in alert.description
    assert lifecycle.observe([denied("registry.example/app:2", reason)], now=50) == []
    assert lifecycle.tick(150) == []  # last seen at 50: held until 150 inclusive
    (resolved,) = lifecycle.tick(151)
    assert resolved.ends_at == 151 and resolved.key == alert.key


def test_other_reasons_are_no_lifecycle_alert() -> None:
    lifecycle = KeyLifecycle(hold=100)
    decisions = [denied(reason="NO_SIGNATURE"), denied(reason="SIGNATURE_INVALID")]
    assert lifecycle.observe(decisions, now=1) == []
    both = lifecycle.observe([denied(reason="KEY_REVOKED"), denied(reason="KEY_EXPIRED")], 2)
    assert {a.labels for a in both} == {(("reason", "KEY_REVOKED"),), (("reason", "KEY_EXPIRED"),)}


# -- new signing source ------------------------------------------------------------------------


def test_the_first_sighting_of_a_repository_is_learnt_not_alerted() -> None:
    history = NewSigners(hold=100)
    assert history.observe([verified("registry.example/team/app:1", DEV, CI)], now=1) == []
    assert history.observe([verified("registry.example/team/app:2", CI)], now=2) == []
    assert history.signers("registry.example/team/app") == (
        "dev-team: key key-1",
        "ci: keyless https://ci.example/build from https://oidc",
    )


@pytest.mark.parametrize("new", [OTHER_KEY, CI_OTHER, SignerFact("ops", "key-1", "x")])
def test_a_new_key_identity_or_attestor_for_a_known_repository_alerts(new: SignerFact) -> None:
    history = NewSigners(hold=100)
    history.observe([verified("registry.example/team/app:1", DEV, CI)], now=1)
    (alert,) = history.observe([verified("registry.example/team/app@" + DIGEST, new)], now=5)
    assert alert.name == "SignetUnusualSigningSource"
    assert dict(alert.labels) == {
        "repository": "registry.example/team/app",
        "attestor": new.attestor,
    }
    assert "dev-team: key key-1" in alert.description  # what it was signed with before
    # Seen once, the signer is known: no second alert, and the first resolves `hold` seconds
    # after it was new.
    assert history.observe([verified("registry.example/team/app:3", new)], now=6) == []
    assert history.tick(105) == []
    assert history.tick(106)[0].ends_at == 106


def test_repositories_are_told_apart_and_tags_and_digests_are_the_same_repository() -> None:
    history = NewSigners(hold=100)
    history.observe([verified("registry.example/team/app:1", DEV)], now=1)
    assert history.observe([verified("registry.example/team/app@" + DIGEST, DEV)], now=2) == []
    assert history.observe([verified("registry.example/team/other:1", CI)], now=3) == []
    # The registry's host is case-insensitive: the same repository, the same signer.
    assert history.observe([verified("REGISTRY.example/team/app:1", DEV)], now=4) == []


def test_unverified_transient_and_unparsable_decisions_teach_nothing() -> None:
    history = NewSigners(hold=100)
    history.observe(
        [denied(), transient(), verified("not a reference!", DEV)],
        now=1,
    )
    assert len(history) == 0


def test_memory_is_bounded_least_recently_verified_first_out() -> None:
    history = NewSigners(hold=100, max_repositories=3, max_signers=2)
    for name in ("a", "b", "c"):
        history.observe([verified(f"registry.example/{name}:1", DEV)], now=1)
    history.observe([verified("registry.example/a:2", DEV)], now=2)  # a is recent again
    history.observe([verified("registry.example/d:1", DEV)], now=3)  # b goes
    assert len(history) == 3
    assert history.signers("registry.example/b") == ()
    assert history.signers("registry.example/a") == ("dev-team: key key-1",)
    # b is learnt again, not alerted, when it comes back.
    assert history.observe([verified("registry.example/b:1", CI)], now=4) == []
    # Two signers each: a third one pushes out the longest unseen.
    history.observe([verified("registry.example/a:3", OTHER_KEY)], now=5)
    history.observe([verified("registry.example/a:4", CI)], now=6)
    assert history.signers("registry.example/a") == ("dev-team: key key-2", CI_SIGNER)


CI_SIGNER = "ci: keyless https://ci.example/build from https://oidc"


def test_the_history_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "signers.json"
    history = NewSigners(hold=100)
    history.observe([verified("registry.example/team/app:1", DEV)], now=1)
    assert history.changed
    write(path, history.to_json())
    assert not history.changed
    restarted = NewSigners(hold=100)
    load(restarted, path)
    assert restarted.signers("registry.example/team/app") == ("dev-team: key key-1",)
    assert restarted.observe([verified("registry.example/team/app:2", OTHER_KEY)], now=2) != []
    load(empty := NewSigners(hold=100), tmp_path / "absent.json")
    assert len(empty) == 0
    path.write_text('{"format": 99}')
    with pytest.raises(ValueError, match=r"signers\.json"):
        load(NewSigners(hold=100), path)


def test_alerts_reads_its_signers_file_at_construction(tmp_path: Path) -> None:
    path = tmp_path / "signers.json"
    path.write_text("not json")
    with pytest.raises(ValueError, match=r"signers\.json"):
        Alerts(AlertSettings(signers_file=path))


# -- registry outage ---------------------------------------------------------------------------


def test_a_registry_down_longer_than_the_threshold_fires_and_up_resolves() -> None:
    outage = RegistryOutage(after=300)
    assert outage.state("registry.example", True, now=0) == []
    assert outage.state("registry.example", True, now=200) == []  # still the same outage
    assert outage.tick(300) == []  # exactly the threshold: not longer
    (alert,) = outage.tick(301)
    assert alert.name == "SignetRegistryDown" and dict(alert.labels) == {"host": "registry.example"}
    assert outage.tick(400) == []
    (resolved,) = outage.state("registry.example", False, now=500)
    assert resolved.ends_at == 500
    assert outage.state("registry.example", False, now=501) == []


def test_a_registry_back_up_in_time_never_fires() -> None:
    outage = RegistryOutage(after=300)
    outage.state("registry.example", True, now=0)
    assert outage.state("registry.example", False, now=299) == []
    outage.state("registry.example", True, now=300)  # a new outage starts the count again
    assert outage.tick(599) == []
    assert len(outage.tick(601)) == 1


def test_registry_hosts_are_bounded() -> None:
    outage = RegistryOutage(after=0, max_hosts=2)
    for host in ("a.example", "b.example", "c.example"):
        outage.state(host, True, now=0)
    assert {dict(a.labels)["host"] for a in outage.tick(1)} == {"a.example", "b.example"}


# -- trust reload ------------------------------------------------------------------------------


def test_a_failed_reload_fires_once_and_the_next_success_resolves() -> None:
    reload = TrustReload()
    assert reload.reloaded(True, "", now=0) == []
    (alert,) = reload.reloaded(False, "trust.yaml: attestors[0].keys: expected a list", now=1)
    assert alert.name == "SignetTrustReloadFailed"
    assert alert.description == "trust.yaml: attestors[0].keys: expected a list"
    assert reload.reloaded(False, "again", now=2) == []
    (resolved,) = reload.reloaded(True, "", now=3)
    assert resolved.ends_at == 3 and resolved.starts_at == 1


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"alertmanager_url": "ftp://x"},
        {"webhook_url": "http://"},
        {"denials": 0},
        {"max_backoff": 0.5},
    ],
)
def test_settings_refuse_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AlertSettings(**bad)  # type: ignore[arg-type]
