import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { QueryClient } from "@tanstack/react-query";
import { Root } from "../Root";
import { FakeBackend, type FakeState } from "./fakeBackend";

/** The whole app on a fake backend, at a hash route. */
export function renderApp(opts: { state?: Partial<FakeState>; fake?: FakeBackend; route?: string } = {}) {
  const fake = opts.fake ?? new FakeBackend(opts.state);
  window.location.hash = opts.route ?? "#/";
  const client = new QueryClient({ defaultOptions: { queries: { retry: false, staleTime: 0 } } });
  const user = userEvent.setup();
  const utils = render(<Root backend={fake} queryClient={client} env="test" />);
  return { fake, user, client, ...utils };
}

/** Waits for the signed-in shell. */
export async function shell() {
  return screen.findByTestId("nav-home", {}, { timeout: 3000 });
}
