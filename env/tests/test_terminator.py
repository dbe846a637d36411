"""The mTLS terminator, for real: the shared template rendered by
env/scripts/render-terminator.sh, run by nginx on loopback in front of a
stand-in upstream, and called with no certificate, a certificate from
another CA, the other caller's certificate, and the right one. Then the
two layers together, as in the split deployment: the terminator in front
of audit-api (split/audit-api.toml on the test host CLI), where the right
certificate with a wrong host key, and the right host key without the
right certificate, are each refused.

Needs nginx, envsubst and openssl (CI installs nginx-light and
gettext-base); skipped without them. Only loopback is used.
"""

import base64
import http.server
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import envlib

RENDER = envlib.ENV_DIR / "scripts" / "render-terminator.sh"
TOOLS = ("nginx", "envsubst", "openssl")

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in TOOLS), reason=f"needs {', '.join(TOOLS)}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN={name}", "-days", "1", cwd=d)


def make_leaf(d: Path, name: str, cn: str, ca: str) -> None:
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    (d / f"{name}.ext").write_text(f"subjectAltName=DNS:{cn}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext", cwd=d)


class Upstream(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        Upstream.seen.append(self.path)
        body = b'{"reached":true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        # Echoes the body back, so a large body crosses the hop both ways.
        body = self.rfile.read(int(self.headers["content-length"]))
        Upstream.seen.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "application/octet-stream")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("mtls")
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    make_leaf(d, "server", "localhost", "ca")
    make_leaf(d, "gateway", "gateway", "ca")
    make_leaf(d, "patient-api", "patient-api", "ca")
    make_leaf(d, "forged-gateway", "gateway", "other-ca")
    return d


def wait_for_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None:
            output = proc.stderr.read().decode() if proc.stderr else "(see its error.log)"
            pytest.fail(f"{what} did not start: {output}")
        time.sleep(0.05)
    pytest.fail(f"{what} did not listen on {port}")


def start_terminator(d: Path, name: str, allowed_cn: str, upstream: str):
    """nginx from the shared template, its files under `d/name`; (process, port)."""
    work = d / name
    work.mkdir()
    port = free_port()
    values = work / "values.env"
    values.write_text(
        f"LISTEN_PORT={port}\nSERVER_NAME=localhost\nSERVER_CERT={d}/server.crt\n"
        f"SERVER_KEY={d}/server.key\nCLIENT_CA={d}/ca.crt\nALLOWED_CLIENT_CN={allowed_cn}\n"
        f"UPSTREAM={upstream}\n")
    rendered = subprocess.run(["bash", str(RENDER), str(values)], capture_output=True, text=True, check=True)
    conf = work / "nginx.conf"
    # The template keeps its temporary files under /tmp (the pod's emptyDir);
    # here they go under this test's own directory.
    conf.write_text(re.sub(r"(_path|pid) /tmp/", rf"\1 {work}/", rendered.stdout))
    # nginx's error log goes to a file the tests can read while it runs.
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=(work / "error.log").open("wb"))
    wait_for_port(port, proc, "nginx")
    return proc, port


@pytest.fixture(scope="module")
def terminator(certs):
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    proc, port = start_terminator(certs, "stand-in", "gateway",
                                  f"http://127.0.0.1:{upstream.server_address[1]}")
    yield certs, port
    proc.terminate()
    proc.wait(timeout=10)
    upstream.shutdown()


def call(d: Path, port: int, cert: str | None, path: str = "/patient/x",
         headers: dict[str, str] | None = None) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(d / "ca.crt"))
    if cert:
        context.load_cert_chain(str(d / f"{cert}.crt"), str(d / f"{cert}.key"))
    request = urllib.request.Request(f"https://localhost:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.mark.parametrize("cert, status, detail", [
    (None, 401, "client certificate from the private CA is required"),
    ("forged-gateway", 401, "client certificate from the private CA is required"),
    ("patient-api", 403, "may not call this service"),
])
def test_the_hop_refuses_every_caller_but_the_one(terminator, cert, status, detail):
    d, port = terminator
    before = len(Upstream.seen)
    got, body = call(d, port, cert)
    assert (got, detail in body) == (status, True), body
    assert '"status":%d' % status in body  # problem+json, not nginx's HTML page
    assert len(Upstream.seen) == before, "a refused call reached the service"


