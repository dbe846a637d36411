"""The developer portal in headless Chromium (run by tests/portal/run).

Environment: PORTAL_BASE_URL (the app, on loopback), PORTAL_SUBSCRIPTION_KEY
(a valid key with patients.write), PORTAL_OUT (screenshots),
PORTAL_PROFILE_DIR (a fresh Chromium profile directory).

Prints one line per check and `portal browser: N passed, M failed`; exits
non-zero on any failure. Never prints the key.
"""

import json
import os
import re
import sys
import urllib.request
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["PORTAL_BASE_URL"].rstrip("/")
KEY = os.environ["PORTAL_SUBSCRIPTION_KEY"]
OUT = os.environ["PORTAL_OUT"]
PROFILE = os.environ["PORTAL_PROFILE_DIR"]
ORIGIN = "{0.scheme}://{0.netloc}".format(urlsplit(BASE))
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
WRONG_KEY = "not-a-valid-subscription-key"

passed = 0
failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"  ok    {what}")
    else:
        failed += 1
        print(f"  FAIL  {what}{': ' + detail if detail else ''}")
    return ok


def redact(text):
    return str(text).replace(KEY, "<key>")


# --- the headers, as the server sends them ------------------------------------

with urllib.request.urlopen(BASE + "/portal/", timeout=30) as response:
    headers = response.headers
    csp = headers.get("content-security-policy", "")
directives = {d.strip() for d in csp.split(";")}
expected = {
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self'",
    "frame-ancestors 'none'",
}
check(expected <= directives, "CSP allows only this origin", csp)
check(not any(w in csp for w in ("unsafe-inline", "unsafe-eval", "data:", "http")), "CSP allows nothing inline, no eval", csp)
check(headers.get("x-content-type-options") == "nosniff", "X-Content-Type-Options: nosniff")
check(headers.get("referrer-policy") == "no-referrer", "Referrer-Policy: no-referrer")

with urllib.request.urlopen(BASE + "/openapi.json", timeout=30) as response:
    document = json.load(response)
operation_count = sum(
    1
    for item in document["paths"].values()
    for method in item
    if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace")
)

# --- the browser --------------------------------------------------------------

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1800",
    f"--user-data-dir={PROFILE}",
):
    options.add_argument(flag)
options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
driver = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))


def requested_urls():
    """Every request the browser sent since the last call: [(url, document)]."""
    sent = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            params = message["params"]
            sent.append((params["request"]["url"], params.get("documentURL", "")))
    return sent


def foreign(sent):
    """Requests that left this origin: any the portal's page made elsewhere,
    and any network request at all (http, https, ws) to another origin. The
    browser's own chrome:// pages (the first tab) make none on the network."""
    out = []
    for url, document in sent:
        mine = document.startswith(ORIGIN + "/")
        network = url.split(":", 1)[0] in ("http", "https", "ws", "wss")
        if (mine or network) and not url.startswith(ORIGIN + "/"):
            out.append(url)
    return out


def errors():
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def try_operation(operation_id):
    """Opens the operation's "try it", sends it, returns (status, result element)."""
    section = driver.find_element(By.ID, f"{operation_id}-try")
    if section.get_attribute("open") is None:
        summary = section.find_element(By.TAG_NAME, "summary")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary)
        summary.click()
    result = driver.find_element(By.ID, f"{operation_id}-result")
    driver.execute_script("arguments[0].replaceChildren()", result)
    send = driver.find_element(By.ID, f"{operation_id}-send")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", send)
    send.click()
    status = WebDriverWait(driver, 30).until(
        lambda d: d.find_element(By.ID, f"{operation_id}-result").find_elements(By.CSS_SELECTOR, ".result-status")
    )[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", status)
    return int(status.get_attribute("data-status")), result


def set_key(value):
    field = driver.find_element(By.ID, "subscription-key")
    field.clear()
    field.send_keys(value)


try:
    driver.get(BASE + "/portal/")
    try:
        ready = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    except TimeoutException:
        ready = None
    check(ready == str(operation_count), f"the page renders every operation of /openapi.json ({operation_count})", f"data-ready={ready}")
    load_errors = errors()
    check(not load_errors, "no console error while loading", redact(load_errors))
    load_sent = requested_urls()
    page_requests = [u for u, _ in load_sent if u.startswith(ORIGIN + "/")]
    check(
        page_requests and not foreign(load_sent),
        f"every request goes to {ORIGIN} ({len(page_requests)} requests)",
        redact(foreign(load_sent)),
    )
    check(ORIGIN + "/openapi.json" in page_requests, "the page reads /openapi.json from the gateway")
    driver.save_screenshot(os.path.join(OUT, "portal-loaded.png"))

    body = driver.find_element(By.ID, "createPatient-body").get_attribute("value")
    example = json.loads(body)
    check(example.get("firstName") == "Ada", "POST /patient is prefilled with the contract's example")
    examples_shown = driver.find_elements(By.CSS_SELECTOR, "#op-createPatient .example pre, #op-createTest .example pre")
    check(len(examples_shown) == 2, "the patient and test examples are shown", str(len(examples_shown)))

    # The valid key: 201 and the new id.
    set_key(KEY)
    status, result = try_operation("createPatient")
    ids = [e.text for e in result.find_elements(By.CSS_SELECTOR, ".created-id")]
    check(status == 201, "POST /patient with the key and the example shows 201", str(status))
    check(len(ids) == 1 and GUID.match(ids[0]), "the new patient's id is shown", redact(ids))
    driver.save_screenshot(os.path.join(OUT, "portal-created.png"))

    # A wrong key: 401 problem+json.
    set_key(WRONG_KEY)
    status, result = try_operation("createPatient")
    status_line = result.find_element(By.CSS_SELECTOR, ".result-status").text
    shown = json.loads(result.find_element(By.CSS_SELECTOR, ".result-body").text)
    check(status == 401, "POST /patient with a wrong key shows 401", str(status))
    check("application/problem+json" in status_line and shown.get("status") == 401, "the 401 is shown as problem+json", redact(status_line))
    check(bool(result.find_elements(By.CSS_SELECTOR, ".problem")), "the problem's title and detail are shown")
    driver.save_screenshot(os.path.join(OUT, "portal-unauthorized.png"))

    # Afterwards: the only console errors are the 401 the browser itself
    # reports for the failed request; nothing left this origin; the key was
    # never in an address, a cookie or storage.
    later = [e for e in errors() if "status of 401" not in e.get("message", "")]
    check(not later, "no other console error while trying", redact(later))
    sent = load_sent + requested_urls()
    check(not foreign(sent), "still no request to another origin", redact(foreign(sent)))
    check(not any(KEY in u or WRONG_KEY in u for u, _ in sent), "no key in any requested address")
    cookie, local, session, href = driver.execute_script(
        "return [document.cookie, localStorage.length, sessionStorage.length, location.href]"
    )
    check(cookie == "" and local == 0 and session == 0, "no cookie, nothing in local or session storage")
    check(KEY not in href and WRONG_KEY not in href, "no key in the page's address")
finally:
    driver.quit()

print(f"  screenshots: {OUT}/portal-loaded.png, portal-created.png, portal-unauthorized.png")
print(f"portal browser: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
