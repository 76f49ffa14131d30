import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { absentBackend, inTauri, tauriBackend, type Backend } from "./backend";
import { Root } from "./Root";

async function pickBackend(): Promise<Backend> {
  if (inTauri()) return tauriBackend();
  // `npm run dev` in a plain browser: a demo install kept in memory. This
  // branch (and the demo) is left out of production builds.
  if (import.meta.env.DEV) {
    const { demoBackend } = await import("./test/demo");
    return demoBackend();
  }
  return absentBackend();
}

void pickBackend().then((backend) => {
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <Root backend={backend} />
    </StrictMode>,
  );
});
