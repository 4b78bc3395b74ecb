// @ts-check
/**
 * The operator console: sign in with an operator key, then four views kept live by the gateway's
 * event stream — pending approvals (approve / deny), the audit timeline with chain status, agents
 * (contain / release) and delegations, and the posture score.
 *
 * Data flow: an event says *that* something changed; the view then re-reads the gateway's list
 * (approvals, agents, delegations) or the audit records after the last page it read. Re-reading
 * instead of patching from events keeps the page equal to the gateway's state after a reconnect.
 */
import { ApiError, createApi, segment } from "./api.js";
import { byId, h, preview, time } from "./dom.js";
import { followEvents } from "./events.js";

/** sessionStorage only: the key is gone when the tab closes and is never sent anywhere but /v1. */
const KEY_STORAGE = "aa.console.key";
/** Records per audit request: the newest page at sign-in, each "Load older" click, live catch-up. */
const AUDIT_PAGE = 100;
/**
 * At most this many records are kept on the page. Past it (a tab open for days on a busy
 * gateway), the timeline starts again from the newest page rather than grow without bound.
 */
const MAX_KEPT = 10_000;

/**
 * @typedef {import("./api.js").Api} Api
 * @typedef {import("./events.js").EngineEvent} EngineEvent
 * @typedef {{ id: string, agentId: string, actionType: string, state: string, createdAt: string, expiresAt: string, auditEventId: string, policyName?: string }} Approval
 * @typedef {{ id: string, seq: number, kind: string, time: string, agent: string, action_type: string, tool: string | null, args: unknown, status: string | null, denial_reason: string | null, policy_name: string | null, reason: string | null, mode: string }} AuditRecord
 * @typedef {{ agentId: string, contained: boolean, changedBy: string, reason: string | null, changedAt: string }} AgentControl
 * @typedef {{ id: string, agentId: string, parentAgentId: string, capabilities: string[], state: string, expiresAt: string }} Delegation
 * @typedef {{ orgId: string, role: string, keyId: string, agentId?: string }} WhoAmI
 */

const page = {
  signIn: byId("sign-in", HTMLElement),
  keyForm: byId("key-form", HTMLFormElement),
  keyInput: byId("key-input", HTMLInputElement),
  keyError: byId("key-error", HTMLElement),
  main: byId("console", HTMLElement),
  identity: byId("identity", HTMLElement),
  streamState: byId("stream-state", HTMLElement),
  signOut: byId("sign-out", HTMLButtonElement),
  notice: byId("notice", HTMLElement),
  approvalCount: byId("approval-count", HTMLElement),
  approvalsEmpty: byId("approvals-empty", HTMLElement),
  approvalList: byId("approval-list", HTMLUListElement),
  chainStatus: byId("chain-status", HTMLElement),
  chainStale: byId("chain-stale", HTMLElement),
  verify: byId("verify", HTMLButtonElement),
  auditProgress: byId("audit-progress", HTMLElement),
  auditRows: byId("audit-rows", HTMLTableSectionElement),
  auditOlder: byId("audit-older", HTMLButtonElement),
  auditEnd: byId("audit-end", HTMLElement),
  containForm: byId("contain-form", HTMLFormElement),
  containAgent: byId("contain-agent", HTMLInputElement),
  containReason: byId("contain-reason", HTMLInputElement),
  agentRows: byId("agent-rows", HTMLTableSectionElement),
  delegationsEmpty: byId("delegations-empty", HTMLElement),
  delegationTable: byId("delegation-table", HTMLTableElement),
  delegationRows: byId("delegation-rows", HTMLTableSectionElement),
  postureRefresh: byId("posture-refresh", HTMLButtonElement),
  postureScore: byId("posture-score", HTMLElement),
  postureParts: byId("posture-parts", HTMLElement),
  postureWindow: byId("posture-window", HTMLElement),
};

