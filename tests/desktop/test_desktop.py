"""The real desktop app, driven end to end through WebDriver (tauri-driver and
WebKitWebDriver) under Xvfb, with real MCP servers from npm, a real MCP client
calling through `warden connect`, the real OS keychain and, once, a real
OpenID provider.

Run by the test command inside `xvfb-run` and `.ci/with-keychain`. Every
screenshot lands in target/screenshots (named in the README)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess as sp
import sys
import threading
import time
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.common.options import ArgOptions

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from conftest import PEERS, WARDEN, totp  # noqa: E402
from test_conformance import node_env  # noqa: E402
from test_gateway import free_port, wait_port  # noqa: E402
from test_sso import follow_provider  # noqa: E402

APP = Path(os.environ.get("WARDEN_APP_BIN", ROOT / "target" / "debug" / "warden-app"))
SHOTS = ROOT / "target" / "screenshots"
PASSWORD = "correct horse battery staple 42"


def tauri_driver() -> str:
    found = shutil.which("tauri-driver") or str(Path.home() / ".cargo" / "bin" / "tauri-driver")
    assert Path(found).exists(), "tauri-driver is not installed: run .ci/setup"
    return found


class Codes:
    """An authenticator app: each 30 s step's code is used once. Warden
    takes the codes of the steps next to the current one (a phone's clock is
    seldom exact), so the next step's code may be used before its time."""

    def __init__(self, secret: str):
        self.secret, self.last = secret, -1

    def next(self) -> str:
        now = time.time()
        step = max(int(now // 30), self.last + 1)
        if step > int(now // 30) + 1:
            time.sleep((step - 1) * 30 - now + 0.2)
        self.last = step
        return totp(self.secret, step * 30 + 1)


class App:
    """The running app, seen through WebDriver."""

    def __init__(self, driver, data: Path, home: Path, files: Path):
        self.d, self.data, self.home, self.files = driver, data, home, files
        self.main = driver.current_window_handle
        self.codes: Codes | None = None

    def find(self, testid: str, timeout: float = 30, within=None):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                for e in (within or self.d).find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'):
                    if e.is_displayed():
                        return e
            except WebDriverException as e:
                last = e
            time.sleep(0.2)
        self.shot(f"missing-{testid}")
        raise AssertionError(f"{testid!r} did not appear within {timeout}s ({last})")

    def present(self, testid: str) -> bool:
        try:
            return any(e.is_displayed() for e in self.d.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'))
        except WebDriverException:
            # It went from the page between finding and looking at it.
            return False

    def wait_gone(self, testid: str, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while self.present(testid):
            if time.time() > deadline:
                self.shot(f"still-{testid}")
                raise AssertionError(f"{testid!r} was still shown after {timeout}s")
            time.sleep(0.2)

    def click(self, testid: str, timeout: float = 30) -> None:
        # An element can be on screen but covered for a moment (a dialog
        # closing, a notification sliding by): try again until it takes.
        deadline = time.time() + timeout
        while True:
            el = self.find(testid, timeout)
            try:
                self.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
                el.click()
                return
            except WebDriverException:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)

    def toggle(self, testid: str) -> None:
        """A switch: its input is hidden behind the track a person clicks."""
        deadline = time.time() + 30
        while not self.d.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'):
            assert time.time() < deadline, f"{testid!r} did not appear"
            time.sleep(0.2)
        el = self.d.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')
        self.d.execute_script("arguments[0].click()", el)

    def type(self, testid: str, text: str) -> None:
        el = self.find(testid)
        el.send_keys(Keys.CONTROL, "a")
        el.send_keys(Keys.BACKSPACE)
        el.send_keys(text)

    def text(self, testid: str) -> str:
        return self.find(testid).text

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        try:
            # WebKit's screenshot is the last painted frame, which can be older
            # than the page (a window that was just behind another): wait
            # until two frames have been painted since.
            self.d.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "requestAnimationFrame(() => requestAnimationFrame(() => done()));")
        except WebDriverException:
            pass
        try:
            self.d.save_screenshot(str(SHOTS / f"{name}.png"))
        except WebDriverException:
            pass

    def screen(self, name: str) -> None:
        """The whole screen, native windows included."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        sp.run(["import", "-window", "root", str(SHOTS / f"{name}.png")], check=True, timeout=30)

    def confirm_if_asked(self) -> None:
        """A sensitive change may ask for a fresh code first."""
        time.sleep(0.5)
        if self.present("mfa-code"):
            self.type("mfa-code", self.codes.next())
            self.click("mfa-submit")

    def wait_text(self, testid: str, needle: str, timeout: float = 60) -> str:
        deadline = time.time() + timeout
        seen = ""
        while time.time() < deadline:
            try:
                seen = self.find(testid, timeout=5).text
            except AssertionError:
                seen = ""
            if needle in seen:
                return seen
            time.sleep(0.5)
        self.shot(f"waiting-{testid}")
        raise AssertionError(f"{testid!r} never showed {needle!r}; it showed {seen!r}")


def app_pids(data: Path) -> list[int]:
    """The app processes this test started (they carry its data folder)."""
    mark = f"WARDEN_DATA_DIR={data}".encode()
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if mark in (d / "environ").read_bytes().split(b"\0") and \
                    Path(os.readlink(d / "exe")).name == APP.name:
                pids.append(int(d.name))
        except OSError:
            continue
    return pids


def gdbus(*args: str, timeout: float = 20) -> str:
    return sp.run(["gdbus", *args], capture_output=True, text=True, check=True, timeout=timeout).stdout


def tray_click(label: str) -> None:
    """Clicks an item of the app's tray menu the way any process of the
    session can: the menu is a D-Bus object (com.canonical.dbusmenu) on the
    session bus, under the app's StatusNotifierItem, and its Event method is
    the click. Only one app runs in a test's session, so the name that
    exports that object is the app."""
    bus = ["--session", "--dest", "org.freedesktop.DBus", "--object-path", "/org/freedesktop/DBus"]
    names = re.findall(r"'(:[0-9]+\.[0-9]+)'", gdbus("call", *bus, "--method", "org.freedesktop.DBus.ListNames"))
    for name in names:
        try:
            tree = gdbus("introspect", "--session", "--dest", name, "--object-path",
                         "/org/ayatana/NotificationItem", "--recurse", timeout=5)
        except (sp.CalledProcessError, sp.TimeoutExpired):
            continue
        path = None
        for line in tree.splitlines():
            if m := re.match(r"\s*node (\S+) \{", line):
                path = m.group(1)
            elif "interface com.canonical.dbusmenu {" in line and path and "warden" in path:
                at = ["--session", "--dest", name, "--object-path", path]
                layout = gdbus("call", *at, "--method", "com.canonical.dbusmenu.GetLayout", "--", "0", "-1", "[]")
                item = re.search(r"\((\d+), \{[^}]*'label': <'" + re.escape(label) + "'>", layout)
                assert item, f"no {label!r} in the tray menu: {layout}"
                gdbus("call", *at, "--method", "com.canonical.dbusmenu.Event", "--",
                      item.group(1), "clicked", "<int32 0>", "0")
                return
    raise AssertionError(f"the app exported no tray menu on the session bus ({len(names)} names searched)")


def end_app(data: Path) -> None:
    """The app keeps running in the tray when its window closes, and it is a
    single instance: the next test's app would hand over to this one and
    exit. Quit it (SIGTERM, as the session ending would) and wait until it is
    gone."""
    deadline = time.time() + 20
    while (pids := app_pids(data)) and time.time() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    for pid in app_pids(data):
        os.kill(pid, signal.SIGKILL)
    assert not app_pids(data), "the app did not quit"


@pytest.fixture
def app(tmp_path: Path, request):
    home, data, files = tmp_path / "home", tmp_path / "data", tmp_path / "files"
    for d in (home, data, files):
        d.mkdir()
    # Any free port: tests never collide with each other or a running Warden.
    # A test may give more of the file (indirect parametrization).
    extra = getattr(request, "param", "")
    (data / "config.toml").write_text('[gateway]\nlisten = "127.0.0.1:0"\n' + extra)
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        WARDEN_DATA_DIR=str(data),
        WARDEN_BROWSER="none",
        PATH=f"{PEERS}{os.pathsep}{env.get('PATH', '')}",
    )
    env.pop("XDG_CONFIG_HOME", None)
    port, native = free_port(), free_port()
    driver_log = open(tmp_path / "tauri-driver.log", "w")
    proc = sp.Popen(
        [tauri_driver(), "--port", str(port), "--native-port", str(native)],
        env=env, stdout=driver_log, stderr=sp.STDOUT,
    )
    try:
        # tauri-driver listens before the WebKitWebDriver it starts does (10 to
        # 40 ms here, longer on a busy machine), and a session request in that
        # gap is dropped without an answer: wait for both.
        wait_port(port)
        wait_port(native)
        opts = ArgOptions()
        opts.set_capability("browserName", "wry")
        opts.set_capability("tauri:options", {"application": str(APP)})
        try:
            driver = webdriver.Remote(f"http://127.0.0.1:{port}", options=opts)
        except Exception as e:
            driver_log.flush()
            raise AssertionError(f"no WebDriver session: {e}\ntauri-driver said:\n"
                                 f"{(tmp_path / 'tauri-driver.log').read_text()[-4000:]}") from e
        driver.set_window_size(1280, 800)
        yield App(driver, data, home, files)
        driver.quit()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except sp.TimeoutExpired:
            proc.kill()
        end_app(data)
        driver_log.close()


def first_run(app: App, name: str = "ada") -> None:
    app.find("firstrun-name", timeout=90)
    app.shot("01-first-run")
    app.type("firstrun-name", name)
    app.type("firstrun-password", PASSWORD)
    app.type("firstrun-password2", PASSWORD)
    app.click("firstrun-create")
    secret = "".join(app.text("enroll-secret").split())
    assert len(secret) >= 16, f"the TOTP secret is shown as text: {secret!r}"
    app.codes = Codes(secret)
    assert len(app.text("recovery-codes").split()) >= 8, "recovery codes are shown"
    app.shot("02-enroll-totp")
    app.click("enroll-saved")
    app.type("enroll-code", app.codes.next())
    app.click("enroll-continue")
    app.find("tour-next")
    app.shot("03-tour")
    while app.present("tour-next"):
        app.click("tour-next")
        time.sleep(0.3)
    app.click("tour-done")
    app.find("nav-home")
    time.sleep(1)  # the tour's fade-out
    app.shot("04-home")


def connect_filesystem(app: App) -> None:
    app.click("nav-connect-server")
    app.click("wizard-local")
    app.click("wizard-next")
    app.click("preset-filesystem")
    app.type("wizard-name", "files")
    app.type("wizard-folder", str(app.files))
    app.shot("05-connect-server")
    deadline = time.time() + 120
    while not app.present("wizard-result"):
        assert time.time() < deadline, "the wizard never finished"
        if app.present("mfa-code"):
            app.confirm_if_asked()
        elif app.present("wizard-next"):
            app.click("wizard-next")
        time.sleep(0.5)
    app.wait_text("wizard-result", "write_file", timeout=90)
    app.shot("06-connect-server-done")


def tools_have_risk_badges(app: App) -> None:
    app.click("nav-servers")
    card = app.find("server-files", timeout=60)
    row = app.find("tool-write_file", within=card, timeout=60)
    badge = app.find("risk-badge", within=row)
    # (WebKitWebDriver reads a Mantine badge's label as empty: textContent.)
    assert badge.get_attribute("textContent").strip().lower() == "high"
    time.sleep(2)  # the roles column loads

    app.shot("07-servers")


def connect_claude(app: App, agent: str, server: str = "files") -> dict:
    app.click("nav-connect-app")
    app.click("app-claude_desktop")
    app.type("app-agent-name", agent)
    app.click(f"app-server-{server}")
    app.click("app-write")
    # Under Xvfb no click is a physical device's, so a change of policy from
    # the main window waits for a code even in a session that proved one a
    # moment ago (a program could have made the click), and says for what.
    why = app.wait_text("mfa-why", "To connect an AI app")
    assert "could not tell that this click came from you" in why, why
    app.shot("08a-connect-app-code")
    app.type("mfa-code", app.codes.next())
    app.click("mfa-submit")
    app.wait_text("app-result", "claude_desktop_config.json")
    app.shot("08-connect-app")
    config = json.loads((app.home / ".config" / "Claude" / "claude_desktop_config.json").read_text())
    entry = config["mcpServers"]["warden"]
    assert entry["args"][-2:] == ["connect", agent], entry
    assert "credential" not in json.dumps(config).lower(), "no credential in the app's file"
    return entry


class Call(threading.Thread):
    """An MCP client (the Python SDK) running the command the AI app's
    configuration names, calling one tool and keeping the result."""

    def __init__(self, entry: dict, tool: str, arguments: dict):
        super().__init__(daemon=True)
        self.entry, self.tool, self.arguments = entry, tool, arguments
        self.result = None
        self.error: BaseException | None = None

    def run(self) -> None:
        async def main():
            env = {k: os.environ[k] for k in ("PATH", "DBUS_SESSION_BUS_ADDRESS") if k in os.environ}
            params = StdioServerParameters(command=self.entry["command"], args=self.entry["args"], env=env)
            async with Client(params, mode="legacy") as client:
                self.result = await client.call_tool(self.tool, self.arguments)

        try:
            anyio.run(main)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


def text_of(result) -> str:
    return " ".join(c.text for c in result.content if getattr(c, "type", None) == "text")


def prompt_window(app: App, timeout: float = 60) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        others = [h for h in app.d.window_handles if h != app.main]
        if others:
            app.d.switch_to.window(others[0])
            return others[0]
        time.sleep(0.3)
    raise AssertionError("the approval window did not open")


def answer_prompt(app: App, button: str, reason: str | None = None, code_shot: str | None = None) -> bool:
    """Answers the approval window; says whether it asked for a code."""
    assert "write_file" in app.wait_text("prompt-tool", "write_file")
    assert "claude" in app.text("prompt-agent")
    risk = app.find("prompt-risk").get_attribute("textContent").lower()
    assert "high" in risk and "writes" in risk, risk
    assert "hello.txt" in app.text("prompt-args") or "notes.txt" in app.text("prompt-args")
    assert app.text("prompt-countdown")
    if reason:
        app.type("prompt-deny-reason", reason)
    app.click(button)
    time.sleep(1)
    if not app.present("prompt-totp"):
        return False
    if code_shot:
        app.shot(code_shot)
    app.type("prompt-totp", app.codes.next())
    app.click(button)
    return True


def test_first_run_connect_a_server_and_an_app_then_approve_a_write(app: App):
    first_run(app)
    connect_filesystem(app)
    tools_have_risk_badges(app)
    entry = connect_claude(app, "claude")

    target = app.files / "hello.txt"
    call = Call(entry, "files__write_file", {"path": str(target), "content": "written with Ada's click"})
    call.start()
    prompt_window(app)
    # The notification that came with it says in words what the call does,
    # and names no command a person would have to type.
    notified = notification_text("claude asks to use write_file (files)")
    assert "files/hello.txt" in notified and "Open Warden to allow or deny it" in notified, notified
    assert "warden approvals" not in notified and "{" not in notified, notified
    # Enter is never "approve": pressing it in the window changes nothing.
    app.find("prompt-tool")
    ActionChains(app.d).send_keys(Keys.ENTER).perform()
    time.sleep(1)
    assert not target.exists(), "Enter approved the call"
    app.shot("09-approval-window")
    app.screen("09-approval-window-on-screen")
    # WebDriver's click is made inside WebKit, not by a mouse: like any
    # click Warden cannot tell is the person's, it asks for a code.
    assert answer_prompt(app, "prompt-approve-once", code_shot="09b-approval-asks-for-a-code"), \
        "a click WebDriver made approved without a code"
    call.join(90)
    assert not call.is_alive(), "the call never finished after it was approved"
    assert call.error is None, repr(call.error)
    assert not call.result.is_error, text_of(call.result)
    assert target.read_text() == "written with Ada's click"

    app.d.switch_to.window(app.main)
    app.click("nav-activity")
    row = app.wait_text("activity-row", "write_file")
    assert "claude" in row and "ada" in row, row
    app.shot("10-activity")
    app.click("nav-approvals")
    app.find("past-decisions", timeout=30)
    app.shot("11-approvals")
    app.click("nav-people")
    app.find("person-ada")
    app.click("tab-agents")
    app.wait_text("agent-claude", "app-claude")
    app.shot("12-people")
    app.click("nav-settings")
    app.find("sso-issuer")
    app.shot("13-settings")


def xtest_click(element, window_name: str) -> None:
    """Clicks the middle of `element` with xdotool, which makes the click
    through the X server's XTEST extension, as an attacking program would."""
    found = sp.run(["xdotool", "search", "--name", window_name], capture_output=True, text=True, timeout=30)
    assert found.returncode == 0 and found.stdout.split(), f"no window named {window_name!r}: {found.stderr}"
    rect = element.rect
    x, y = int(rect["x"] + rect["width"] / 2), int(rect["y"] + rect["height"] / 2)
    sp.run(["xdotool", "mousemove", "--window", found.stdout.split()[-1], str(x), str(y), "click", "1"],
           check=True, timeout=30)


def test_a_denied_write_reaches_the_agent_as_a_denial(app: App):
    first_run(app, "ben")
    connect_filesystem(app)
    entry = connect_claude(app, "claude")
    target = app.files / "notes.txt"
    call = Call(entry, "files__write_file", {"path": str(target), "content": "should never be written"})
    call.start()
    prompt_window(app)

    # A program of ben's clicks "Allow once" through XTEST, as any X11
    # client can: the window asks for ben's code instead of approving.
    button = app.find("prompt-approve-once")
    time.sleep(1.5)  # past the moment a new request is not yet clickable
    xtest_click(button, "an agent is waiting")
    note = app.wait_text("prompt-totp-note", "could not tell that this click came from you")
    assert "authenticator app" in note, note
    app.shot("16-a-programs-click-asks-for-a-code")
    time.sleep(1)
    assert not target.exists(), "a synthetic click approved the call"
    with sqlite3.connect(app.data / "warden.db") as db:
        why = [json.loads(d)["why"] for (d,) in db.execute("SELECT detail FROM activity WHERE kind = 'access.refused'")]
    assert "synthetic input in the window" in why, why

    answer_prompt(app, "prompt-deny", reason="not on my machine")
    call.join(60)
    assert not call.is_alive() and call.error is None, repr(call.error)
    assert call.result.is_error, "a denied call is an error, never a fake success"
    said = text_of(call.result)
    assert "denied" in said.lower() and "ben" in said and "not on my machine" in said, said
    assert not target.exists()

    # Pausing every agent from the header: the next call is refused at once,
    # nothing waits for a person and nothing reaches the server.
    app.d.switch_to.window(app.main)
    app.toggle("pause-toggle")
    app.confirm_if_asked()
    app.click("nav-home")
    app.find("paused-banner")
    app.shot("15-paused")
    call = Call(entry, "files__write_file", {"path": str(target), "content": "paused"})
    call.start()
    call.join(60)
    assert not call.is_alive() and call.error is None, repr(call.error)
    assert call.result.is_error and "paused" in text_of(call.result), text_of(call.result)
    assert not target.exists()

    # A program of ben's clicks the tray's "Pause all agents" over D-Bus, as
    # any process of the session can, to let agents run again: the agents
    # stay paused, and Home says how ben resumes them himself.
    tray_click("Pause all agents")
    time.sleep(2)
    app.find("paused-banner")
    call = Call(entry, "files__write_file", {"path": str(target), "content": "unpaused by a program"})
    call.start()
    call.join(60)
    assert not call.is_alive(), "the write waited for an approval: a tray click over D-Bus resumed the agents"
    assert call.error is None, repr(call.error)
    assert call.result.is_error and "paused" in text_of(call.result), text_of(call.result)
    assert not target.exists(), "a tray click over D-Bus let the agents run again"
    app.shot("15b-tray-resume-opens-home")


@pytest.mark.parametrize("app", ["\n[approvals]\ntimeout_secs = 600\n"], ids=["edited-config"], indirect=True)
def test_a_person_an_admin_added_sets_up_their_own_account(app: App):
    first_run(app)
    # Someone edited the configuration file before the app started: Home
    # says what waits, and the admin's code puts it in force.
    held = app.find("held-settings")
    assert "calls that wait up to 600 s for a person" in held.text and "In force now: 120 s" in held.text, held.text
    app.shot("04b-looser-settings-wait")
    app.click("held-review")
    app.type("held-code", app.codes.next())
    app.click("held-approve")
    app.wait_gone("held-settings")
    app.click("nav-people")
    app.click("person-add")
    app.type("person-name", "mia")
    app.click("person-submit")
    app.confirm_if_asked()
    code = app.text("invitation-code").strip()
    assert len(code.replace("-", "")) == 20, code
    app.shot("20-person-added-with-a-setup-code")
    app.click("invitation-done")
    app.click("user-menu")
    app.click("signout")

    # mia, at the same computer: her code, her own password, her own app.
    app.click("signin-enrol", timeout=60)
    mine = "her own " + PASSWORD
    app.type("enrol-name", "mia")
    app.type("enrol-code", code)
    app.type("enrol-password", mine)
    app.type("enrol-again", mine)
    app.shot("21-set-up-my-account")
    app.click("enrol-submit")
    secret = "".join(app.text("enroll-secret").split())
    assert len(secret) >= 16, secret
    app.shot("22-set-up-my-authenticator")
    app.click("enroll-saved")
    app.click("enrol-done")
    # Signing in says what the password unlocks.
    assert "unlocks Warden" in app.text("signin-unlock-note"), app.text("signin-unlock-note")
    app.shot("23-sign-in-unlocks")
    app.type("signin-password", mine)
    codes = Codes(secret)
    app.type("signin-code", codes.next())
    app.click("signin-submit")
    app.find("nav-home", timeout=60)
    assert app.find("user-menu").get_attribute("aria-label") == "Signed in as mia"

    # Her own account, in Settings: a new password, new recovery codes.
    app.click("nav-settings")
    newer = "a newer " + mine
    app.type("account-current", mine)
    app.type("account-new", newer)
    app.type("account-again", newer)
    app.click("account-password-save")
    app.wait_text("account-password-changed", "Your password is changed")
    app.type("account-recovery-password", newer)
    app.click("account-recovery-go")
    time.sleep(0.5)
    if app.present("mfa-code"):
        # WebDriver's click is not a physical device's: a code confirms it.
        app.type("mfa-code", codes.next())
        app.click("mfa-submit")
    listed = app.find("account-recovery-codes")
    assert len(listed.find_elements(By.TAG_NAME, "code")) == 10, listed.text
    app.shot("23-your-account-new-recovery-codes")
    app.click("account-recovery-done")


@pytest.fixture
def idp():
    port = free_port()
    p = sp.Popen(["node", str(ROOT / "tests" / "servers" / "oidc_idp.mjs"), str(port)], env=node_env(),
                 cwd=ROOT / "tests", stdout=sp.PIPE, stderr=sp.STDOUT, text=True)
    for _ in range(50):
        if p.stdout.readline().startswith("listening"):
            break
    else:
        raise AssertionError("the OpenID provider did not start")
    yield f"http://127.0.0.1:{port}"
    p.terminate()
    p.wait(timeout=10)


def signed_in_cli(app: App):
    """The CLI signed in as the app's admin (it reaches the running app's
    gateway over its socket): returns a function that runs one command."""
    env = dict(os.environ, WARDEN_BROWSER="none")
    cli = [str(WARDEN), "--data-dir", str(app.data)]
    login = sp.run([*cli, "login", "ada", "--password-stdin"],
                   input=PASSWORD + "\n" + app.codes.next() + "\n", capture_output=True, text=True, timeout=60, env=env)
    assert login.returncode == 0, login.stderr

    def run(*args: str) -> None:
        done = sp.run([*cli, *args], capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr

    return run


def test_sign_in_with_the_company_identity_provider(app: App, idp: str):
    first_run(app)
    # An admin sets up SSO from the CLI.
    cli = signed_in_cli(app)
    cli("role", "add", "dev")
    cli("sso", "configure", "--issuer", idp, "--client-id", "warden", "--map", "warden-admins=admin",
        "--map", "warden-users=dev", "--mfa-amr", "otp", "--create-people")

    app.click("user-menu")
    app.click("signout")
    app.click("signin-sso", timeout=60)
    url = app.wait_text("sso-url", "http")
    app.shot("14-sign-in-sso")
    follow_provider(idp, url.strip(), "ana")
    app.find("nav-home", timeout=60)
    assert app.find("user-menu").get_attribute("aria-label") == "Signed in as ana"


@pytest.fixture
def protected_server():
    """An OAuth-protected MCP server on the TypeScript SDK (the e2e suite's)."""
    port = free_port()
    p = sp.Popen(["node", str(ROOT / "tests" / "servers" / "oauth_server.mjs"), str(port)], env=node_env(),
                 cwd=ROOT / "tests", stdout=sp.PIPE, stderr=sp.STDOUT, text=True)
    line = p.stdout.readline()
    assert line.startswith("listening"), line
    yield f"http://localhost:{port}"
    p.terminate()
    p.wait(timeout=10)


def follow_authorization(url: str) -> None:
    """The browser's part of a server sign-in: the example authorization
    server approves at once and sends the browser back to Warden."""
    r = httpx2.get(url, follow_redirects=False, timeout=30)
    assert r.status_code in (302, 303), r.text
    back = httpx2.get(r.headers["location"], timeout=30)
    assert back.status_code == 200, back.text


def dunstctl(*args: str) -> str:
    return sp.run(["dunstctl", *args], capture_output=True, text=True, timeout=10, check=True).stdout


def notification_text(summary: str, timeout: float = 30) -> str:
    """The body of the notification (shown by dunst) whose headline is
    `summary`: shown ones are closed into dunst's history, then read."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        dunstctl("close-all")
        for group in json.loads(dunstctl("history"))["data"]:
            for n in group:
                if n["summary"]["data"] == summary:
                    return n["body"]["data"]
        time.sleep(0.5)
    raise AssertionError(f"no notification {summary!r}: {dunstctl('history')[:2000]}")


def test_a_lapsed_server_sign_in_is_renewed_from_its_notification(app: App, protected_server: str):
    first_run(app)
    cli = signed_in_cli(app)
    cli("server", "add", "notes", "--url", f"{protected_server}/mcp")
    cli("server", "trust", "notes")

    # Sign Warden in to the server from its card.
    app.click("nav-servers")
    card = app.find("server-notes", timeout=60)
    assert "not signed in" in app.find("server-signin", within=card).text
    app.click("server-signin-again")
    follow_authorization(app.wait_text("server-signin-url", "http").strip())
    app.wait_text("server-signin", "Signed in at")
    entry = connect_claude(app, "claude", server="notes")

    def whoami() -> str:
        """What the agent gets: the tool's text, or the error it is told."""
        call = Call(entry, "notes__whoami", {})
        call.start()
        call.join(60)
        assert not call.is_alive(), "the call hung"
        if call.error is not None:
            return f"error: {call.error!r}"
        return ("error: " if call.result.is_error else "") + text_of(call.result)

    assert whoami() == "hello from the protected server"

    # The authorization server withdraws the grant: renewing fails, the agent
    # is told, and a notification offers to sign in again.
    dunstctl("close-all")
    assert httpx2.post(f"{protected_server}/test/revoke", timeout=10).json()["revoked"] >= 1
    lapsed = whoami()
    assert lapsed.startswith("error") and "sign in again" in lapsed, lapsed
    deadline = time.time() + 20
    while time.time() < deadline and dunstctl("count", "displayed").strip() in ("", "0"):
        time.sleep(0.2)
    assert dunstctl("count", "displayed").strip() not in ("", "0"), "no notification was shown"
    app.d.switch_to.window(app.main)
    app.click("nav-home")

    # One click on the notification: the app opens the server and starts
    # the sign-in; the browser part is all that is left. A person reads it
    # first: the app starts listening for the click a moment after the
    # notification appears, and a click within those milliseconds is lost.
    time.sleep(1.5)
    dunstctl("action", "0")
    url = app.wait_text("server-signin-url", "http").strip()
    app.screen("16-server-sign-in-again")
    follow_authorization(url)
    # Signed in again, the server reconnects; the agent's calls work again.
    deadline = time.time() + 30
    while time.time() < deadline and app.present("server-signin-waiting"):
        time.sleep(0.3)
    seen = whoami()
    while time.time() < deadline and seen != "hello from the protected server":
        time.sleep(1)
        seen = whoami()
    assert seen == "hello from the protected server", seen
    assert not app.present("server-signin-problem"), "the sign-in problem is still shown"
