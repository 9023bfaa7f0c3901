// clock.js: a synckairos session's clocks in the browser. One ES module,
// no dependencies, served by skhttp.Script(); types in clock.d.ts.
//
//   import { Clock } from "/clock.js";
//   const clock = new Clock({
//     streams: ["/games/42/clock"],          // SSE streams (skhttp.Stream), tried in turn;
//                                            // ws:// or wss:// URLs: WebSockets sending
//                                            // skhttp.FeedEvent JSON messages
//     time: "/time",                         // skhttp.Time
//     onView: (view) => render(view),        // each new view of the session
//     onTick: (clocks, view) => draw(clocks),// every animation frame
//     onFlag: (participantID) => {},         // a running clock reached zero
//     onFinish: (view) => {},                // the session finished
//   });
//   await clock.start();
//
// The server is the authority: the views it streams say what each clock
// showed at their server_time; between them the clock runs on locally on
// the server's time, estimated from a few samples of the time endpoint
// (the one with the smallest round trip wins), and snaps to each view.

export class Clock {
  constructor(opts) {
    this.streams = opts.streams;
    this.timeURL = opts.time;
    this.samples = opts.samples ?? 5;
    this.onView = opts.onView ?? (() => {});
    this.onTick = opts.onTick ?? (() => {});
    this.onFlag = opts.onFlag ?? (() => {});
    this.onFinish = opts.onFinish ?? (() => {});
    this.offset = 0; // server time − local time, ms
    this.rtt = Infinity;
    this.view = null;
    this.flagged = new Set();
    this.finished = false;
    this.streamIndex = 0;
    this.source = null;
    this.stopped = false;
    this.lastEventID = "";
    this.retry = 250; // ms before opening the next stream
  }

  // start estimates the offset, opens the stream, and starts ticking.
  async start() {
    await this.sync();
    this.open();
    const frame = () => {
      if (this.stopped) return;
      this.tick();
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  stop() {
    this.stopped = true;
    if (this.source) this.source.close();
  }

  // now returns the estimated server time, in Unix ms.
  now() {
    return performance.timeOrigin + performance.now() + this.offset;
  }

  // sync takes samples of the time endpoint and keeps the offset of the
  // one with the smallest round trip.
  async sync() {
    for (let i = 0; i < this.samples; i++) {
      const t0 = performance.timeOrigin + performance.now();
      let t;
      try {
        const res = await fetch(this.timeURL, { cache: "no-store" });
        t = await res.json();
      } catch {
        continue;
      }
      const t1 = performance.timeOrigin + performance.now();
      const rtt = t1 - t0 - (t.sent_ms - t.received_ms);
      if (rtt < this.rtt) {
        this.rtt = rtt;
        this.offset = (t.received_ms - t0 + (t.sent_ms - t1)) / 2;
      }
    }
  }

  // open opens the next stream; on an error it moves on to the next one
  // (another instance), resuming from the last view it had.
  open() {
    if (this.stopped) return;
    let url = this.streams[this.streamIndex % this.streams.length];
    if (this.lastEventID) {
      url += (url.includes("?") ? "&" : "?") + "last_event_id=" + encodeURIComponent(this.lastEventID);
    }
    const next = () => {
      // The next stream; after a failure of each in turn, less often
      // (an instance down, or a session unknown there): up to every 5 s.
      this.streamIndex++;
      setTimeout(() => this.open(), this.retry);
      this.retry = Math.min(this.retry * 2, 5000);
    };
    const deleted = () => {
      this.finished = true;
      this.onFinish(this.view);
    };
    if (/^wss?:/.test(url)) {
      // A WebSocket: one JSON message per event, {event, id, data}.
      const ws = new WebSocket(url);
      this.source = ws;
      let over = false;
      ws.onmessage = (e) => {
        const ev = JSON.parse(e.data);
        if (ev.event === "view") {
          if (this.snap(ev.data)) this.lastEventID = ev.id;
        } else if (ev.event === "deleted") {
          over = true;
          ws.close();
          deleted();
        }
      };
      ws.onclose = () => {
        if (!over && !this.stopped) next();
      };
      return;
    }
    const source = new EventSource(url);
    this.source = source;
    source.addEventListener("view", (e) => {
      if (this.snap(JSON.parse(e.data))) this.lastEventID = e.lastEventId;
    });
    source.addEventListener("deleted", () => {
      source.close();
      deleted();
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED || !this.finished) {
        source.close();
        next();
      }
    };
  }

  // snap takes a view from the server, unless it is older than the one it
  // has (lives only grow); it says whether it took it.
  snap(view) {
    const v = this.view;
    if (v && (view.life < v.life || (view.life === v.life && view.version < v.version))) return false; // stale
    this.view = view;
    this.retry = 250;
    this.onView(view);
    if (!this.finished && ["expired", "completed", "cancelled"].includes(view.status)) {
      this.finished = true;
      this.onFinish(view);
    }
    this.tick();
    return true;
  }

  tick() {
    if (!this.view) return;
    const clocks = this.clocks(this.now());
    for (const c of clocks) {
      if (c.running && c.remaining_ms === 0 && !this.flagged.has(c.participant_id)) {
        this.flagged.add(c.participant_id);
        this.onFlag(c.participant_id);
      }
    }
    this.onTick(clocks, this.view);
  }

  // clocks returns what each participant's clock shows at server time t:
  // the view's figures, run on by the time since the view was taken.
  clocks(t) {
    const v = this.view;
    const ctl = v.control;
    const since = Math.max(0, t - Date.parse(v.server_time));
    return v.participants.map((p) => {
      const c = { ...p };
      if (!p.running || p.untimed) return c;
      c.remaining_ms = Math.max(0, p.remaining_ms - since);
      c.move_left_ms = Math.max(0, p.move_left_ms - since);
      let run = since; // what the bank runs for: after a simple delay
      if (p.delay_ms > 0) {
        c.delay_ms = Math.max(0, p.delay_ms - since);
        if (ctl.delay_mode === "simple") run = Math.max(0, since - p.delay_ms);
      }
      const ov = ctl.overtime;
      if (!ov || p.in_overtime) {
        if (!p.in_overtime) c.main_ms = Math.max(0, p.main_ms - run);
        if (p.in_overtime) Object.assign(c, runOvertime(ov, p.period_ms, p.periods, p.block_moves, run));
        return c;
      }
      // In main time at the view: the overtime begins when it runs out.
      c.main_ms = Math.max(0, p.main_ms - run);
      const over = run - p.main_ms;
      if (over > 0) Object.assign(c, { in_overtime: true }, runOvertime(ov, ov.period_ms, p.periods, ov.moves, over));
      return c;
    });
  }
}

// runOvertime runs a period (or block) of period ms on by run ms: byo-yomi
// moves to the next period when one runs out.
function runOvertime(ov, period, periods, blockMoves, run) {
  let left = period - run;
  if (ov.kind === "byoyomi") {
    while (left <= 0 && periods > 1) {
      left += ov.period_ms;
      periods--;
    }
  }
  if (left <= 0) return { period_ms: 0, periods: 0, block_moves: blockMoves };
  return { period_ms: left, periods, block_moves: blockMoves };
}