/** One signed-in operator's state; replaced on sign-in, dropped on sign-out. */
class Session {
  /**
   * @param {Api} api
   * @param {string} key
   * @param {WhoAmI} who
   */
  constructor(api, key, who) {
    this.api = api;
    this.key = key;
    this.who = who;
    this.stop = new AbortController();
    /** @type {Map<number, AuditRecord>} the records read (a contiguous run of seqs), by seq */
    this.records = new Map();
    /** @type {Map<string, AuditRecord>} the same records by id (an approval names its record) */
    this.recordsById = new Map();
    /** The newest seq read (0: the chain was empty); undefined until the first page is read. */
    /** @type {number | undefined} */
    this.newestSeq = undefined;
    /** The newest-first cursor to the records older than those read; undefined at the chain's start. */
    /** @type {string | undefined} */
    this.olderCursor = undefined;
    /** Rows on the page, by seq, so new and older records are added without re-rendering the rest. */
    /** @type {Map<number, HTMLTableRowElement>} */
    this.auditRowsBySeq = new Map();
    /** Agents that made a call in the records read so far (the agents view lists them). */
    /** @type {Set<string>} */
    this.seenAgents = new Set();
    /** @type {Map<string, Approval>} */
    this.approvals = new Map();
    /** @type {Map<string, HTMLLIElement>} */
    this.approvalItems = new Map();
    /** @type {AgentControl[]} */
    this.controls = [];
    /** @type {Map<string, { row: HTMLTableRowElement, state: HTMLElement, change: HTMLElement, button: HTMLButtonElement, reason: HTMLInputElement }>} */
    this.agentRows = new Map();
    this.connectedOnce = false;
    /** How many records the last chain check covered (records are numbered 1, 2, ... by seq). */
    /** @type {number | undefined} */
    this.verifiedThrough = undefined;
    this.refreshAudit = coalesce(() => loadNewerAudit(this));
    this.loadOlder = coalesce(() => loadOlderAudit(this));
    this.refreshApprovals = coalesce(() => loadApprovals(this));
    this.refreshAgents = coalesce(() => loadAgents(this));
    this.refreshDelegations = coalesce(() => loadDelegations(this));
    /** @type {Delegation[]} the delegations last read */
    this.delegations = [];
    /** The delegation whose revocation waits for the operator's confirmation (survives re-reads). */
    /** @type {string | undefined} */
    this.confirmingRevoke = undefined;
  }
}

/** @type {Session | undefined} */
let session;

// ------------------------------------------------------------------ sign in / out

page.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void signIn(page.keyInput.value.trim());
});
page.signOut.addEventListener("click", () => signOut());
page.verify.addEventListener("click", () => session && void verifyChain(session));
page.auditOlder.addEventListener("click", () => session && void session.loadOlder());
page.postureRefresh.addEventListener("click", () => session && void loadPosture(session));
page.containForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!session) return;
  const agentId = page.containAgent.value.trim();
  void setContained(session, agentId, true, page.containReason, page.containForm).then((done) => {
    if (done) page.containAgent.value = "";
  });
});

const stored = sessionStorage.getItem(KEY_STORAGE);
if (stored) void signIn(stored);

