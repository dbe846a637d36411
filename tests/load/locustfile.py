"""Load test of the public API, with the original system's mix of tasks.

Runs against any base URL with a subscription key:

    LOAD_SUBSCRIPTION_KEY=<key> locust -f tests/load/locustfile.py --host http://127.0.0.1:3000

Every task checks the status it expects (an invalid patient expects 400, an
unknown id 404), so "failures" counts only unexpected answers. Rate-limit
answers (429) are failures too: give the subscription a limit above the load.

Each user waits 0.05-0.2 s between requests, as the original mix did, so N
users send at most N / (0.125 s + mean latency) requests per second: 160 for
20 users even at zero latency. LOAD_THINK_TIME=0 drops the wait, so the
figure is what the app serves to N clients back to back (its capacity).
"""

import os
import random
import string
import uuid

from locust import HttpUser, between, constant, task

KEY = os.environ.get("LOAD_SUBSCRIPTION_KEY", "")
THINK_TIME = os.environ.get("LOAD_THINK_TIME", "original")
if THINK_TIME not in ("original", "0"):
    raise SystemExit(f"LOAD_THINK_TIME must be 'original' or '0', not {THINK_TIME!r}")


def random_name(n=8):
    return "".join(random.choice(string.ascii_letters) for _ in range(n))


def new_patient():
    first, last = random_name(), random_name(10)
    return {
        "firstName": first,
        "lastName": last,
        "fullName": f"{first} {last}",
        "gender": random.choice(["male", "female", "other", "unknown"]),
        "dateOfBirth": f"{random.randint(1930, 2020)}-{random.randint(1, 12):02d}-{random.randint(1, 28):02d}",
        "postCode": f"{random.randint(1000, 9999)}",
        "insuranceNumber": f"INS-{random.randint(100000, 999999)}",
        "preferredContactNumber": f"+61 4{random.randint(10000000, 99999999)}",
    }


def new_test():
    return {
        "performer": "Pathology Lab " + random_name(4),
        "orderReference": "ORD-" + str(random.randint(10000, 99999)),
        "observations": [
            {
                "id": str(uuid.uuid4()),
                "code": "2345-7",
                "measurement": f"{random.uniform(3.5, 9.0):.1f} mmol/L",
                "interpretation": random.choice(["normal", "high", "low"]),
                "issued": "2026-11-20T09:30:00.000Z",
                "status": "final",
            }
        ],
    }


class ApiUser(HttpUser):
    wait_time = constant(0) if THINK_TIME == "0" else between(0.05, 0.2)

    def on_start(self):
        self.client.headers.update({"Ocp-Apim-Subscription-Key": KEY})
        self.patients = []  # ids this user created
        self.tests = []  # (patient id, test id)

    def expect(self, response, status):
        if response.status_code == status:
            response.success()
        else:
            response.failure(f"expected {status}, got {response.status_code}: {response.text[:200]}")

    def some_patient(self):
        if not self.patients:
            self.create_patient_valid()
        return random.choice(self.patients) if self.patients else None

    def create_patient_valid(self):
        with self.client.post("/patient", json=new_patient(), name="create patient", catch_response=True) as r:
            self.expect(r, 201)
            if r.status_code == 201:
                self.patients.append(r.json()["id"])

    @task(10)
    def create_patient(self):
        if random.random() < 0.9:
            self.create_patient_valid()
        else:
            bad = new_patient()
            bad["postCode"] = "123"  # not 4 characters
            with self.client.post("/patient", json=bad, name="create patient (invalid)", catch_response=True) as r:
                self.expect(r, 400)

    @task(10)
    def load_patient(self):
        if random.random() < 0.9:
            pid = self.some_patient()
            if pid:
                with self.client.get(f"/patient/{pid}", name="load patient", catch_response=True) as r:
                    self.expect(r, 200)
        else:
            with self.client.get(f"/patient/{uuid.uuid4()}", name="load patient (unknown)", catch_response=True) as r:
                self.expect(r, 404)

    @task(5)
    def update_patient(self):
        pid = self.some_patient()
        if not pid:
            return
        with self.client.get(f"/patient/{pid}", name="update patient: load", catch_response=True) as r:
            self.expect(r, 200)
            if r.status_code != 200:
                return
            patient, etag = r.json(), r.headers.get("ETag")
        patient.pop("lastUpdated", None)
        patient["preferredContactNumber"] = f"+61 4{random.randint(10000000, 99999999)}"
        headers = {"If-Match": etag} if etag else {}
        with self.client.put(f"/patient/{pid}", json=patient, headers=headers, name="update patient: put", catch_response=True) as r:
            self.expect(r, 200)

    @task(5)
    def search(self):
        pid = self.some_patient()
        if pid and random.random() < 0.5:
            with self.client.post("/patient/search", json={"id": pid}, name="search by id", catch_response=True) as r:
                self.expect(r, 200)
        else:
            with self.client.post("/patient/search?limit=50", json={}, name="search all", catch_response=True) as r:
                self.expect(r, 200)

    @task(5)
    def create_test(self):
        pid = self.some_patient()
        if not pid:
            return
        with self.client.post(f"/patient/{pid}/tests", json=new_test(), name="create test", catch_response=True) as r:
            self.expect(r, 201)
            if r.status_code == 201:
                self.tests.append((pid, r.json()["id"]))

    @task(5)
    def list_tests(self):
        if not self.tests:
            return
        pid, _ = random.choice(self.tests)
        with self.client.get(f"/patient/{pid}/tests", name="list tests", catch_response=True) as r:
            self.expect(r, 200)

    @task(5)
    def load_test(self):
        if not self.tests:
            return
        pid, tid = random.choice(self.tests)
        with self.client.get(f"/patient/{pid}/tests/{tid}", name="load test", catch_response=True) as r:
            self.expect(r, 200)
