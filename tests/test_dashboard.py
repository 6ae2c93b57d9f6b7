"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright) against a real
system: sign in, spawn from the form, a live log and status, stop, the machine panel, paging, and
everything a worker or user wrote shown as text. Each page is saved as a screenshot in
build/dashboard-screenshots/. No console error is allowed."""
import os
import re
import shutil

import pytest

from conftest import FINAL, System, wait_for

pytestmark = pytest.mark.browser
expect = None   # playwright's assertions, set by the browser fixture (Playwright may not be installed)

SHOTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "dashboard-screenshots")
CHROMIUM = next((path for path in (shutil.which("chromium"), shutil.which("chromium-browser"),
                                   "/usr/lib/chromium/chromium") if path and os.path.exists(path)), None)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    global expect
    expect = sync_api.expect
    if CHROMIUM is None:
        pytest.skip("no Chromium (Debian: apt-get install chromium)")
    driver = sync_api.sync_playwright().start()
    launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=["--no-sandbox"] if os.geteuid() == 0 else [])
    yield launched
    launched.close()
    driver.stop()


@pytest.fixture(scope="module")
def dash():
    system = System().start()
    yield system
    system.stop()


@pytest.fixture
def page(browser, dash, request):
    """A fresh browser tab on the dashboard, signed in; it fails the test on any console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors, urls = [], []
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("request", lambda sent: urls.append(sent.url))
    tab.goto("http://127.0.0.1:%d/" % dash.port)
    tab.fill("#key", dash.key)
    tab.click("#login-button")
    tab.wait_for_selector("#sessions")
    tab.errors, tab.urls = errors, urls
    yield tab
    context.close()
    assert errors == [], errors


def shot(tab, name):
    os.makedirs(SHOTS, exist_ok=True)
    tab.screenshot(path=os.path.join(SHOTS, name + ".png"), full_page=True)


def test_sign_in_spawn_from_the_form_watch_the_log_live_and_stop(page, dash):
    shot(page, "sessions")
    page.goto(page.url.split("#")[0] + "#/spawn")
    page.wait_for_selector("#spawn")
    page.select_option("#spawn-runtime", "shell")
    page.fill("#spawn-task", "for i in 1 2 3; do echo line-$i; sleep 0.3; done; echo $SESSION_ID-done; sleep 60")
    page.fill("#spawn-name", "from the form")
    page.fill("#spawn-labels", "team=web, ticket=7")
    shot(page, "spawn")
    page.click("#spawn-button")
    page.wait_for_selector("#log")
    sid = page.url.rsplit("/", 1)[1]
    expect(page.locator("#log")).to_contain_text("-done", timeout=30000)
    log = page.text_content("#log")
    assert log.index("line-1") < log.index("line-2") < log.index("line-3")
    expect(page.locator("#status")).to_have_text("running")
    record = dash.rpc().sessions.getSession(sid)
    assert record["name"] == "from the form" and record["labels"] == {"team": "web", "ticket": "7"}
    shot(page, "session")
    page.click("#stop")
    expect(page.locator("#status")).to_have_text("stopped", timeout=30000)
    assert dash.rpc().sessions.getSession(sid)["status"] == "stopped"
    page.goto(page.url.split("#")[0] + "#/")
    row = page.wait_for_selector('tr[data-id="%s"]' % sid)
    assert "stopped" in row.text_content() and "team=web" in row.text_content()


def test_the_table_follows_the_feed_without_a_reload(page, dash):
    record = dash.spawn("sleep 60")
    status = page.locator('tr[data-id="%s"] .status' % record["sessionId"])
    expect(status).to_have_text("running", timeout=15000)
    resources = page.locator('tr[data-id="%s"] .resources' % record["sessionId"])
    expect(resources).to_have_text(re.compile(r"^\d+\.\d% / \d+(\.\d)? (KB|MB)"), timeout=15000)
    dash.rpc().sessions.stopSession(record["sessionId"])
    expect(status).to_have_text("stopped", timeout=15000)   # the table refetches only when the feed says


