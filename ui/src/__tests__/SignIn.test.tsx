import { screen, waitFor } from "@testing-library/react";
import { fail } from "../test/fakeBackend";
import { renderApp, shell } from "../test/render";
import { offersCodeFallback, signInProblem } from "../screens/SignIn";

const signedOut = {
  status: {
    initialized: true,
    user: null,
    sso: false,
    endpoint: null,
    paused: false,
    version: "0.1.0",
    data_dir: null,
    held_settings: [],
  },
};

describe("sign-in form", () => {
  it("says what is missing before asking Warden", async () => {
    const { user, fake } = renderApp({ state: signedOut });
    await user.click(await screen.findByTestId("signin-submit"));
    expect(await screen.findByTestId("signin-error")).toHaveTextContent("Enter your name.");
    await user.type(screen.getByTestId("signin-name"), "alice");
    await user.type(screen.getByTestId("signin-password"), "correct horse battery");
    await user.type(screen.getByTestId("signin-code"), "12");
    await user.click(screen.getByTestId("signin-submit"));
    expect(await screen.findByTestId("signin-error")).toHaveTextContent(/6-digit code/);
    expect(fake.made("login")).toHaveLength(0);
  });

  it("shows Warden's refusal in plain words and stays on the form", async () => {
    const { user, fake } = renderApp({ state: signedOut });
    await user.type(await screen.findByTestId("signin-name"), "alice");
    await user.type(screen.getByTestId("signin-password"), "wrong password!");
    await user.type(screen.getByTestId("signin-code"), "123456");
    await user.click(screen.getByTestId("signin-submit"));
    const error = await screen.findByTestId("signin-error");
    expect(error).toHaveTextContent("Could not sign in");
    expect(error).toHaveTextContent("The name, password or code is not right; check them and try again.");
    expect(fake.made("login")).toHaveLength(1);
    expect(screen.queryByTestId("nav-home")).not.toBeInTheDocument();
    // The code is kept (it still works if the password was the wrong part),
    // with a word about the phone's clock.
    expect(screen.getByTestId("signin-code")).toHaveValue("123456");
    expect(screen.getByTestId("signin-clock-hint")).toHaveTextContent(/date and time automatically/);
  });

  it("signs in with name, password and code, then shows the app", async () => {
    const { user, fake } = renderApp({ state: signedOut });
    await user.type(await screen.findByTestId("signin-name"), "alice");
    await user.type(screen.getByTestId("signin-password"), "correct horse battery");
    await user.type(screen.getByTestId("signin-code"), "123456");
    await user.click(screen.getByTestId("signin-submit"));
    await shell();
    expect(fake.made("login")[0]).toEqual({
      call: "login",
      name: "alice",
      password: "correct horse battery",
      totp: "123456",
      recovery: null,
    });
    expect(screen.getByTestId("user-menu")).toHaveAccessibleName("Signed in as alice");
  });

  it("accepts a recovery code instead of the authenticator code", async () => {
    const { user, fake } = renderApp({ state: signedOut });
    await user.type(await screen.findByTestId("signin-name"), "alice");
    await user.type(screen.getByTestId("signin-password"), "correct horse battery");
    await user.click(screen.getByTestId("signin-use-recovery"));
    expect(screen.queryByTestId("signin-code")).not.toBeInTheDocument();
    await user.type(screen.getByTestId("signin-recovery"), "abcde-fghij");
    await user.click(screen.getByTestId("signin-submit"));
    await shell();
    expect(fake.made("login")[0]).toMatchObject({ totp: null, recovery: "abcde-fghij" });
  });

  it("offers the company account only when single sign-on is set up", async () => {
    renderApp({ state: signedOut });
    await screen.findByTestId("signin-submit");
    expect(screen.queryByTestId("signin-sso")).not.toBeInTheDocument();
  });

  it("signs in with the company account, showing the address to open", async () => {
    let finish!: () => void;
    const { user, fake } = renderApp({ state: { ...signedOut, status: { ...signedOut.status, sso: true } } });
    fake
      .handle("sso_login_start", () => ({
        kind: "sso_started",
        value: { flow: "f1", url: "https://idp.example/authorize?x=1", issuer: "https://idp.example" },
      }))
      .handle(
        "sso_login_finish",
        (_, f) =>
          new Promise((resolve) => {
            finish = () => {
              f.state.status = { ...f.state.status, user: f.state.users[0]! };
              resolve({ kind: "signed_in", value: { user: f.state.users[0]!, token: "t", expires_s: 1 } });
            };
          }),
      );
    await user.click(await screen.findByTestId("signin-sso"));
    expect(await screen.findByTestId("sso-url")).toHaveTextContent("https://idp.example/authorize?x=1");
    expect(screen.getByText(/If your browser did not open/)).toBeInTheDocument();
    await waitFor(() =>
      expect(fake.made("sso_login_finish")).toEqual([{ call: "sso_login_finish", flow: "f1", totp: null }]),
    );
    finish();
    await shell();
  });

  it("asks for a Warden code when the company sign-in had no MFA and a code may stand in", async () => {
    const { user, fake } = renderApp({ state: { ...signedOut, status: { ...signedOut.status, sso: true } } });
    let n = 0;
    fake
      .handle("sso_login_start", () => ({
        kind: "sso_started",
        value: { flow: `f${++n}`, url: "https://idp.example/a", issuer: "https://idp.example" },
      }))
      .handle("sso_login_finish", (req, f) => {
        if (req.call === "sso_login_finish" && req.totp === "654321") {
          f.state.status = { ...f.state.status, user: f.state.users[0]! };
          return { kind: "signed_in", value: { user: f.state.users[0]!, token: "t", expires_s: 1 } };
        }
        fail(
          "unauthenticated",
          "your sign-in at https://idp.example did not use multi-factor authentication, which Warden requires. Sign in again with MFA, or add a code from your Warden authenticator app: warden login --sso --totp (it asks for the code)",
        );
      });
    await user.click(await screen.findByTestId("signin-sso"));
    await user.type(await screen.findByTestId("sso-code"), "654321");
    await user.click(screen.getByTestId("sso-retry"));
    await shell();
    expect(fake.made("sso_login_finish").at(-1)).toEqual({ call: "sso_login_finish", flow: "f2", totp: "654321" });
  });
});

