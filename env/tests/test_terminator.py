"""The mTLS terminator, for real: the shared template rendered by
env/scripts/render-terminator.sh, run by nginx on loopback in front of a
stand-in upstream, and called with no certificate, a certificate from
another CA, the other caller's certificate, and the right one.

Needs nginx, envsubst and openssl (CI installs nginx-light and
gettext-base); skipped without them. Only loopback is used.
"""

import http.server
import re
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

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def terminator(tmp_path_factory):
    d = tmp_path_factory.mktemp("mtls")
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    make_leaf(d, "server", "localhost", "ca")
    make_leaf(d, "gateway", "gateway", "ca")
    make_leaf(d, "patient-api", "patient-api", "ca")
    make_leaf(d, "forged-gateway", "gateway", "other-ca")

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    values = d / "values.env"
    values.write_text(
        f"LISTEN_PORT={port}\nSERVER_NAME=localhost\nSERVER_CERT={d}/server.crt\n"
        f"SERVER_KEY={d}/server.key\nCLIENT_CA={d}/ca.crt\nALLOWED_CLIENT_CN=gateway\n"
        f"UPSTREAM=http://127.0.0.1:{upstream.server_address[1]}\n")
    rendered = subprocess.run(["bash", str(RENDER), str(values)], capture_output=True, text=True, check=True)
    conf = d / "nginx.conf"
    # The template keeps its temporary files under /tmp (the pod's emptyDir);
    # here they go under this test's own directory.
    conf.write_text(re.sub(r"(_path|pid) /tmp/", rf"\1 {d}/", rendered.stdout))
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(d), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None:
            pytest.fail(f"nginx did not start: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    yield d, port
    proc.terminate()
    proc.wait(timeout=10)
    upstream.shutdown()


def call(d: Path, port: int, cert: str | None) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(d / "ca.crt"))
    if cert:
        context.load_cert_chain(str(d / f"{cert}.crt"), str(d / f"{cert}.key"))
    request = urllib.request.Request(f"https://localhost:{port}/patient/x")
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