/** @param {string} key */
async function signIn(key) {
  showKeyError(undefined);
  if (key === "") return showKeyError("Paste an operator key (it starts with aa_operator_ or aa_admin_).");
  if (!/^aa_[a-z]+_/.test(key)) {
    return showKeyError(
      "That is not an Agent Assembly key: keys look like aa_operator_<id>_<secret>. Copy the whole key that `aa keys create --kind operator` printed.",
    );
  }
  const api = createApi(key);
  /** @type {WhoAmI} */
  let who;
  try {
    who = await api.get("/whoami");
  } catch (error) {
    sessionStorage.removeItem(KEY_STORAGE);
    return showKeyError(describeKeyError(error));
  }
  if (who.role === "agent") {
    sessionStorage.removeItem(KEY_STORAGE);
    return showKeyError(
      `This is an agent key (agent ${who.agentId}): agents cannot approve or contain. Use an operator or admin key: \`aa keys create --kind operator --org ${who.orgId}\`.`,
    );
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  page.keyInput.value = "";
  session?.stop.abort();
  const current = new Session(api, key, who);
  session = current;
  page.identity.textContent = `org ${who.orgId} · ${who.role} key ${who.keyId}`;
  page.signIn.hidden = true;
  page.main.hidden = false;
  page.signOut.hidden = false;
  clearViews();
  void followEvents({
    key,
    signal: current.stop.signal,
    onEvent: (event) => onEvent(current, event),
    onState: (state, detail) => onStreamState(current, state, detail),
  });
}

/** @param {string} [message] shown on the sign-in form */
function signOut(message) {
  session?.stop.abort();
  session = undefined;
  sessionStorage.removeItem(KEY_STORAGE);
  page.main.hidden = true;
  page.signOut.hidden = true;
  page.signIn.hidden = false;
  page.identity.textContent = "";
  setStreamBadge("stopped");
  clearViews();
  showKeyError(message);
  page.keyInput.focus();
}

/** @param {unknown} error */
function describeKeyError(error) {
  if (error instanceof ApiError) {
    if (error.status === 401) return `The gateway rejected this key: ${error.message}`;
    if (error.status === 0) return error.message;
    return `The gateway refused to sign in (${error.code}): ${error.message}`;
  }
  return `Sign-in failed: ${String(error)}`;
}

/** @param {string | undefined} message */
function showKeyError(message) {
  page.keyError.textContent = message ?? "";
  page.keyError.hidden = message === undefined;
}

function clearViews() {
  page.approvalList.replaceChildren();
  page.approvalCount.textContent = "0";
  page.approvalsEmpty.hidden = false;
  page.auditRows.replaceChildren();
  page.auditOlder.hidden = true;
  page.auditEnd.hidden = true;
  page.auditProgress.hidden = true;
  page.agentRows.replaceChildren();
  page.delegationRows.replaceChildren();
  page.delegationsEmpty.hidden = false;
  page.delegationTable.hidden = true;
  delete page.delegationTable.dataset.count;
  page.postureParts.replaceChildren();
  page.postureScore.textContent = "—";
  page.postureWindow.textContent = "";
  page.chainStatus.textContent = "Chain not checked yet";
  page.chainStatus.dataset.valid = "unknown";
  page.chainStale.hidden = true;
  page.notice.hidden = true;
}

// ------------------------------------------------------------------ live updates

/**
 * @param {Session} s
 * @param {import("./events.js").StreamState} state
 * @param {string} [detail]
 */
function onStreamState(s, state, detail) {
  if (s !== session) return;
  setStreamBadge(state, detail);
  if (state === "live") {
    // (Re)connected: read every list again, so nothing changed while offline is missed.
    void s.refreshAudit();
    void s.refreshApprovals();
    void s.refreshAgents();
    void s.refreshDelegations();
    if (!s.connectedOnce) {
      s.connectedOnce = true;
      void verifyChain(s);
      void loadPosture(s);
    }
  }
  if (state === "stopped" && detail !== undefined && !s.stop.signal.aborted) {
    signOut(`The gateway stopped the live stream: ${detail}`);
  }
}

/**
 * @param {import("./events.js").StreamState} state
 * @param {string} [detail]
 */
function setStreamBadge(state, detail) {
  page.streamState.dataset.state = state;
  page.streamState.textContent =
    state === "live"
      ? "live"
      : state === "stopped"
        ? "offline"
        : state === "retrying"
          ? "reconnecting…"
          : "connecting…";
  page.streamState.title = detail ?? "live event stream";
}

/**
 * @param {Session} s
 * @param {EngineEvent} event
 */
function onEvent(s, event) {
  if (s !== session) return;
  void s.refreshAudit();
  if (event.type === "approval.requested" || event.type === "approval.resolved") void s.refreshApprovals();
  const trigger = event.data?.trigger;
  if (trigger === "agent.contained" || trigger === "agent.released") void s.refreshAgents();
  if (event.type.startsWith("delegation.")) void s.refreshDelegations();
}

/**
 * Runs `task` now, or once more after the running call ends (calls in between are merged).
 * @param {() => Promise<void>} task
 */
function coalesce(task) {
  let running = false;
  let again = false;
  return async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await task();
      } while (again);
    } catch (error) {
      report(error);
    } finally {
      running = false;
    }
  };
}

/**
 * Shows a failed request; a key the gateway no longer accepts signs out.
 * @param {unknown} error
 */