describe("sign-in rules", () => {
  const base = { name: "a", password: "p", code: "123456", recovery: "", useRecovery: false };
  it("needs six digits, or a recovery code instead", () => {
    expect(signInProblem(base)).toBeNull();
    expect(signInProblem({ ...base, code: "12345" })).toMatch(/6-digit/);
    expect(signInProblem({ ...base, useRecovery: true })).toMatch(/recovery/);
    expect(signInProblem({ ...base, name: " " })).toBe("Enter your name.");
  });
  it("recognises when a Warden code may stand in for the provider's MFA", () => {
    expect(
      offersCodeFallback("did not use multi-factor authentication ... add the code from your Warden authenticator app"),
    ).toBe(true);
    expect(
      offersCodeFallback(
        "did not use multi-factor authentication, which Warden requires. Sign in again with MFA (your authenticator app or security key)",
      ),
    ).toBe(false);
  });
});

describe("setting up an account with a code", () => {
  it("checks the form, then shows the person's own authenticator secret and returns to sign-in", async () => {
    const { user, fake } = renderApp({ state: signedOut });
    await user.click(await screen.findByTestId("signin-enrol"));
    await user.type(screen.getByTestId("enrol-name"), "bob");
    await user.type(screen.getByTestId("enrol-code"), "abcde-fghij");
    await user.click(screen.getByTestId("enrol-submit"));
    expect(await screen.findByTestId("enrol-error")).toHaveTextContent("Enter the whole setup code");
    await user.type(screen.getByTestId("enrol-code"), "-klmno-pqrst");
    await user.type(screen.getByTestId("enrol-password"), "a passphrase of my own");
    await user.type(screen.getByTestId("enrol-again"), "a passphrase not the same");
    await user.click(screen.getByTestId("enrol-submit"));
    expect(await screen.findByTestId("enrol-error")).toHaveTextContent("The two passwords differ");
    expect(fake.made("enrol")).toHaveLength(0);
    await user.clear(screen.getByTestId("enrol-again"));
    await user.type(screen.getByTestId("enrol-again"), "a passphrase of my own");
    await user.click(screen.getByTestId("enrol-submit"));
    expect(await screen.findByText("JBSWY3DPEHPK3PXP")).toBeInTheDocument();
    expect(fake.made("enrol")[0]).toEqual({
      call: "enrol",
      name: "bob",
      code: "abcde-fghij-klmno-pqrst",
      password: "a passphrase of my own",
    });
    expect(screen.getByTestId("enrol-done")).toBeDisabled();
  });

  it("says plainly when the code is wrong", async () => {
    const { user } = renderApp({ state: signedOut });
    await user.click(await screen.findByTestId("signin-enrol"));
    await user.type(screen.getByTestId("enrol-name"), "bob");
    await user.type(screen.getByTestId("enrol-code"), "zzzzz-zzzzz-zzzzz-zzzzz");
    await user.type(screen.getByTestId("enrol-password"), "a passphrase of my own");
    await user.type(screen.getByTestId("enrol-again"), "a passphrase of my own");
    await user.click(screen.getByTestId("enrol-submit"));
    expect(await screen.findByTestId("enrol-error")).toHaveTextContent(/ask your admin for a new code/i);
  });
});
