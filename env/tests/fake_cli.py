"""Stand-ins for `az` and `kubectl` used by test_rotate_key.py.

State (Key Vault secrets, Cosmos DB master keys) lives in a JSON file named by
FAKE_STATE; every call is appended to FAKE_LOG with, after each write, a
snapshot of the state, so tests can check invariants at every step.
"""

import json
import os
import secrets
import sys


def load():
    with open(os.environ["FAKE_STATE"]) as f:
        return json.load(f)


def save(state):
    with open(os.environ["FAKE_STATE"], "w") as f:
        json.dump(state, f)


def log(entry):
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(json.dumps(entry) + "\n")


def opt(args, name):
    return args[args.index(name) + 1]


def az(args):
    state = load()
    if args[:3] == ["keyvault", "secret", "show"]:
        assert opt(args, "--vault-name") == state["vault"], "wrong vault"
        name = opt(args, "--name")
        if name not in state["secrets"]:
            sys.stderr.write(f"SecretNotFound: {name}\n")
            return 3
        sys.stdout.write(state["secrets"][name] + "\n")
        return 0
    if args[:3] == ["keyvault", "secret", "set"]:
        assert "--value" not in args, "secret value on the command line"
        name = opt(args, "--name")
        assert opt(args, "--encoding") == "utf-8"
        assert "--expires" in args
        with open(opt(args, "--file")) as f:
            state["secrets"][name] = f.read()
        save(state)
        log({"call": "secret set", "name": name, "state": state})
        return 0
    if args[:3] == ["cosmosdb", "keys", "list"]:
        query = opt(args, "--query")
        sys.stdout.write(state["cosmos"][query.replace("MasterKey", "")] + "\n")
        return 0
    if args[:3] == ["cosmosdb", "keys", "regenerate"]:
        kind = opt(args, "--key-kind")
        state["cosmos"][kind] = secrets.token_urlsafe(48)
        save(state)
        log({"call": "cosmos regenerate", "kind": kind, "state": state})
        return 0
    sys.stderr.write(f"fake az: unexpected {args}\n")
    return 9


def kubectl(args):
    if "--namespace" in args:
        i = args.index("--namespace")
        assert args[i + 1] == "patient-records", "wrong namespace"
        args = args[:i] + args[i + 2:]
    log({"call": "kubectl " + " ".join(args)})
    return 0


if __name__ == "__main__":
    tool = os.path.basename(sys.argv[1])
    sys.exit(az(sys.argv[2:]) if tool == "az" else kubectl(sys.argv[2:]))
