"""env/scripts/rotate-key.sh against fake `az`/`kubectl` (fake_cli.py).

Checks the zero-downtime invariant after every single write, that the old key
ends up revoked, that --dry-run writes nothing, and that no secret value ever
reaches the script's output.
"""

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "rotate-key.sh"
FAKE = Path(__file__).resolve().parent / "fake_cli.py"
VAULT = "kv-test"


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture
def world(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("az", "kubectl"):
        shim = bindir / tool
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "{tool}" "$@"\n')
        shim.chmod(0o755)
    state = {
        "vault": VAULT,
        "secrets": {
            "patientapiprimarykey": "P-old-primary-0123456789abcdef",
            "patientapisecondarykey": "P-old-secondary-0123456789abcdef",
            "patientapikey": "P-old-primary-0123456789abcdef",
            "auditapiprimarykey": "A-old-primary-0123456789abcdef",
            "auditapisecondarykey": "A-old-secondary-0123456789abcdef",
            "auditapikey": "A-old-primary-0123456789abcdef",
            "cosmoskey": "C-old-primary-0123456789abcdef==",
            "subscriptions": json.dumps([
                {"name": "load-test", "primaryKeySha256": sha("sub-primary"), "secondaryKeySha256": sha("sub-secondary"),
                 "scopes": ["patients.read"], "rateLimit": {"calls": 1, "periodSeconds": 1},
                 "quota": {"calls": 1, "periodSeconds": 1}},
                {"name": "other", "primaryKeySha256": sha("o1"), "secondaryKeySha256": sha("o2"),
                 "scopes": ["audit.read"], "rateLimit": {"calls": 1, "periodSeconds": 1},
                 "quota": {"calls": 1, "periodSeconds": 1}},
            ]),
        },
        "cosmos": {"primary": "C-old-primary-0123456789abcdef==", "secondary": "C-old-secondary-0123456789abcdef=="},
    }
    (tmp_path / "state.json").write_text(json.dumps(state))
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}",
               FAKE_STATE=str(tmp_path / "state.json"), FAKE_LOG=str(tmp_path / "log.jsonl"))

    class World:
        path = tmp_path

        def run(self, *args):
            return subprocess.run(["bash", str(SCRIPT), "--vault", VAULT, *args], env=env,
                                  capture_output=True, text=True, timeout=60)

        def state(self):
            return json.loads((tmp_path / "state.json").read_text())

        def log(self):
            log = tmp_path / "log.jsonl"
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    world = World()
    world.initial = state
    return world


def all_values(state):
    return set(state["secrets"].values()) | set(state["cosmos"].values())


def assert_no_secret_in_output(result, *states):
    output = result.stdout + result.stderr
    for state in states:
        for value in all_values(state):
            for piece in [value] + [line for line in value.splitlines() if len(line) > 8]:
                assert piece not in output, "a secret value reached the output"


@pytest.mark.parametrize("svc", ["patientapi", "auditapi"])
def test_host_key_rotation_keeps_callers_accepted_and_revokes_the_old_key(world, svc):
    old = world.initial["secrets"][f"{svc}key"]
    result = world.run("--rollout", "patient-records", "host-key", svc)
    assert result.returncode == 0, result.stderr
    writes = [e for e in world.log() if e["call"] == "secret set"]
    assert len(writes) == 3
    for entry in writes:
        s = entry["state"]["secrets"]
        assert s[f"{svc}key"] in (s[f"{svc}primarykey"], s[f"{svc}secondarykey"]), "a caller key was not accepted"
        assert s[f"{svc}primarykey"] != s[f"{svc}secondarykey"]
    final = world.state()["secrets"]
    assert final[f"{svc}key"] == final[f"{svc}secondarykey"]
    assert old not in (final[f"{svc}primarykey"], final[f"{svc}secondarykey"], final[f"{svc}key"])
    assert world.initial["secrets"][f"{svc}secondarykey"] not in final.values()
    # every write is followed by a restart and a wait for the rollout
    calls = [e["call"] for e in world.log()]
    assert calls.count("kubectl rollout restart deployment/patient-records") == 3
    assert calls.count("kubectl rollout status deployment/patient-records --timeout=15m") == 3
    assert calls[-1].startswith("kubectl rollout status")
    assert_no_secret_in_output(result, world.initial, world.state())


def test_second_rotation_alternates_slots(world):
    assert world.run("--rollout", "d", "host-key", "patientapi").returncode == 0
    first = world.state()["secrets"]["patientapikey"]
    assert world.run("--rollout", "d", "host-key", "patientapi").returncode == 0
    final = world.state()["secrets"]
    assert final["patientapikey"] == final["patientapiprimarykey"]
    assert first not in final.values()


