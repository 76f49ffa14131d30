"""Sign-in with a real OpenID provider (panva's oidc-provider on
127.0.0.1), MFA enforced from the provider's claims, groups mapped to roles,
every bad ID token refused, and sessions that follow the provider."""

from __future__ import annotations

import json
import os
import subprocess as sp
import time
import urllib.parse

import httpx2
import pytest

from conftest import ROOT, WARDEN
from test_conformance import node_env
from test_gateway import free_port

IDP = ROOT / "tests" / "servers" / "oidc_idp.mjs"


def start_idp(*extra: str):
    port = free_port()
    p = sp.Popen(["node", str(IDP), str(port), *extra], env=node_env(), cwd=ROOT / "tests", stdout=sp.PIPE, stderr=sp.STDOUT, text=True)
    for _ in range(50):
        line = p.stdout.readline()
        if line.startswith("listening"):
            break
    else:
        raise AssertionError("the OpenID provider did not start")
    return p, f"http://127.0.0.1:{port}"


@pytest.fixture
def idp():
    p, url = start_idp()
    yield url
    p.terminate()
    p.wait(timeout=10)


@pytest.fixture
def idp_with_slash():
    p, url = start_idp("slash")
    yield url
    p.terminate()
    p.wait(timeout=10)


def configure(warden, issuer: str, *extra: str) -> None:
    warden.cli("role", "add", "dev", "--description", "what developers' agents may do")
    warden.cli("sso", "configure", "--issuer", issuer, "--client-id", "warden",
               "--map", "warden-admins=admin", "--map", "warden-users=dev",
               "--mfa-amr", "otp", "--create-people", *extra)


def sso_login(warden, idp: str, who: str, keep: dict | None = None) -> sp.CompletedProcess:
    """`warden login --sso`, with the person's browser played by plain HTTP:
    open the address, sign in at the provider as WHO, follow the redirects
    back to Warden's loopback listener."""
    p = sp.Popen([str(WARDEN), "--data-dir", str(warden.data_dir), "login", "--sso", "--no-browser"],
                 env=dict(os.environ, WARDEN_BROWSER="none"), stdin=sp.PIPE, stdout=sp.PIPE, stderr=sp.PIPE, text=True)
    # With no Warden running, the person signed in on this CLI unlocks the
    # records for the new session.
    p.stdin.write(warden.unlock_line())
    p.stdin.close()
    p.stdin = None
    url, seen = None, []
    deadline = time.time() + 30
    while time.time() < deadline and url is None:
        line = p.stdout.readline()
        seen.append(line)
        if line.startswith("http"):
            url = line.strip()
        elif not line and p.poll() is not None:
            break
    assert url, "".join(seen) + p.stderr.read()
    c = httpx2.Client(follow_redirects=False, timeout=30)
    r = c.get(url)
    loc = urllib.parse.urljoin(idp, r.headers["location"])
    assert "/interaction/" in loc, r.text
    r = c.post(loc, data={"login": who})
    for _ in range(10):
        loc = r.headers.get("location")
        assert loc, r.text
        loc = urllib.parse.urljoin(idp, loc)
        if loc.startswith("http://127.0.0.1:") and "/callback" in loc and not loc.startswith(idp):
            break
        r = c.get(loc)
    if keep is not None:
        keep["callback"] = loc
    try:
        httpx2.get(loc, timeout=30)
    except httpx2.HTTPError:
        pass
    out, err = p.communicate(timeout=60)
    if p.returncode == 0:
        warden.signed_in_through_provider(out)
    return sp.CompletedProcess(p.args, p.returncode, "".join(seen) + out, err)


def whoami(warden) -> str:
    return warden.cli("whoami", check=False).stdout.strip()