def test_the_machine_panel_draws_its_charts(page, dash):
    page.click("#nav-machine")
    page.wait_for_selector("#chart-cpu")
    expect(page.locator("#workers")).to_contain_text("sessions")
    assert page.text_content("#gpus").startswith("GPU") or page.query_selector("#chart-gpu-0")
    def drawn(chart):   # a line between two samples: some pixel is not blank
        return page.evaluate("(id) => { const c = document.querySelector(id); const d = c.getContext('2d')"
                             ".getImageData(0, 0, c.width, c.height).data; return d.some((v) => v !== 0); }", chart)
    for chart in ("#chart-cpu", "#chart-memory", "#chart-disk"):
        wait_for(lambda: drawn(chart), timeout=15, message="a line in " + chart)
    shot(page, "machine")


MARKUP = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'


def test_what_workers_and_users_wrote_is_shown_as_text_and_never_run(page, dash):
    record = dash.rpc().sessions.createSession({
        "agent": "coder", "provider": "gemini", "runtime": "shell", "name": MARKUP, "labels": {"x": "<b>y</b>"},
        "task": "printf '%s\\n' '" + MARKUP + "'; printf '\\033[31mred\\033[0m plain\\n'"})
    sid = record["sessionId"]
    dash.wait_status(sid, FINAL)
    page.goto(page.url.split("#")[0] + "#/")
    row = page.wait_for_selector('tr[data-id="%s"]' % sid)
    assert MARKUP in row.text_content()
    page.goto(page.url.split("#")[0] + "#/session/" + sid)
    expect(page.locator("#log")).to_contain_text("plain")
    assert MARKUP in page.text_content("#log") and MARKUP in page.text_content("#record")
    assert page.evaluate("window.pwned") is None
    assert page.query_selector("#view img") is None and page.query_selector("#view script") is None
    red = page.query_selector("#log span.c31")
    assert red is not None and red.text_content() == "red"   # ANSI colours become classes, the rest stays text
    shot(page, "untrusted-text")


def test_the_key_lands_in_no_url_no_storage_and_no_script_readable_cookie(page, dash):
    page.goto(page.url.split("#")[0] + "#/machine")
    page.wait_for_selector("#chart-cpu")
    assert page.urls and not [url for url in page.urls if dash.key in url]
    assert page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)") == "{}{}"
    assert dash.key not in page.evaluate("document.cookie") and "sessions_ui" not in page.evaluate("document.cookie")
    cookie = [c for c in page.context.cookies() if c["name"] == "sessions_ui"][0]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and dash.key not in cookie["value"]


def test_a_thousand_sessions_come_in_pages(page, dash):
    rpc = dash.rpc()
    while rpc.sessions.countSessions()["total"] < 1000:
        rpc.sessions.createSession({"agent": "coder", "provider": "gemini", "runtime": "shell", "task": "true",
                                    "labels": {"bulk": "yes"}})
    wait_for(lambda: rpc.sessions.countSessions()["completed"] >= 990, timeout=120, message="the bulk to end")
    page.goto(page.url.split("#")[0] + "#/?label=bulk%3Dyes")
    rows = page.locator("#sessions-body tr")
    expect(page.locator("#sessions-count")).to_have_text(re.compile(r"^\d+ sessions$"))
    expect(rows).to_have_count(50)
    first = rows.first.text_content()
    page.click("#next")
    # The next page is a new, empty table until its rows come: one check in the page sees both at once.
    page.wait_for_function("""first => {
        const rows = document.querySelectorAll("#sessions-body tr");
        return rows.length === 50 && rows[0].textContent !== first;
    }""", arg=first)
    assert "offset=50" in page.url
    shot(page, "thousand-sessions")


def test_a_bad_key_says_so_and_signs_nothing_in(browser, dash):
    context = browser.new_context()
    tab = context.new_page()
    tab.goto("http://127.0.0.1:%d/" % dash.port)
    tab.fill("#key", "not-the-key")
    tab.click("#login-button")
    expect(tab.locator("#login-error")).to_contain_text("not the API key")
    assert tab.query_selector("#sessions") is None and tab.context.cookies() == []
    context.close()
