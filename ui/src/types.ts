// The API's types come from Rust (generated into ./bindings by ts-rs).
// This file only re-exports them and adds the few shapes the API sends as
// free JSON (a server's tool list).
export type {
  ActivityRow,
  Agent,
  AgentCreated,
  AgentReview,
  AppStatus,
  ApprovalRequest,
  ClientApp,
  ClientConnected,
  Consent,
  DayCount,
  Enrollment,
  ErrorCode,
  ExportFormat,
  GrantRow,
  HeldSetting,
  Invitation,
  LogFilter,
  Pending,
  PersonReview,
  Pin,
  ProbeReport,
  Request,
  Response,
  Review,
  Role,
  ServerInfo,
  ServerPreset,
  ServerSpec,
  SettingsReview,
  SsoConfig,
  ToolReview,
  User,
} from "./bindings";

import type { Response } from "./bindings";

export type ResponseKind = Response["kind"];

/** The `value` a response of kind K carries (undefined for `done`). */
export type ValueOf<K extends ResponseKind> = Extract<Response, { kind: K }> extends { value: infer V } ? V : undefined;

export type RiskLevel = "low" | "high" | "critical";

/** A tool as `server_tools` lists it: the server's own JSON plus Warden's verdict. */
export interface ToolJson {
  name: string;
  title?: string;
  description?: string;
  annotations?: {
    title?: string;
    readOnlyHint?: boolean;
    destructiveHint?: boolean;
    idempotentHint?: boolean;
    openWorldHint?: boolean;
  };
  warden?: {
    risk: RiskLevel;
    why: string[];
    definition_hash: string;
    state: "seen" | "pinned" | "quarantined" | "rejected";
    quarantine: string | null;
  };
}