def test_mfa_people_sign_in_with_mapped_roles_and_password_only_is_refused(warden, idp):
    configure(warden, idp)
    ana = sso_login(warden, idp, "ana")
    assert ana.returncode == 0, ana.stdout + ana.stderr
    assert "Signed in as ana (admin)" in ana.stdout and whoami(warden) == "ana (admin)"
    ben = sso_login(warden, idp, "ben")
    assert ben.returncode == 0 and whoami(warden) == "ben (member)", ben.stderr
    # The group gave ben's agents the dev role, and nothing more.
    warden.cli("agent", "add", "ben-bot", "--role", "dev")
    refused = warden.cli("agent", "add", "ben-root", "--role", "all", check=False)
    assert refused.returncode != 0
    pat = sso_login(warden, idp, "pat")
    assert pat.returncode != 0 and "multi-factor authentication" in pat.stderr, pat.stderr
    assert whoami(warden) == "ben (member)", "the refused sign-in changed nothing"
    warden.admin.login()
    rows = [json.loads(l) for l in warden.cli("log", "--json").stdout.splitlines()]
    failed = [r for r in rows if r["kind"] == "auth.sign_in_failed" and r["on_behalf_of"] == "pat"]
    assert failed and json.loads(failed[0]["detail"])["why"] == "no MFA"
    signed = [r for r in rows if r["kind"] == "auth.sign_in" and json.loads(r["detail"]).get("how") == "sso"]
    assert {r["on_behalf_of"] for r in signed} == {"ana", "ben"}
    assert any(r["kind"] == "person.roles_from_groups" and r["on_behalf_of"] == "ana" for r in rows)


def test_an_issuer_that_ends_in_a_slash_is_found_either_way(warden, idp_with_slash):
    # OpenID discovery compares the issuer exactly; the admin may type it
    # without the slash the provider's issuer ends in.
    configure(warden, idp_with_slash)
    ana = sso_login(warden, idp_with_slash, "ana")
    assert ana.returncode == 0 and whoami(warden) == "ana (admin)", ana.stdout + ana.stderr


@pytest.mark.parametrize("mode,message", [
    ("iss", "was issued by"), ("aud", "another application"), ("exp", "has expired"),
    ("nonce", "does not answer this sign-in"), ("sig", "signature is not valid"),
])
def test_bad_id_tokens_are_refused(warden, idp, mode, message):
    configure(warden, idp)
    httpx2.post(f"{idp}/test/mode/{mode}", timeout=10)
    out = sso_login(warden, idp, "ana")
    assert out.returncode != 0 and message in out.stderr, (mode, out.stderr)
    assert "ana" not in whoami(warden)


def test_a_replayed_answer_is_refused(warden, idp):
    configure(warden, idp)
    keep = {}
    assert sso_login(warden, idp, "ana", keep).returncode == 0
    with pytest.raises(httpx2.HTTPError):
        httpx2.get(keep["callback"], timeout=5)


def test_disabling_a_person_at_the_provider_ends_their_session_and_suspends_their_agents(warden, idp):
    configure(warden, idp, "--refresh-secs", "1")
    warden.start()
    assert sso_login(warden, idp, "ben").returncode == 0
    token = json.loads(warden.cli("agent", "add", "ben-bot", "--role", "dev", "--json").stdout)["credential"]
    r = warden.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}}, token)
    assert r.status_code == 200
    httpx2.post(f"{idp}/test/disable/ben", timeout=10)
    deadline = time.time() + 20
    while time.time() < deadline and whoami(warden) == "ben (member)":
        time.sleep(0.5)
    out = warden.cli("whoami", check=False)
    assert out.returncode != 0 and "session has ended" in out.stderr, out.stdout + out.stderr
    r = warden.post({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}}, token)
    assert r.status_code == 401, "the suspended agent is refused"
    warden.admin.login()
    agents = {a["name"]: a for a in json.loads(warden.cli("agent", "list", "--json").stdout)}
    assert agents["ben-bot"]["status"] == "suspended"
    rows = [json.loads(l) for l in warden.cli("log", "--json").stdout.splitlines()]
    refused = [r for r in rows if r["kind"] == "auth.sso_refused"]
    assert refused and refused[0]["on_behalf_of"] == "ben" and json.loads(refused[0]["detail"])["agents_suspended"] == 1


