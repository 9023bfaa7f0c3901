// Types of synckairos's client view (synckairos.View, as skhttp.Stream
// sends it) and of clock.js. Durations are whole milliseconds; times are
// RFC 3339 strings in UTC.

export type Mode = "per_participant" | "per_cycle" | "per_group" | "global" | "count_up";
export type Status = "pending" | "running" | "paused" | "expired" | "completed" | "cancelled";

export interface ParticipantView {
  participant_id: string;
  /** The clock runs: from server_time on, remaining_ms falls by the time that passes. */
  running: boolean;
  /** Ran out of time (as written, or at server_time). */
  expired: boolean;
  /** Time until the participant runs out, everything included. */
  remaining_ms: number;
  /** What is left of the bank (the main time). */
  main_ms: number;
  /** Delay left in the turn in progress. */
  delay_ms: number;
  in_overtime: boolean;
  /** Time left in the current byo-yomi period or Canadian block. */
  period_ms: number;
  /** Byo-yomi periods left, the current one included. */
  periods: number;
  /** Moves left in the current Canadian block. */
  block_moves: number;
  /** Stages of the time control begun. */
  stage: number;
  /** The turn in progress is an untimed first move. */
  untimed: boolean;
  /** Time left of the per-move maximum. */
  move_left_ms: number;
  lag_quota_ms: number;
}

export interface Overtime {
  kind: "byoyomi" | "canadian";
  periods: number;
  moves: number;
  period_ms: number;
}

export interface Transition {
  type: string;
  version: number;
  at: string;
  from?: string;
  to?: string;
  participant_id?: string;
  used_ms?: number;
  increment_ms?: number;
  refund_ms?: number;
  added_ms?: number;
  compensation_ms?: number;
  credit_ms?: number;
  transferred_ms?: number;
  periods_used?: number;
  expired?: string[];
}

export interface View {
  session_id: string;
  life: number;
  version: number;
  mode: Mode;
  status: Status;
  turn: number;
  /** The server time every duration of the view is as of. */
  server_time: string;
  active_participant_id: string;
  /** When the running turn's time runs out, if it can. */
  deadline: string | null;
  participants: ParticipantView[];
  control: {
    increment_ms: number;
    delay_ms: number;
    delay_mode: "" | "bronstein" | "simple";
    overtime: Overtime | null;
  };
  last_transition: Transition | null;
  metadata?: Record<string, string>;
  data?: unknown;
}

/** A message of a WebSocket stream (skhttp.FeedEvent). */
export type FeedEvent =
  /** id: "life/version" of the view, for resuming (last_event_id). */
  | { event: "view"; id: string; data: View }
  | { event: "deleted" };

export interface ClockOptions {
  /**
   * Stream URLs of the session, tried in turn: SSE streams (skhttp.Stream),
   * or ws:// and wss:// URLs of WebSockets sending FeedEvent messages.
   */
  streams: string[];
  /** The time endpoint (skhttp.Time). */
  time: string;
  /** Samples of the time endpoint taken to estimate the offset (5). */
  samples?: number;
  onView?: (view: View) => void;
  onTick?: (clocks: ParticipantView[], view: View) => void;
  onFlag?: (participantID: string) => void;
  onFinish?: (view: View | null) => void;
}

export class Clock {
  constructor(opts: ClockOptions);
  /** Estimated server time minus local time, ms. */
  offset: number;
  view: View | null;
  start(): Promise<void>;
  stop(): void;
  /** The estimated server time, Unix ms. */
  now(): number;
  /** What each clock shows at server time t (Unix ms). */
  clocks(t: number): ParticipantView[];
}