function report(error) {
  if (error instanceof ApiError && error.status === 401) {
    signOut(`The gateway no longer accepts this key: ${error.message}`);
    return;
  }
  const text = error instanceof ApiError ? `${error.code}: ${error.message}` : String(error);
  notify(text, "error");
}

/**
 * @param {string} text
 * @param {"info" | "error"} [kind]
 */
function notify(text, kind = "info") {
  page.notice.textContent = text;
  page.notice.dataset.kind = kind;
  page.notice.hidden = false;
}

// ------------------------------------------------------------------ audit timeline

/**
 * Reads the records appended since the newest one on the page: newest first from the chain's head
 * until a record already read (one request when a few arrived). The first call reads the newest
 * page only, however long the chain is; older records come with "Load older".
 * @param {Session} s
 */
async function loadNewerAudit(s) {
  const known = s.newestSeq;
  /** @type {AuditRecord[]} */
  const fresh = [];
  /** @type {string | undefined} */
  let cursor;
  /** @type {string | undefined} */
  let firstOlderCursor;
  for (;;) {
    const query = new URLSearchParams({ order: "desc", limit: String(AUDIT_PAGE) });
    if (cursor !== undefined) query.set("cursor", cursor);
    /** @type {{ items: AuditRecord[], nextCursor?: string }} */
    const result = await s.api.get(`/audit?${query}`);
    if (s !== session) return;
    const newer = known === undefined ? result.items : result.items.filter((r) => r.seq > known);
    fresh.push(...newer);
    if (known === undefined) {
      firstOlderCursor = result.nextCursor;
      break;
    }
    // Pages are contiguous runs of seq: a record already read means everything newer is here.
    if (newer.length < result.items.length || result.nextCursor === undefined) break;
    if (fresh.length >= MAX_KEPT) return restartAudit(s);
    cursor = result.nextCursor;
  }
  if (known === undefined) s.olderCursor = firstOlderCursor;
  s.newestSeq = Math.max(known ?? 0, ...fresh.map((r) => r.seq));
  addRecords(s, fresh);
  if (s.records.size > MAX_KEPT) return restartAudit(s);
  renderAudit(s);
  renderAgents(s);
  renderApprovals(s);
}

/**
 * The next older page, before the oldest record on the page (the "Load older" button).
 * @param {Session} s
 */
async function loadOlderAudit(s) {
  const cursor = s.olderCursor;
  if (cursor === undefined) return;
  page.auditOlder.disabled = true;
  try {
    const query = new URLSearchParams({ order: "desc", limit: String(AUDIT_PAGE), cursor });
    /** @type {{ items: AuditRecord[], nextCursor?: string }} */
    const result = await s.api.get(`/audit?${query}`);
    // Signed out, or the timeline started again from the newest page meanwhile: not adjacent.
    if (s !== session || s.olderCursor !== cursor) return;
    s.olderCursor = result.nextCursor;
    addRecords(s, result.items);
    renderAudit(s);
    renderAgents(s);
    renderApprovals(s);
  } finally {
    page.auditOlder.disabled = false;
  }
}

/**
 * Drops every record read and reads the newest page again (too many records kept).
 * @param {Session} s
 */
async function restartAudit(s) {
  s.records.clear();
  s.recordsById.clear();
  s.auditRowsBySeq.clear();
  page.auditRows.replaceChildren();
  s.newestSeq = undefined;
  s.olderCursor = undefined;
  page.auditProgress.textContent = `More than ${MAX_KEPT} records were on the page: it shows the newest again.`;
  page.auditProgress.hidden = false;
  await loadNewerAudit(s);
}

/**
 * @param {Session} s
 * @param {AuditRecord[]} records
 */
function addRecords(s, records) {
  for (const record of records) {
    s.records.set(record.seq, record);
    s.recordsById.set(record.id, record);
    if (record.kind === "action") s.seenAgents.add(record.agent);
  }
}