def test_leaving_a_group_takes_its_role_from_the_agents_at_the_next_refresh(warden, idp, files_root):
    from conftest import peer

    configure(warden, idp, "--refresh-secs", "1")
    warden.cli("server", "add", "fs", "--", peer("mcp-server-filesystem"), str(files_root))
    warden.cli("grant", "dev", "fs", "read_text_file", "allow")
    warden.start()
    assert sso_login(warden, idp, "ben").returncode == 0
    token = json.loads(warden.cli("agent", "add", "ben-bot", "--role", "dev", "--json").stdout)["credential"]
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}}

    def roles() -> list[str]:
        agents = {a["name"]: a for a in json.loads(warden.cli("agent", "list", "--json").stdout)}
        return agents["ben-bot"]["roles"]

    def tools() -> list[str]:
        r = warden.post(listing, token)
        assert r.status_code == 200, r.text
        return [t["name"] for t in r.json()["result"]["tools"]]

    assert roles() == ["dev"]
    assert tools() == ["fs__read_text_file"]
    # The provider's admin takes ben out of warden-users (which gave dev).
    httpx2.post(f"{idp}/test/groups/ben", content="", timeout=10).raise_for_status()
    deadline = time.time() + 20
    while time.time() < deadline and roles() == ["dev"]:
        time.sleep(0.5)
    assert roles() == [], "the agent lost the role its owner's group gave"
    assert whoami(warden) == "ben (member)", "leaving a group does not end the session"
    out = warden.cli("agent", "add", "ben-bot2", "--role", "dev", check=False)
    assert out.returncode != 0 and "dev" in out.stderr, out.stdout + out.stderr
    rows = [json.loads(l) for l in warden.cli("log", "--json").stdout.splitlines()]
    changed = [json.loads(r["detail"]) for r in rows if r["kind"] == "person.roles_from_groups" and r["on_behalf_of"] == "ben"]
    assert any(d.get("agents_lost") == [{"agent": "ben-bot", "role": "dev"}] for d in changed), changed
    # The agent still authenticates, and no longer sees what dev gave it.
    assert tools() == []


def test_a_refreshed_id_token_for_someone_else_ends_the_session(warden, idp):
    configure(warden, idp, "--refresh-secs", "1")
    warden.start()
    assert sso_login(warden, idp, "ben").returncode == 0
    warden.cli("agent", "add", "ben-bot", "--role", "dev")
    # The next token the provider issues (ben's refresh) names ana, properly signed.
    httpx2.post(f"{idp}/test/mode/sub", timeout=10).raise_for_status()
    deadline = time.time() + 20
    while time.time() < deadline and whoami(warden) == "ben (member)":
        time.sleep(0.5)
    out = warden.cli("whoami", check=False)
    assert out.returncode != 0 and "session has ended" in out.stderr, out.stdout + out.stderr
    warden.admin.login()
    agents = {a["name"]: a for a in json.loads(warden.cli("agent", "list", "--json").stdout)}
    assert agents["ben-bot"]["status"] == "suspended"
    rows = [json.loads(l) for l in warden.cli("log", "--json").stdout.splitlines()]
    refused = [json.loads(r["detail"]) for r in rows if r["kind"] == "auth.sso_refused" and r["on_behalf_of"] == "ben"]
    assert refused and "different person" in refused[0]["why"], refused


def follow_provider(idp: str, url: str, who: str) -> None:
    """The browser's part of a provider sign-in: log in as WHO, come back."""
    c = httpx2.Client(follow_redirects=False, timeout=30)
    r = c.get(url)
    r = c.post(urllib.parse.urljoin(idp, r.headers["location"]), data={"login": who})
    for _ in range(10):
        loc = urllib.parse.urljoin(idp, r.headers["location"])
        if not loc.startswith(idp):
            httpx2.get(loc, timeout=30)
            return
        r = c.get(loc)
    raise AssertionError("the provider never sent the browser back")


def test_a_critical_approval_takes_a_fresh_provider_sign_in(warden, idp, files_root):
    from conftest import peer
    from test_approvals import approval_timeout, call_later, result_of, wait_pending

    configure(warden, idp)
    warden.cli("server", "add", "fs", "--", peer("mcp-server-filesystem"), str(files_root))
    warden.cli("role", "add", "writer")
    warden.cli("grant", "writer", "fs", "write_file", "allow")
    approval_timeout(warden, 90)
    warden.start()
    assert sso_login(warden, idp, "ana").returncode == 0
    warden.cli("tool", "risk", "fs", "write_file", "critical", "--reason", "shared with customers")
    token = json.loads(warden.cli("agent", "add", "ana-bot", "--role", "writer", "--json").stdout)["credential"]
    f = call_later(warden, token, "fs__write_file", {"path": str(files_root / "s.txt"), "content": "stepped up"})
    [req] = wait_pending(warden)
    plain = warden.cli("approvals", "approve", req["id"], check=False)
    assert plain.returncode != 0 and "fresh" in plain.stderr
    p = sp.Popen([str(WARDEN), "--data-dir", str(warden.data_dir), "approvals", "approve", req["id"], "--sso"],
                 env=dict(os.environ, WARDEN_BROWSER="none"), stdout=sp.PIPE, stderr=sp.PIPE, text=True)
    url = None
    while url is None:
        line = p.stdout.readline()
        assert line or p.poll() is None, p.stderr.read()
        if line.startswith("http"):
            url = line.strip()
    q = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    assert q["max_age"] == ["0"] and q["prompt"] == ["login"], q
    follow_provider(idp, url, "ana")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, out + err
    assert not result_of(f)[0].get("isError")
    assert (files_root / "s.txt").read_text() == "stepped up"
    rows = [json.loads(l) for l in warden.cli("log", "--json").stdout.splitlines()]
    steps = [json.loads(r["detail"]) for r in rows if r["kind"] == "approval.step_up"]
    assert any(s.get("how") == "sso" and s["result"] == "verified" for s in steps), steps