def test_the_allowed_caller_reaches_the_service(terminator):
    d, port = terminator
    before = len(Upstream.seen)
    assert call(d, port, "gateway") == (200, '{"reached":true}')
    assert Upstream.seen[before:] == ["/patient/x"]


def test_large_bodies_cross_the_hop_in_memory_and_never_touch_the_disk(terminator):
    # 1.5 MiB, above nginx's default buffers (16 KiB for a body, 64 KiB for
    # an answer) and below the 2 MiB allowed: patient data must not be
    # written to a temporary file. nginx warns in its error log each time it
    # does ("... is buffered to a temporary file"), and deletes the file
    # afterwards, so the log is the witness.
    d, port = terminator
    payload = os.urandom(1536 * 1024)
    context = ssl.create_default_context(cafile=str(d / "ca.crt"))
    context.load_cert_chain(str(d / "gateway.crt"), str(d / "gateway.key"))
    request = urllib.request.Request(f"https://localhost:{port}/auditrecords", data=payload, method="POST")
    with urllib.request.urlopen(request, context=context, timeout=30) as r:
        assert (r.status, r.read() == payload) == (200, True)
    log = (d / "stand-in" / "error.log").read_text()
    assert "temporary file" not in log, log


# --- the two layers together: certificate at the terminator, host key at the component

HOST_BIN = envlib.REPO_ROOT / "target" / "debug" / "spin-test-host"
AUDIT_WASM = envlib.REPO_ROOT / "target" / "wasm32-wasip2" / "release" / "audit_api.wasm"


@pytest.fixture(scope="module")
def audit_api_behind_terminator(certs):
    """split/audit-api.toml on the test host CLI (loopback), behind a
    terminator whose one allowed caller is patient-api, as in the split
    deployment. The store endpoint answers nothing: the calls here are
    decided before the store."""
    if not (HOST_BIN.exists() and AUDIT_WASM.exists()):
        pytest.skip("needs the test host and the components built "
                    "(cargo build -p spin-test-host; scripts/test builds both first)")
    key = secrets.token_urlsafe(32)
    app_port = free_port()
    env = dict(os.environ,
               SPIN_VARIABLE_AUDITAPIPRIMARYKEY=key,
               SPIN_VARIABLE_AUDITAPISECONDARYKEY=secrets.token_urlsafe(32),
               SPIN_VARIABLE_COSMOSKEY=base64.b64encode(secrets.token_bytes(64)).decode(),
               SPIN_VARIABLE_COSMOSENDPOINT=f"http://127.0.0.1:{free_port()}")
    app = subprocess.Popen([str(HOST_BIN), "--manifest", str(envlib.REPO_ROOT / "split" / "audit-api.toml"),
                            "--listen", f"127.0.0.1:{app_port}", "--state-dir", str(certs / "audit-state")],
                           cwd=certs, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_port(app_port, app, "the test host")
    proc, port = start_terminator(certs, "audit-api", "patient-api", f"http://127.0.0.1:{app_port}")
    yield certs, port, key
    for p in (proc, app):
        p.terminate()
        p.wait(timeout=10)


# A read the component refuses (400: no resource named) once it has let
# the caller in, before any store call.
RECORDS = "/audit/records"


def test_the_right_certificate_with_a_wrong_host_key_is_refused_by_the_component(audit_api_behind_terminator):
    d, port, _ = audit_api_behind_terminator
    for headers in ({}, {"x-functions-key": "not-the-key"}):
        status, body = call(d, port, "patient-api", RECORDS, headers)
        assert status == 401, body
        assert '"status":401' in body and "not-the-key" not in body
        # audit-api's own refusal, not the terminator's.
        assert "client certificate" not in body and "correlationId" in body


def test_the_right_host_key_without_the_right_certificate_is_refused_at_the_hop(audit_api_behind_terminator):
    d, port, key = audit_api_behind_terminator
    for cert, status in ((None, 401), ("forged-gateway", 401), ("gateway", 403)):
        got, body = call(d, port, cert, RECORDS, {"x-functions-key": key})
        assert got == status, (cert, body)
        assert key not in body


def test_the_right_certificate_and_host_key_reach_the_component(audit_api_behind_terminator):
    d, port, key = audit_api_behind_terminator
    status, body = call(d, port, "patient-api", RECORDS, {"x-functions-key": key})
    assert status == 400, body
    assert "resourceType" in body
