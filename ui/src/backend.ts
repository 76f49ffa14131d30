// The one seam between the UI and Warden: the desktop shell answers over
// Tauri IPC; tests (and `npm run dev` in a plain browser) use an in-memory
// backend with the same interface.
import type { ErrorCode, Request, Response, ResponseKind, ValueOf } from "./types";

export interface Backend {
  call(request: Request): Promise<Response>;
  on(event: string, cb: (payload: unknown) => void): () => void;
  /** Shell-only commands (autostart, closing the prompt window); absent elsewhere. */
  shell?: ShellCommands;
}

export interface ShellCommands {
  autostartGet(): Promise<boolean>;
  autostartSet(enabled: boolean): Promise<void>;
  promptClose(): Promise<void>;
}

export const EVENTS = {
  approvals: "warden://approvals",
  servers: "warden://servers",
  activity: "warden://activity",
  session: "warden://session",
  navigate: "warden://navigate",
  notice: "warden://notice",
} as const;

const CODES: ErrorCode[] = [
  "invalid_input",
  "not_found",
  "conflict",
  "unavailable",
  "unauthenticated",
  "forbidden",
  "mfa_required",
  "locked",
  "internal",
];

/** An error the API answered with (or one made to look like it). */
export class ApiFailure extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "ApiFailure";
    this.code = code;
  }
}

/** Whatever a call rejected with, as an ApiFailure. */
export function toFailure(e: unknown): ApiFailure {
  if (e instanceof ApiFailure) return e;
  if (e && typeof e === "object" && "code" in e && "message" in e) {
    const { code, message } = e as { code: unknown; message: unknown };
    if (typeof code === "string" && CODES.includes(code as ErrorCode)) {
      return new ApiFailure(code as ErrorCode, String(message));
    }
  }
  if (typeof e === "string") return new ApiFailure("internal", e);
  if (e instanceof Error) return new ApiFailure("internal", e.message);
  return new ApiFailure("internal", "something went wrong inside Warden");
}

/** One call whose answer must be of `kind`; returns its value. */
export async function ask<K extends ResponseKind>(backend: Backend, request: Request, kind: K): Promise<ValueOf<K>> {
  let res: Response;
  try {
    res = await backend.call(request);
  } catch (e) {
    throw toFailure(e);
  }
  if (res.kind !== kind) {
    throw new ApiFailure("internal", `Warden answered "${res.kind}" where "${kind}" was expected`);
  }
  return ("value" in res ? res.value : undefined) as ValueOf<K>;
}

declare global {
  interface Window {
    __TAURI_INTERNALS__?: unknown;
  }
}

export function inTauri(): boolean {
  return typeof window !== "undefined" && window.__TAURI_INTERNALS__ !== undefined;
}

/** The desktop shell: one `rpc` command, events from the shell. */
export function tauriBackend(): Backend {
  const core = import("@tauri-apps/api/core");
  const event = import("@tauri-apps/api/event");
  return {
    async call(request) {
      const { invoke } = await core;
      return invoke<Response>("rpc", { request });
    },
    on(name, cb) {
      let stop: (() => void) | null = null;
      let stopped = false;
      void event.then(({ listen }) =>
        listen(name, (e) => cb(e.payload)).then((unlisten) => {
          if (stopped) unlisten();
          else stop = unlisten;
        }),
      );
      return () => {
        stopped = true;
        stop?.();
      };
    },
    shell: {
      async autostartGet() {
        const { invoke } = await core;
        return invoke<boolean>("autostart_get");
      },
      async autostartSet(enabled) {
        const { invoke } = await core;
        await invoke("autostart_set", { enabled });
      },
      async promptClose() {
        const { invoke } = await core;
        await invoke("prompt_close");
      },
    },
  };
}

/** Outside the desktop app in a production build: every call says so. */
export function absentBackend(): Backend {
  return {
    call: () =>
      Promise.reject(
        new ApiFailure(
          "unavailable",
          "this page works inside the Warden desktop app; open Warden from your applications menu",
        ),
      ),
    on: () => () => {},
  };
}