def sso_login_with(warden, idp: str, who: str, *args: str, password: str | None = None,
                   code: str | None = None) -> sp.CompletedProcess:
    """`warden login --sso`; with `code`, a Warden code given (as a person
    types it) after the password on standard input."""
    extra = ("--password-stdin",) if password is not None else ()
    extra += ("--totp",) if code is not None else ()
    p = sp.Popen([str(WARDEN), "--data-dir", str(warden.data_dir), "login", "--sso", "--no-browser", *args, *extra],
                 env=dict(os.environ, WARDEN_BROWSER="none"), stdin=sp.PIPE, stdout=sp.PIPE, stderr=sp.PIPE, text=True)
    if password is not None:
        p.stdin.write(password + "\n")
    if code is not None:
        p.stdin.write(code + "\n")
    p.stdin.write(warden.unlock_line())
    p.stdin.close()
    p.stdin = None  # communicate() below must not touch it again
    url = None
    while url is None:
        line = p.stdout.readline()
        assert line or p.poll() is None, p.stderr.read()
        if line.startswith("http"):
            url = line.strip()
    follow_provider(idp, url, who)
    out, err = p.communicate(timeout=60)
    if p.returncode == 0:
        warden.signed_in_through_provider(out)
    return sp.CompletedProcess(p.args, p.returncode, out, err)


def sso_link(warden, idp: str, who: str) -> sp.CompletedProcess:
    """`warden sso link` for whoever is signed in, signing in at the
    provider as WHO."""
    p = sp.Popen([*warden.prefix, str(WARDEN), "--data-dir", str(warden.data_dir), "sso", "link", "--no-browser"],
                 env=dict(os.environ, WARDEN_BROWSER="none"), stdin=sp.PIPE, stdout=sp.PIPE, stderr=sp.PIPE, text=True)
    p.stdin.write(warden.unlock_line())
    p.stdin.close()
    p.stdin = None
    url = None
    while url is None:
        line = p.stdout.readline()
        if not line and p.poll() is not None:
            return sp.CompletedProcess(p.args, p.returncode, "", p.stderr.read())
        if line.startswith("http"):
            url = line.strip()
    follow_provider(idp, url, who)
    out, err = p.communicate(timeout=60)
    return sp.CompletedProcess(p.args, p.returncode, out, err)


def test_a_provider_account_that_only_carries_a_persons_name_never_signs_in_as_them(warden, idp):
    # The admin `ana` and the member `ben` are local accounts. Provider
    # accounts whose preferred_username is "ana" or "ben" used to be linked to
    # them by that name alone, ana's groups then rewriting her role.
    configure(warden, idp)
    warden.add_person("ana", "--admin")
    ben = warden.add_person("ben")
    for who in ("ana", "ben"):
        out = sso_login(warden, idp, who)
        assert out.returncode != 0 and "not linked" in out.stderr, out.stdout + out.stderr
        assert whoami(warden) == "admin (admin)", "a refused sign-in keeps the session there was"
    rows = [json.loads(l) for l in warden.cli("log", "--json").stdout.splitlines()]
    refused = {r["on_behalf_of"]: json.loads(r["detail"]) for r in rows if r["kind"] == "auth.sign_in_failed"}
    assert refused["ana"]["why"] == refused["ben"]["why"] == "not linked", refused
    assert not [r for r in rows if r["kind"] == "auth.sign_in" and json.loads(r["detail"]).get("how") == "sso"]
    users = {u["name"]: u for u in json.loads(warden.cli("user", "list", "--json").stdout)}
    assert users["ana"]["role"] == "admin", "no provider group touched the unlinked admin"

    # The admin links ben to exactly the identity the refusal recorded.
    subject = refused["ben"]["subject"]
    assert subject.endswith("|ben"), subject
    warden.cli("user", "sso-link", "ben", "--subject", subject)
    ok = sso_login(warden, idp, "ben")
    assert ok.returncode == 0 and whoami(warden) == "ben (member)", ok.stderr
    # That identity is now ben's and nobody else's.
    warden.admin.login()
    again = warden.cli("user", "sso-link", "ana", "--subject", subject, check=False)
    assert again.returncode != 0 and "already linked to the Warden account ben" in again.stderr
    rows = [json.loads(l) for l in warden.cli("log", "--json").stdout.splitlines()]
    links = [json.loads(r["detail"]) for r in rows if r["kind"] == "person.sso_linked"]
    assert [(d["target"], d["after"]["by"]) for d in links] == [("ben", "admin")], links
    del ben