const KIND_DECISIONS = /** @type {Record<string, [string, string]>} */ ({
  "approval.approved": ["approved", "approved"],
  "approval.denied": ["denied by reviewer", "denied"],
  "approval.expired": ["approval expired", "expired"],
  "approval.released": ["released after approval", "released"],
  "policy.changed": ["policy changed", "info"],
  "agent.contained": ["contained", "contained"],
  "agent.released": ["released from containment", "released"],
  "delegation.created": ["delegation created", "info"],
  "delegation.revoked": ["delegation revoked", "denied"],
  "delegation.expired": ["delegation expired", "expired"],
});

/**
 * What the record decided, for people, and a class for its colour.
 * @param {AuditRecord} record
 * @returns {[string, string]}
 */
function decisionOf(record) {
  if (record.kind === "action") {
    const status = record.status ?? "recorded";
    const label = status === "requested" ? "held for approval" : status;
    return [record.mode !== "enforce" ? `${label} (${record.mode})` : label, status];
  }
  return KIND_DECISIONS[record.kind] ?? [record.kind, "info"];
}

/** @param {AuditRecord} record */
function reasonOf(record) {
  return [record.denial_reason, record.policy_name ? `policy ${record.policy_name}` : null, record.reason]
    .filter((part) => part !== null && part !== "")
    .join(" · ");
}

/**
 * Adds the rows of records not on the page yet, keeping the table newest first; rows already
 * shown are left alone (a re-render of thousands of rows per event would be wasted work).
 * @param {Session} s
 */
function renderAudit(s) {
  const missing = [...s.records.values()]
    .filter((record) => !s.auditRowsBySeq.has(record.seq))
    .sort((a, b) => b.seq - a.seq);
  // The records read are one contiguous run of seqs, so a new record is newer than every row
  // shown (it goes above them, before the current top row) or older (it goes below them).
  let oldestShown = Number.POSITIVE_INFINITY;
  for (const seq of s.auditRowsBySeq.keys()) oldestShown = Math.min(oldestShown, seq);
  const top = page.auditRows.firstElementChild;
  for (const record of missing) {
    const row = auditRow(record);
    if (record.seq < oldestShown) page.auditRows.append(row);
    else page.auditRows.insertBefore(row, top);
    s.auditRowsBySeq.set(record.seq, row);
  }
  const hasRecords = s.records.size > 0;
  page.auditOlder.hidden = s.olderCursor === undefined;
  page.auditEnd.hidden = !hasRecords || s.olderCursor !== undefined;
  page.auditEnd.textContent = hasRecords ? "The start of the chain: every record is shown." : "";
  renderChainStaleness(s);
}

/** @param {AuditRecord} record */
function auditRow(record) {
  const [decision, tone] = decisionOf(record);
  return h(
    "tr",
    { "data-seq": record.seq, "data-record-id": record.id },
    h("td", {}, String(record.seq)),
    h("td", {}, time(record.time)),
    h("td", { class: "agent" }, record.agent),
    h(
      "td",
      { class: "action" },
      record.action_type,
      record.tool ? h("span", { class: "muted" }, ` (${record.tool})`) : null,
    ),
    h("td", { class: "decision", "data-decision": tone }, decision),
    h("td", { class: "reason" }, reasonOf(record)),
    h("td", { class: "args" }, preview(record.args)),
  );
}

/**
 * Says how many records arrived after the last chain check (a check reads the whole chain, so it
 * runs on demand rather than on every record).
 * @param {Session} s
 */
function renderChainStaleness(s) {
  const newest = s.newestSeq ?? 0;
  const newer = s.verifiedThrough === undefined ? 0 : newest - s.verifiedThrough;
  page.chainStale.hidden = newer <= 0;
  page.chainStale.textContent =
    newer === 1 ? "1 newer record not checked yet" : `${newer} newer records not checked yet`;
}

/** @param {Session} s */
async function verifyChain(s) {
  page.verify.disabled = true;
  page.chainStatus.textContent = "Checking the chain…";
  page.chainStatus.dataset.valid = "unknown";
  try {
    /** @type {{ chainValid: boolean, checked: number, firstBrokenAtRowId: string | null, problem?: string }} */
    const result = await s.api.get("/audit/verify");
    if (s !== session) return;
    const at = new Date().toLocaleTimeString();
    s.verifiedThrough = result.checked;
    renderChainStaleness(s);
    page.chainStatus.dataset.valid = String(result.chainValid);
    page.chainStatus.textContent = result.chainValid
      ? `Chain valid: ${result.checked} records verified (checked ${at})`
      : `Chain BROKEN at record ${result.firstBrokenAtRowId}: ${result.problem ?? "hash mismatch"} (checked ${at}); run \`aa audit verify\` for details`;
  } catch (error) {
    page.chainStatus.textContent = "Chain status unknown (the check failed)";
    report(error);
  } finally {
    page.verify.disabled = false;
  }
}

