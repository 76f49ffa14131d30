import { screen, within } from "@testing-library/react";
import { passwordChangeProblem } from "../screens/YourAccount";
import { renderApp, shell } from "../test/render";

async function openAccount() {
  const r = renderApp();
  await shell();
  await r.user.click(screen.getByTestId("nav-settings"));
  return { ...r, card: await screen.findByTestId("your-account") };
}

describe("your account", () => {
  it("changes the password with the current one, and says what was wrong otherwise", async () => {
    const { user, fake, card } = await openAccount();
    await user.type(within(card).getByTestId("account-current"), "correct horse battery");
    await user.type(within(card).getByTestId("account-new"), "a much longer new passphrase");
    await user.type(within(card).getByTestId("account-again"), "a much longer new passphras");
    await user.click(within(card).getByTestId("account-password-save"));
    expect(within(card).getByTestId("account-password-problem")).toHaveTextContent("not the same");
    expect(fake.made("password_change")).toHaveLength(0);
    await user.type(within(card).getByTestId("account-again"), "e");
    await user.click(within(card).getByTestId("account-password-save"));
    expect(await within(card).findByTestId("account-password-changed")).toHaveTextContent("Your password is changed");
    expect(fake.state.password).toBe("a much longer new passphrase");
  });

  it("makes new recovery codes and shows them once", async () => {
    const { user, card } = await openAccount();
    await user.type(within(card).getByTestId("account-recovery-password"), "not it");
    await user.click(within(card).getByTestId("account-recovery-go"));
    expect(await within(card).findByText(/password is not right/i)).toBeInTheDocument();
    await user.clear(within(card).getByTestId("account-recovery-password"));
    await user.type(within(card).getByTestId("account-recovery-password"), "correct horse battery");
    await user.click(within(card).getByTestId("account-recovery-go"));
    const codes = await within(card).findByTestId("account-recovery-codes");
    expect(codes).toHaveTextContent("shown only this time");
    expect(within(codes).getAllByText(/-code-/)).toHaveLength(10);
    await user.click(within(card).getByTestId("account-recovery-done"));
    expect(within(card).queryByTestId("account-recovery-codes")).not.toBeInTheDocument();
  });

  it("sets up a new phone and finishes only once the codes are saved", async () => {
    const { user, card } = await openAccount();
    await user.type(within(card).getByTestId("account-phone-password"), "correct horse battery");
    await user.click(within(card).getByTestId("account-phone-go"));
    const setup = await within(card).findByTestId("account-new-phone");
    expect(within(setup).getByTestId("enroll-secret")).toBeInTheDocument();
    expect(within(card).getByTestId("account-new-phone-done")).toBeDisabled();
  });

  it("checks a new password before it is sent", () => {
    expect(passwordChangeProblem("", "x".repeat(12), "x".repeat(12))).toMatch(/current/);
    expect(passwordChangeProblem("old", "short", "short")).toMatch(/12 characters/);
    expect(passwordChangeProblem("same password here", "same password here", "same password here")).toMatch(/same as/);
    expect(passwordChangeProblem("old", "a long new password", "a long new password")).toBeNull();
  });
});