def test_a_person_links_their_own_provider_account_while_signed_in(warden, idp):
    configure(warden, idp)
    ben = warden.add_person("ben")
    # Not signed in as ben: nothing to link.
    ben.login()
    assert whoami(warden) == "ben (member)"
    linked = sso_link(warden, idp, "ben")
    assert linked.returncode == 0, linked.stdout + linked.stderr
    assert "Linked to the provider account ben (" in linked.stdout, linked.stdout
    ok = sso_login(warden, idp, "ben")
    assert ok.returncode == 0 and whoami(warden) == "ben (member)", ok.stderr
    # A second link, to another provider account, is refused.
    ben.login()
    other = sso_link(warden, idp, "ana")
    assert other.returncode != 0 and "already linked" in other.stderr, other.stderr
    warden.admin.login()
    rows = [json.loads(l) for l in warden.cli("log", "--json").stdout.splitlines()]
    links = [json.loads(r["detail"]) for r in rows if r["kind"] == "person.sso_linked"]
    assert [l["after"]["by"] for l in links] == ["self"], links


def test_linking_needs_a_fresh_second_factor(warden, idp):
    # A session found lying around, whose code is long past, cannot tie a
    # Warden account to a provider account someone else holds.
    configure(warden, idp)
    ben = warden.add_person("ben")
    # Six minutes on (the CLI under faketime), the code is past.
    warden.prefix = ["faketime", "-f", "+6m"]
    stale = sso_link(warden, idp, "ana")
    bind = warden.cli("user", "sso-link", "ben", "--subject", "ana", check=False)
    warden.prefix = []
    assert stale.returncode != 0 and "confirm it is you" in stale.stderr, stale.stderr
    assert bind.returncode != 0 and "confirm it is you" in bind.stderr, bind.stderr
    out = sso_login(warden, idp, "ana")
    assert out.returncode == 0 and whoami(warden) == "ana (admin)", "ana is a new person, made by the provider"
    out = sso_login(warden, idp, "ben")
    assert out.returncode != 0 and "not linked" in out.stderr
    del ben


def test_a_warden_code_can_stand_in_for_mfa_when_the_admin_allows_it(warden, idp):
    configure(warden, idp, "--totp-fallback")
    pat = warden.add_person("pat")
    # Until pat's Warden account is linked, a code does not help.
    unlinked = sso_login_with(warden, idp, "pat", code=pat.next_code(), password=pat.password)
    assert unlinked.returncode != 0 and "linked" in unlinked.stderr, unlinked.stderr
    # pat's provider account shows no MFA, so she cannot link it herself
    # (the link would rest on the provider's word alone); an admin does.
    pat.login()
    linked = sso_link(warden, idp, "pat")
    assert linked.returncode != 0 and "multi-factor" in linked.stderr, linked.stdout + linked.stderr
    warden.admin.login()
    warden.cli("user", "sso-link", "pat", "--subject", "pat")
    bare = sso_login_with(warden, idp, "pat")
    assert bare.returncode != 0 and "--totp" in bare.stderr, bare.stderr
    # Her authenticator secret is sealed with her Warden password: with no
    # Warden running, a code alone cannot be checked.
    locked = sp.run([str(WARDEN), "--data-dir", str(warden.data_dir), "login", "--sso", "--no-browser", "--totp"],
                    env=dict(os.environ, WARDEN_BROWSER="none"), input=pat.next_code() + "\n",
                    capture_output=True, text=True, timeout=60)
    assert locked.returncode != 0 and "password" in locked.stderr, "a code was checked without the password that unseals it"
    wrong = sso_login_with(warden, idp, "pat", code="000000", password=pat.password)
    assert wrong.returncode != 0 and "wrong authenticator code" in wrong.stderr, wrong.stderr
    ok = sso_login_with(warden, idp, "pat", code=pat.next_code(), password=pat.password)
    assert ok.returncode == 0, ok.stderr
    warden.signed_in = pat
    assert whoami(warden) == "pat (member)"