// ------------------------------------------------------------------ approvals

/** @param {Session} s */
async function loadApprovals(s) {
  /** @type {{ approvals: Approval[] }} */
  const result = await s.api.get("/approvals?state=pending");
  if (s !== session) return;
  s.approvals = new Map(result.approvals.map((approval) => [approval.id, approval]));
  renderApprovals(s);
}

/**
 * Adds and removes list items by approval id, keeping the ones still pending (and whatever the
 * operator is typing in their reason fields).
 * @param {Session} s
 */
function renderApprovals(s) {
  for (const [id, item] of s.approvalItems) {
    if (!s.approvals.has(id)) {
      item.remove();
      s.approvalItems.delete(id);
    }
  }
  const oldestFirst = [...s.approvals.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  for (const approval of oldestFirst) {
    let item = s.approvalItems.get(approval.id);
    if (item === undefined) {
      item = approvalItem(s, approval);
      s.approvalItems.set(approval.id, item);
    }
    page.approvalList.append(item);
    const args = item.querySelector(".args");
    const record = s.recordsById.get(approval.auditEventId);
    if (args && record && args.textContent === "")
      args.textContent = `arguments: ${preview(record.args, 1000)}`;
  }
  page.approvalCount.textContent = String(s.approvals.size);
  page.approvalsEmpty.hidden = s.approvals.size > 0;
}

/**
 * @param {Session} s
 * @param {Approval} approval
 */
function approvalItem(s, approval) {
  const reason = h("input", {
    type: "text",
    class: "reason",
    placeholder: "reason (required to deny)",
    "aria-label": `reason for ${approval.id}`,
    maxlength: 2000,
  });
  const approve = h("button", { type: "button", class: "approve" }, "Approve");
  const deny = h("button", { type: "button", class: "deny" }, "Deny");
  const buttons = [approve, deny];
  approve.addEventListener("click", () => void decide(s, approval, "approve", reason, buttons));
  deny.addEventListener("click", () => void decide(s, approval, "deny", reason, buttons));
  return h(
    "li",
    { "data-approval-id": approval.id },
    h(
      "div",
      { class: "what" },
      h("span", { class: "agent" }, approval.agentId),
      " wants ",
      h("span", { class: "action" }, approval.actionType),
    ),
    h(
      "div",
      { class: "meta" },
      approval.policyName ? `policy ${approval.policyName} · ` : "",
      "requested ",
      time(approval.createdAt),
      " · expires ",
      time(approval.expiresAt),
      ` · ${approval.id}`,
    ),
    h("div", { class: "args" }),
    h("form", { class: "inline", onsubmit: (event) => event.preventDefault() }, reason, approve, deny),
  );
}

/**
 * @param {Session} s
 * @param {Approval} approval
 * @param {"approve" | "deny"} verdict
 * @param {HTMLInputElement} reasonInput
 * @param {HTMLButtonElement[]} buttons
 */
async function decide(s, approval, verdict, reasonInput, buttons) {
  const reason = reasonInput.value.trim();
  if (verdict === "deny" && reason === "") {
    notify(
      "A denial needs a reason: type it in the field next to Deny (the agent and the audit record see it).",
      "error",
    );
    reasonInput.focus();
    return;
  }
  for (const button of buttons) button.disabled = true;
  try {
    await s.api.post(`/approvals/${segment(approval.id)}/${verdict}`, reason === "" ? {} : { reason });
    if (s !== session) return;
    notify(
      `${verdict === "approve" ? "Approved" : "Denied"} ${approval.agentId}'s ${approval.actionType} (${approval.id}).`,
    );
    s.approvals.delete(approval.id);
    renderApprovals(s);
  } catch (error) {
    report(error);
    for (const button of buttons) button.disabled = false;
  }
  void s.refreshApprovals();
}

// ------------------------------------------------------------------ agents and delegations

/** @param {Session} s */
async function loadAgents(s) {
  /** @type {{ agents: AgentControl[] }} */
  const result = await s.api.get("/agents");
  if (s !== session) return;
  s.controls = result.agents;
  renderAgents(s);
}

/** Every agent with an operator control or a call in the records read, sorted; rows kept by id. */
/** @param {Session} s */
function renderAgents(s) {
  const controls = new Map(s.controls.map((control) => [control.agentId, control]));
  const ids = [...new Set([...controls.keys(), ...s.seenAgents])].sort();
  for (const id of ids) {
    let row = s.agentRows.get(id);
    if (row === undefined) row = agentRow(s, id);
    const control = controls.get(id);
    const contained = control?.contained === true;
    row.state.textContent = contained ? "contained" : "active";
    row.state.className = contained ? "state-contained" : "state-active";
    row.change.replaceChildren(
      ...(control
        ? [
            `${control.contained ? "contained" : "released"} by ${control.changedBy}`,
            control.reason ? ` — ${control.reason}` : "",
            " · ",
            time(control.changedAt),
          ]
        : ["—"]),
    );
    row.button.textContent = contained ? "Release" : "Contain";
    row.button.className = contained ? "release" : "contain";
    row.button.dataset.action = contained ? "release" : "contain";
    page.agentRows.append(row.row);
  }
}

/**
 * @param {Session} s
 * @param {string} agentId
 */
function agentRow(s, agentId) {
  const state = h("span");
  const change = h("span", { class: "small" });
  const reason = h("input", {
    type: "text",
    placeholder: "reason",
    "aria-label": `reason for ${agentId}`,
    maxlength: 2000,
  });
  const button = h("button", { type: "button" });
  const row = h(
    "tr",
    { "data-agent-id": agentId },
    h("td", { class: "agent" }, agentId),
    h("td", {}, state),
    h("td", {}, change),
    h("td", {}, h("form", { class: "inline", onsubmit: (event) => event.preventDefault() }, reason, button)),
  );
  button.addEventListener("click", () => {
    void setContained(s, agentId, button.dataset.action === "contain", reason, button);
  });
  const entry = { row, state, change, button, reason };
  s.agentRows.set(agentId, entry);
  return entry;
}

/**
 * Contains or releases an agent; both need a reason (it goes into the audit record).
 * @param {Session} s
 * @param {string} agentId
 * @param {boolean} contain
 * @param {HTMLInputElement} reasonInput
 * @param {HTMLButtonElement | HTMLFormElement} control disabled while the request runs
 * @returns {Promise<boolean>} whether it was done
 */
async function setContained(s, agentId, contain, reasonInput, control) {
  const reason = reasonInput.value.trim();
  if (agentId === "") {
    notify("Type the id of the agent to contain.", "error");
    return false;
  }
  if (reason === "") {
    notify(
      `${contain ? "Containing" : "Releasing"} an agent needs a reason: type it next to the button (it is written to the audit record).`,
      "error",
    );
    reasonInput.focus();
    return false;
  }
  const buttons = control instanceof HTMLFormElement ? [...control.querySelectorAll("button")] : [control];
  for (const button of buttons) button.disabled = true;
  try {
    await s.api.post(`/agents/${segment(agentId)}/${contain ? "contain" : "release"}`, { reason });
    if (s !== session) return false;
    reasonInput.value = "";
    notify(
      contain
        ? `Contained ${agentId}: its calls are denied until released.`
        : `Released ${agentId}: its calls are decided by the policy again.`,
    );
    await loadAgents(s);
    return true;
  } catch (error) {
    report(error);
    return false;
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

/** @param {Session} s */
async function loadDelegations(s) {
  /** @type {{ delegations: Delegation[] }} */
  const result = await s.api.get("/delegations");
  if (s !== session) return;
  s.delegations = result.delegations;
  renderDelegations(s);
}

/**
 * The delegations table (or "No delegations." instead of an empty table). An active delegation
 * has a Revoke button that asks for confirmation first; the confirmation survives live re-reads.
 * @param {Session} s
 */
function renderDelegations(s) {
  const any = s.delegations.length > 0;
  page.delegationsEmpty.hidden = any;
  page.delegationTable.hidden = !any;
  page.delegationTable.dataset.count = String(s.delegations.length);
  if (!s.delegations.some((d) => d.id === s.confirmingRevoke && d.state === "active")) {
    s.confirmingRevoke = undefined;
  }
  page.delegationRows.replaceChildren(
    ...s.delegations.map((delegation) =>
      h(
        "tr",
        { "data-delegation-id": delegation.id, "data-state": delegation.state },
        h("td", { class: "agent" }, delegation.agentId),
        h("td", {}, delegation.parentAgentId),
        h("td", {}, delegation.capabilities.join(", ")),
        h("td", { class: "state" }, delegation.state),
        h("td", {}, time(delegation.expiresAt)),
        h("td", { class: "revoke" }, ...revokeControls(s, delegation)),
      ),
    ),
  );
}

/**
 * @param {Session} s
 * @param {Delegation} delegation
 * @returns {(HTMLElement | string)[]}
 */
function revokeControls(s, delegation) {
  if (delegation.state !== "active") return [];
  if (s.confirmingRevoke !== delegation.id) {
    const revoke = h("button", { type: "button", class: "revoke" }, "Revoke");
    revoke.addEventListener("click", () => {
      s.confirmingRevoke = delegation.id;
      renderDelegations(s);
    });
    return [revoke];
  }
  const confirm = h("button", { type: "button", class: "confirm-revoke" }, "Confirm revoke");
  const cancel = h("button", { type: "button", class: "cancel" }, "Cancel");
  confirm.addEventListener("click", () => void revokeDelegation(s, delegation, [confirm, cancel]));
  cancel.addEventListener("click", () => {
    s.confirmingRevoke = undefined;
    renderDelegations(s);
  });
  return [
    h(
      "span",
      { class: "small confirm-text" },
      `Revoke ${delegation.agentId} and every delegation below it? Its calls are denied from now on. `,
    ),
    confirm,
    cancel,
  ];
}

/**
 * `DELETE /v1/delegations/:id` (it takes no reason; the audit record names the operator's key).
 * @param {Session} s
 * @param {Delegation} delegation
 * @param {HTMLButtonElement[]} buttons
 */
async function revokeDelegation(s, delegation, buttons) {
  for (const button of buttons) button.disabled = true;
  try {
    await s.api.delete(`/delegations/${segment(delegation.id)}`);
    if (s !== session) return;
    s.confirmingRevoke = undefined;
    notify(
      `Revoked ${delegation.agentId} (${delegation.id}) and every delegation below it: their calls are denied (DELEGATION_REVOKED).`,
    );
  } catch (error) {
    report(error);
    for (const button of buttons) button.disabled = false;
  }
  void s.refreshDelegations();
}

// ------------------------------------------------------------------ posture

const POSTURE_PARTS = /** @type {const} */ ([
  ["policyCoverage", "Policy coverage"],
  ["approvalHygiene", "Approval hygiene"],
  ["anomalyRate", "Anomaly rate"],
  ["chainIntegrity", "Chain integrity"],
]);

/** @param {Session} s */
async function loadPosture(s) {
  page.postureRefresh.disabled = true;
  try {
    /** @type {{ score: number, components: Record<string, { score: number, detail: string }>, window: { records: number } }} */
    const posture = await s.api.get("/posture");
    if (s !== session) return;
    page.postureScore.textContent = String(posture.score);
    page.postureParts.replaceChildren(
      ...POSTURE_PARTS.flatMap(([key, label]) => {
        const part = posture.components[key];
        return [
          h("dt", { "data-part": key }, label),
          h("dd", { "data-part": key }, part ? `${part.score} / 25 — ${part.detail}` : "not reported"),
        ];
      }),
    );
    page.postureWindow.textContent = `Computed over the ${posture.window.records} most recent audit records.`;
  } catch (error) {
    report(error);
  } finally {
    page.postureRefresh.disabled = false;
  }
}