def test_switch_back_ends_on_the_primary_slot(world):
    result = world.run("--rollout", "d", "host-key", "patientapi", "--strategy", "switch-back")
    assert result.returncode == 0, result.stderr
    for entry in [e for e in world.log() if e["call"] == "secret set"]:
        s = entry["state"]["secrets"]
        assert s["patientapikey"] in (s["patientapiprimarykey"], s["patientapisecondarykey"])
    final = world.state()["secrets"]
    assert final["patientapikey"] == final["patientapiprimarykey"]
    assert not {world.initial["secrets"]["patientapiprimarykey"],
                world.initial["secrets"]["patientapisecondarykey"]} & set(final.values())
    assert_no_secret_in_output(result, world.initial, world.state())


def test_dry_run_changes_nothing(world):
    result = world.run("--dry-run", "--rollout", "d", "host-key", "patientapi")
    assert result.returncode == 0, result.stderr
    assert "would set secret 'patientapisecondarykey'" in result.stdout
    assert world.state() == world.initial
    assert world.log() == []
    assert_no_secret_in_output(result, world.initial)


def test_refuses_when_callers_already_use_an_unaccepted_key(world):
    state = world.state()
    state["secrets"]["auditapikey"] = "something-else-entirely"
    (world.path / "state.json").write_text(json.dumps(state))
    result = world.run("--pickup-wait", "0", "host-key", "auditapi")
    assert result.returncode != 0
    assert "matches neither" in result.stderr
    assert world.log() == []


def test_subscription_slot_rotation_writes_the_key_only_to_the_handover_file(world):
    key_file = world.path / "load-test.key"
    result = world.run("--pickup-wait", "0", "subscription", "load-test", "--slot", "secondary",
                       "--key-out", str(key_file))
    assert result.returncode == 0, result.stderr
    new_key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    subs = json.loads(world.state()["secrets"]["subscriptions"])
    before = json.loads(world.initial["secrets"]["subscriptions"])
    assert subs[0]["secondaryKeySha256"] == sha(new_key)
    assert subs[0]["primaryKeySha256"] == before[0]["primaryKeySha256"], "the slot in use must keep working"
    assert subs[1] == before[1], "other subscriptions untouched"
    assert new_key not in result.stdout + result.stderr
    assert_no_secret_in_output(result, world.initial)


def test_subscription_rotation_needs_a_handover_file(world):
    result = world.run("subscription", "load-test", "--slot", "primary")
    assert result.returncode == 2
    assert "--key-out" in result.stderr
    assert world.log() == []


def test_unknown_subscription_changes_nothing(world, tmp_path):
    result = world.run("--pickup-wait", "0", "subscription", "nobody", "--slot", "primary",
                       "--key-out", str(tmp_path / "k"))
    assert result.returncode != 0
    assert world.state() == world.initial


def test_cosmos_rotation_switches_the_app_before_revoking_its_key(world):
    result = world.run("--rollout", "patient-records", "cosmos", "--cosmos-account", "acct",
                       "--resource-group", "rg")
    assert result.returncode == 0, result.stderr
    steps = [e for e in world.log() if e["call"] in ("secret set", "cosmos regenerate")]
    assert [e.get("kind", e.get("name")) for e in steps] == ["secondary", "cosmoskey", "primary"]
    for entry in steps:
        s = entry["state"]
        assert s["secrets"]["cosmoskey"] in s["cosmos"].values(), "the app's key stopped working"
    final = world.state()
    assert final["secrets"]["cosmoskey"] == final["cosmos"]["secondary"]
    assert world.initial["cosmos"]["primary"] not in final["cosmos"].values()
    # the app restarts after it switched, before its old key is revoked
    order = [e["call"] for e in world.log()]
    switch = next(i for i, e in enumerate(world.log()) if e.get("name") == "cosmoskey")
    revoke = next(i for i, e in enumerate(world.log()) if e.get("kind") == "primary")
    assert any(c.startswith("kubectl rollout status") for c in order[switch:revoke])
    assert_no_secret_in_output(result, world.initial, final)


@pytest.mark.parametrize("args,message", [
    (["host-key", "gateway"], "patientapi or auditapi"),
    (["host-key", "patientapi", "--strategy", "sometimes"], "keep or switch-back"),
    (["cosmos"], "--cosmos-account"),
    (["--rollout", "Bad_Name", "host-key", "patientapi"], "--rollout"),
    (["--bogus"], "unknown argument"),
])
def test_bad_arguments_are_refused_with_a_clear_error(world, args, message):
    result = world.run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert world.log() == []
