"""One client's kept-alive requests against two deployments of the app,
side by side: the same operations as `cargo bench -p e2e --bench api`
(create patient, load patient, search by id, create test), timed one after
another, the deployments taking turns round by round so that a noisy moment
on the machine falls on both. Prints p50 and p95 per operation and
deployment, and the ratio of the second's p50 to the first's.

    python3 timings.py REQUESTS ROUNDS SUBSCRIPTION_KEY NAME=BASE_URL NAME=BASE_URL

Standard library only. Every answer's status is checked, so a figure is
never the cost of an error; nothing is asserted about speed.
"""

import http.client
import json
import statistics
import sys
import time
import urllib.parse


class Deployment:
    def __init__(self, base: str, key: str):
        url = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        self.key = key
        self.ids = [self.call("POST", "/patient", patient(i), 201)["id"] for i in range(20)]

    def call(self, method: str, path: str, body: object | None, want: int) -> dict:
        headers = {"ocp-apim-subscription-key": self.key}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        if response.status != want:
            sys.exit(f"{method} {path}: {response.status} (wanted {want}): {payload[:300]!r}")
        return json.loads(payload) if payload else {}

    def operation(self, name: str, i: int) -> None:
        patient_id = self.ids[i % len(self.ids)]
        if name == "create patient":
            self.call("POST", "/patient", patient(i), 201)
        elif name == "load patient":
            self.call("GET", f"/patient/{patient_id}", None, 200)
        elif name == "search by id":
            self.call("POST", "/patient/search", {"id": patient_id}, 200)
        else:
            self.call("POST", f"/patient/{patient_id}/tests", LAB_TEST, 201)


OPERATIONS = ["create patient", "load patient", "search by id", "create test"]
LAB_TEST = {"performer": "Pathology Lab", "orderReference": "ORD-1",
            "observations": [{"id": "obs-1", "code": "2345-7", "measurement": "5.1 mmol/L",
                              "interpretation": "normal", "issued": "2026-11-20T09:30:00.000Z",
                              "status": "final"}]}


def patient(i: int) -> dict:
    return {"firstName": f"Bench{i}", "lastName": "Mark", "gender": "female",
            "dateOfBirth": "1980-02-29", "postCode": "3000"}


def percentile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[max(0, int(len(sorted_ms) * q) - 1)]


def main() -> None:
    requests, rounds, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    named = [arg.split("=", 1) for arg in sys.argv[4:6]]
    deployments = {name: Deployment(url, key) for name, url in named}
    timings = {(name, op): [] for name in deployments for op in OPERATIONS}
    for _ in range(rounds):
        for op in OPERATIONS:
            for name, deployment in deployments.items():
                for i in range(10):  # warm-up: instances, pooled connections
                    deployment.operation(op, i)
                for i in range(requests):
                    started = time.perf_counter()
                    deployment.operation(op, i)
                    timings[(name, op)].append((time.perf_counter() - started) * 1000)
    first, second = list(deployments)
    print(f"one client, kept alive, {requests} requests x {rounds} rounds per operation and deployment")
    print(f"{'operation':<16} {first + ' p50':>14} {first + ' p95':>14} {second + ' p50':>14} "
          f"{second + ' p95':>14} {second + '/' + first:>16}")
    for op in OPERATIONS:
        a = sorted(timings[(first, op)])
        b = sorted(timings[(second, op)])
        a50, b50 = statistics.median(a), statistics.median(b)
        print(f"{op:<16} {a50:>11.2f} ms {percentile(a, 0.95):>11.2f} ms {b50:>11.2f} ms "
              f"{percentile(b, 0.95):>11.2f} ms {b50 / a50:>15.2f}x")


if __name__ == "__main__":
    main()
