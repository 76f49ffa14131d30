import { screen, waitFor, within } from "@testing-library/react";
import { renderApp, shell } from "../test/render";
import { adminFormProblem } from "../screens/FirstRun";
import { strength } from "../components/PasswordStrength";

const fresh = {
  status: {
    initialized: false,
    user: null,
    sso: false,
    endpoint: null,
    paused: false,
    version: "0.1.0",
    data_dir: null,
    held_settings: [],
  },
};

describe("first run", () => {
  it("creates the admin, shows the authenticator setup once, signs in and gives a tour", async () => {
    const { user, fake } = renderApp({ state: fresh });
    await user.type(await screen.findByTestId("firstrun-name"), "alice");
    await user.type(screen.getByTestId("firstrun-password"), "correct horse battery");
    await user.type(screen.getByTestId("firstrun-password2"), "correct horse batterx");
    await user.click(screen.getByTestId("firstrun-create"));
    expect(await screen.findByTestId("firstrun-error")).toHaveTextContent("not the same");
    expect(fake.made("init")).toHaveLength(0);

    await user.clear(screen.getByTestId("firstrun-password2"));
    await user.type(screen.getByTestId("firstrun-password2"), "correct horse battery");
    await user.click(screen.getByTestId("firstrun-create"));

    expect(await screen.findByTestId("enroll-secret")).toHaveTextContent("JBSWY3DPEHPK3PXP");
    expect(fake.made("init")[0]).toEqual({ call: "init", admin: "alice", password: "correct horse battery" });
    const codes = screen.getByTestId("recovery-codes");
    expect(codes).toHaveTextContent("abcde-fghij");
    expect(codes).toHaveTextContent("uvwxy-z0123");
    // The QR code is an image made from the SVG, never markup in the page.
    const qr = screen.getByRole("img", { name: /QR code/ });
    expect(qr.getAttribute("src")).toMatch(/^data:image\/svg\+xml;base64,/);
    expect(document.querySelector("svg rect")).toBeNull();

    // Continuing needs the "I saved them" tick first.
    expect(screen.getByTestId("enroll-continue")).toBeDisabled();
    await user.click(screen.getByTestId("enroll-saved"));
    await user.type(screen.getByTestId("enroll-code"), "123456");
    await user.click(screen.getByTestId("enroll-continue"));

    await shell();
    expect(fake.made("login")[0]).toEqual({
      call: "login",
      name: "alice",
      password: "correct horse battery",
      totp: "123456",
      recovery: null,
    });

    const tour = await screen.findByRole("dialog", { name: "A quick tour" });
    expect(within(tour).getByText(/stands between your AI apps/)).toBeInTheDocument();
    await user.click(within(tour).getByTestId("tour-next"));
    expect(within(tour).getByText(/Tools come from/)).toBeInTheDocument();
    await user.click(within(tour).getByTestId("tour-next"));
    await user.click(within(tour).getByTestId("tour-next"));
    expect(within(tour).queryByTestId("tour-next")).not.toBeInTheDocument();
    await user.click(within(tour).getByTestId("tour-done"));
    await waitFor(() => expect(screen.queryByRole("dialog", { name: "A quick tour" })).not.toBeInTheDocument());
  });

  it("stays on the code step when the code is wrong", async () => {
    const { user } = renderApp({ state: fresh });
    await user.type(await screen.findByTestId("firstrun-name"), "alice");
    await user.type(screen.getByTestId("firstrun-password"), "correct horse battery");
    await user.type(screen.getByTestId("firstrun-password2"), "correct horse battery");
    await user.click(screen.getByTestId("firstrun-create"));
    await user.click(await screen.findByTestId("enroll-saved"));
    await user.type(screen.getByTestId("enroll-code"), "000000");
    await user.click(screen.getByTestId("enroll-continue"));
    const error = await screen.findByTestId("enroll-error");
    expect(error).toHaveTextContent("That code did not work");
    expect(error).toHaveTextContent(/the code your app shows for Warden \(alice\)/);
    expect(error).toHaveTextContent(/sets its time automatically/);
    expect(error).not.toHaveTextContent(/name, password or code/);
    expect(screen.getByTestId("enroll-secret")).toBeInTheDocument();
  });

  it("lets the tour be skipped", async () => {
    const { user } = renderApp({ state: fresh });
    await user.type(await screen.findByTestId("firstrun-name"), "alice");
    await user.type(screen.getByTestId("firstrun-password"), "correct horse battery");
    await user.type(screen.getByTestId("firstrun-password2"), "correct horse battery");
    await user.click(screen.getByTestId("firstrun-create"));
    await user.click(await screen.findByTestId("enroll-saved"));
    await user.type(screen.getByTestId("enroll-code"), "123456");
    await user.click(screen.getByTestId("enroll-continue"));
    await user.click(await screen.findByTestId("tour-skip"));
    await waitFor(() => expect(screen.queryByTestId("tour-skip")).not.toBeInTheDocument());
    expect(screen.getByTestId("nav-home")).toBeInTheDocument();
  });
});

describe("first-run rules", () => {
  it("checks the admin form", () => {
    expect(adminFormProblem("", "x".repeat(12), "x".repeat(12))).toMatch(/name/);
    expect(adminFormProblem("a", "short", "short")).toMatch(/12 characters/);
    expect(adminFormProblem("a", "correct horse", "correct horsf")).toMatch(/not the same/);
    expect(adminFormProblem("a", "correct horse", "correct horse")).toBeNull();
  });
  it("rates passwords and says how to improve them", () => {
    expect(strength("abc").hint).toMatch(/Too short/);
    expect(strength("aaaaaaaaaaaaaaaa").score).toBe(0);
    expect(strength("Correct-Horse-Battery-9").score).toBe(4);
  });
});
