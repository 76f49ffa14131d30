// React access to the backend: a context, typed queries and actions.
import { createContext, useCallback, useContext, type ReactNode } from "react";
import { useMutation, useQuery, useQueryClient, type QueryKey, type UseQueryOptions } from "@tanstack/react-query";
import { ask, type Backend } from "./backend";
import { useMfa } from "./components/MfaProvider";
import { MfaCancelled } from "./errors";
import type { Request, ResponseKind, ValueOf } from "./types";

const BackendContext = createContext<Backend | null>(null);

export function BackendProvider({ backend, children }: { backend: Backend; children: ReactNode }) {
  return <BackendContext.Provider value={backend}>{children}</BackendContext.Provider>;
}

export function useBackend(): Backend {
  const b = useContext(BackendContext);
  if (!b) throw new Error("useBackend outside BackendProvider");
  return b;
}

/** `ask` bound to this app's backend. */
export function useAsk() {
  const backend = useBackend();
  return useCallback(<K extends ResponseKind>(request: Request, kind: K) => ask(backend, request, kind), [backend]);
}

/** A query of one API call. */
export function useCall<K extends ResponseKind>(
  key: QueryKey,
  request: Request,
  kind: K,
  options: Omit<UseQueryOptions<ValueOf<K>>, "queryKey" | "queryFn"> = {},
) {
  const backend = useBackend();
  return useQuery<ValueOf<K>>({
    queryKey: key,
    queryFn: () => ask(backend, request, kind),
    ...options,
  });
}

export interface ActionOptions<T, V> {
  /** Query keys to refresh afterwards. */
  invalidate?: QueryKey[];
  onSuccess?: (value: T, vars: V) => void;
  /** Cancelling the code dialog is not an error and never reaches here. */
  onError?: (error: unknown, vars: V) => void;
}

/**
 * A change through the API. Sensitive changes that answer `mfa_required`
 * ask for an authenticator code, confirm it, and run again.
 */
export function useAction<V, T>(run: (vars: V) => Promise<T>, opts: ActionOptions<T, V> = {}) {
  const client = useQueryClient();
  const mfa = useMfa();
  return useMutation<T, unknown, V>({
    mutationFn: (vars: V) => mfa.guard(() => run(vars)),
    onSuccess: async (value, vars) => {
      await Promise.all((opts.invalidate ?? []).map((queryKey) => client.invalidateQueries({ queryKey })));
      opts.onSuccess?.(value, vars);
    },
    onError: (error, vars) => {
      if (!(error instanceof MfaCancelled)) opts.onError?.(error, vars);
    },
  });
}

export const keys = {
  status: ["status"] as const,
  whoami: ["whoami"] as const,
  servers: ["servers"] as const,
  tools: (name: string) => ["tools", name] as const,
  toolsAll: ["tools"] as const,
  quarantined: ["quarantined"] as const,
  approvals: ["approvals"] as const,
  activity: ["activity"] as const,
  roles: ["roles"] as const,
  users: ["users"] as const,
  agents: ["agents"] as const,
  review: ["review"] as const,
  presets: ["presets"] as const,
  sso: ["sso"] as const,
  serverAuth: ["server-auth"] as const,
  consent: (name: string) => ["consent", name] as const,
  heldSettings: ["held-settings"] as const,
};
