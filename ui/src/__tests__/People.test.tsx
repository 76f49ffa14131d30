import { screen, within } from "@testing-library/react";
import { renderApp, shell } from "../test/render";

describe("adding a person", () => {
  it("asks for no password and shows the admin only a one-time setup code", async () => {
    const { user, fake } = renderApp({ route: "#/people" });
    await shell();
    await user.click(await screen.findByTestId("person-add"));
    expect(screen.queryByTestId("person-password")).not.toBeInTheDocument();
    await user.type(screen.getByTestId("person-name"), "carol");
    await user.click(screen.getByTestId("person-submit"));
    expect(await screen.findByTestId("invitation-code")).toHaveTextContent("abcde-fghij-klmno-pqrst");
    expect(fake.made("user_add")[0]).toEqual({ call: "user_add", name: "carol", admin: false, agent_roles: [] });
    expect(screen.queryByText("JBSWY3DPEHPK3PXP")).not.toBeInTheDocument();
    await user.click(screen.getByTestId("invitation-done"));
    const row = await screen.findByTestId("person-carol");
    expect(within(row).getByText("Waiting to set up")).toBeInTheDocument();
  });
});
