/**
 * PostgreSQL schema migrations, applied in order by `PostgresStore.open`; the index + 1 is the
 * version recorded in `schema_version`. Never edit a shipped one: add the next.
 *
 * Functions and procedures name their tables unqualified, so they act on the schema the calling
 * session's `search_path` selects (the store's `?schema=` parameter).
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `CREATE TABLE chain_heads (org TEXT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);
   CREATE TABLE audit_events (
     org TEXT NOT NULL, seq BIGINT NOT NULL, id TEXT NOT NULL UNIQUE, hash TEXT NOT NULL,
     agent TEXT NOT NULL, action_type TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (org, seq));
   CREATE TABLE approvals (
     org TEXT NOT NULL, id TEXT NOT NULL PRIMARY KEY, agent_id TEXT NOT NULL, action_type TEXT NOT NULL,
     state TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, audit_event_id TEXT NOT NULL,
     policy_name TEXT, binding_hash TEXT NOT NULL, decided_by TEXT, reason TEXT, decided_at TEXT,
     consumed_at TEXT, request TEXT NOT NULL);
   CREATE INDEX approvals_org_state ON approvals (org, state, created_at);
   CREATE TABLE outcomes (
     org TEXT NOT NULL, audit_event_id TEXT NOT NULL, agent_id TEXT NOT NULL, status TEXT NOT NULL,
     message TEXT, metadata TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (org, audit_event_id));
   CREATE TABLE idempotency_keys (
     org TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, result TEXT NOT NULL, PRIMARY KEY (org, key));
   CREATE TABLE checkpoints (
     org TEXT NOT NULL, size BIGINT NOT NULL, head_hash TEXT NOT NULL, time TEXT NOT NULL, kid TEXT NOT NULL,
     signature TEXT NOT NULL, PRIMARY KEY (org, size));
   CREATE TABLE engine_keys (org TEXT PRIMARY KEY, data TEXT NOT NULL);`,
  // 2: appends sealed by the server in one statement, so the chain-head lock is held only while the
  // server links, inserts and commits, never across a round trip to (or a busy event loop in) Node.
  // `parts` is pre, mid, post of each record (see EncodedRecord) joined by U+0001, which canonical
  // JSON never contains raw. The text and hash are exactly what sealRecord would produce.
  `CREATE FUNCTION aa_append_sealed(p_org TEXT, p_ids TEXT[], p_agents TEXT[], p_action_types TEXT[], p_parts TEXT)
   RETURNS TEXT LANGUAGE plpgsql AS $fn$
   DECLARE
     parts TEXT[] := string_to_array(p_parts, E'\x01');
     part TEXT;
     k INT := 0;
     n INT := 0;
     head_seq BIGINT;
     head_hash TEXT;
     first_seq BIGINT;
     pre TEXT;
     mid TEXT;
     record TEXT;
     hashes TEXT[] := '{}';
     records TEXT[] := '{}';
   BEGIN
     IF cardinality(parts) <> 3 * cardinality(p_ids) OR cardinality(p_agents) <> cardinality(p_ids)
        OR cardinality(p_action_types) <> cardinality(p_ids) THEN
       RAISE EXCEPTION 'aa_append_sealed: % parts for % records', cardinality(parts), cardinality(p_ids);
     END IF;
     SELECT seq, hash INTO head_seq, head_hash FROM chain_heads WHERE org = p_org FOR UPDATE;
     IF NOT FOUND THEN
       RAISE EXCEPTION 'aa_append_sealed: no chain head for org %', p_org;
     END IF;
     first_seq := head_seq + 1;
     FOREACH part IN ARRAY parts LOOP
       k := k + 1;
       IF k = 1 THEN
         pre := part;
       ELSIF k = 2 THEN
         mid := part;
       ELSE
         k := 0;
         n := n + 1;
         head_seq := head_seq + 1;
         record := pre || head_hash || mid || head_seq || part;
         head_hash := encode(sha256(convert_to(record, 'UTF8')), 'hex');
         hashes[n] := head_hash;
         records[n] := record;
       END IF;
     END LOOP;
     INSERT INTO audit_events (org, seq, id, hash, agent, action_type, record)
       SELECT p_org, first_seq - 1 + u.ord, u.id, u.hash, u.agent, u.action_type, u.record
       FROM unnest(p_ids, hashes, p_agents, p_action_types, records) WITH ORDINALITY
         AS u(id, hash, agent, action_type, record, ord);
     UPDATE chain_heads SET seq = head_seq, hash = head_hash WHERE org = p_org;
     RETURN first_seq || ':' || array_to_string(hashes, '');
   END
   $fn$;`,
  // 3: opt-in early lock release (`?early_lock_release=on`): the append commits without waiting
  // for its WAL flush, which releases the head lock at once; the procedure then commits a marker
  // row synchronously, whose flush covers the append's commit record, before it returns.
  `CREATE TABLE flush_marks (pid INTEGER PRIMARY KEY, n BIGINT NOT NULL);
   CREATE PROCEDURE aa_append_flushed(p_org TEXT, p_ids TEXT[], p_agents TEXT[], p_action_types TEXT[], p_parts TEXT,
     INOUT sealed TEXT)
   LANGUAGE plpgsql AS $fn$
   BEGIN
     PERFORM set_config('synchronous_commit', 'off', true);
     sealed := aa_append_sealed(p_org, p_ids, p_agents, p_action_types, p_parts);
     COMMIT;
     INSERT INTO flush_marks (pid, n) VALUES (pg_backend_pid(), 1)
       ON CONFLICT (pid) DO UPDATE SET n = flush_marks.n + 1;
   END
   $fn$;`,
  // 4: the operator kill switch per agent (latest transition wins; the audit chain keeps history).
  `CREATE TABLE agent_controls (
     org TEXT NOT NULL, agent_id TEXT NOT NULL, contained BOOLEAN NOT NULL, changed_by TEXT NOT NULL,
     reason TEXT, changed_at TEXT NOT NULL, PRIMARY KEY (org, agent_id));`,
  // 5: the delegation registry (the audit chain keeps every creation, revocation and expiry).
  `CREATE TABLE delegations (
     org TEXT NOT NULL, id TEXT NOT NULL, parent_agent_id TEXT NOT NULL, child_agent_id TEXT NOT NULL,
     name TEXT NOT NULL, capabilities TEXT NOT NULL, issued_at TEXT NOT NULL, expires_at TEXT NOT NULL,
     revoked_at TEXT, revoked_by TEXT, parent_delegation_id TEXT, expired_at TEXT, PRIMARY KEY (org, id));
   CREATE INDEX delegations_child ON delegations (org, child_agent_id);
   CREATE INDEX delegations_expiry ON delegations (org, expires_at);`,
  // 6: fixed-window counters shared by every replica of an org (rate limits, the calls budget).
  // A row with started_at NULL has no open window (it was only checked). aa_take_counters decides
  // a batch of calls in order under the rows' locks, taken in name order so replicas never
  // deadlock: a call passes when none of its counters is at its limit (windows roll first, as in
  // memory), and then counts in the counters it takes. Windows run on the server's clock, one
  // clock for all replicas; it is read once per batch, so a window rolls at most once per batch.
  // Arguments: the distinct counter names, then per entry its counter (1-based), limit, window and
  // whether it counts, and per call its last entry. Returned: per call the 1-based position among
  // its entries of the one at its limit (0: passed), then per counter its window start (-1: none)
  // and use after the batch. aa_give_counters takes back counts of calls that ended up denied,
  // in the window they were counted in. Neither waits for a WAL flush at commit: the audit append
  // of an admitted call flushes the log past its count, so no acknowledged decision's count is lost.
  `CREATE TABLE counters (
     org TEXT NOT NULL, name TEXT NOT NULL, started_at BIGINT, used DOUBLE PRECISION NOT NULL,
     PRIMARY KEY (org, name));
   CREATE FUNCTION aa_take_counters(p_org TEXT, p_names TEXT[], p_counter INT[], p_limit FLOAT8[],
     p_window BIGINT[], p_take BOOLEAN[], p_call_end INT[])
   RETURNS FLOAT8[] LANGUAGE plpgsql AS $fn$
   DECLARE
     now_ms BIGINT := floor(extract(epoch FROM clock_timestamp()) * 1000);
     v_started BIGINT[];
     v_used FLOAT8[];
     v_out FLOAT8[];
     n_calls INT := cardinality(p_call_end);
     n_names INT := cardinality(p_names);
     ci INT;
     e INT;
     k INT;
     v_first INT := 1;
     blocked INT;
   BEGIN
     IF cardinality(p_limit) <> cardinality(p_counter) OR cardinality(p_window) <> cardinality(p_counter)
        OR cardinality(p_take) <> cardinality(p_counter)
        OR (n_calls > 0 AND p_call_end[n_calls] <> cardinality(p_counter)) THEN
       RAISE EXCEPTION 'aa_take_counters: inconsistent arguments';
     END IF;
     PERFORM set_config('synchronous_commit', 'off', true);
     INSERT INTO counters (org, name, started_at, used)
       SELECT p_org, x, NULL, 0 FROM unnest(p_names) AS x ORDER BY x ON CONFLICT DO NOTHING;
     PERFORM 1 FROM counters WHERE org = p_org AND name = ANY (p_names) ORDER BY name FOR UPDATE;
     SELECT array_agg(c.started_at ORDER BY u.i), array_agg(c.used ORDER BY u.i) INTO v_started, v_used
       FROM unnest(p_names) WITH ORDINALITY AS u(name, i) JOIN counters AS c ON c.org = p_org AND c.name = u.name;
     FOR ci IN 1..n_calls LOOP
       blocked := 0;
       FOR e IN v_first..p_call_end[ci] LOOP
         k := p_counter[e];
         IF v_started[k] IS NOT NULL AND now_ms - v_started[k] >= p_window[e] THEN
           v_started[k] := now_ms;
           v_used[k] := 0;
         END IF;
         IF v_started[k] IS NOT NULL AND v_used[k] >= p_limit[e] THEN
           blocked := e - v_first + 1;
           EXIT;
         END IF;
       END LOOP;
       IF blocked = 0 THEN
         FOR e IN v_first..p_call_end[ci] LOOP
           IF p_take[e] THEN
             k := p_counter[e];
             IF v_started[k] IS NULL THEN
               v_started[k] := now_ms;
               v_used[k] := 1;
             ELSE
               v_used[k] := v_used[k] + 1;
             END IF;
           END IF;
         END LOOP;
       END IF;
       v_out[ci] := blocked;
       v_first := p_call_end[ci] + 1;
     END LOOP;
     FOR k IN 1..n_names LOOP
       v_out[n_calls + 2 * k - 1] := coalesce(v_started[k], -1);
       v_out[n_calls + 2 * k] := v_used[k];
     END LOOP;
     UPDATE counters AS c SET started_at = x.s, used = x.u
       FROM unnest(p_names, v_started, v_used) AS x(name, s, u)
       WHERE c.org = p_org AND c.name = x.name
         AND (c.started_at IS DISTINCT FROM x.s OR c.used <> x.u);
     RETURN v_out;
   END
   $fn$;
   CREATE FUNCTION aa_give_counters(p_org TEXT, p_names TEXT[], p_started BIGINT[])
   RETURNS VOID LANGUAGE plpgsql AS $fn$
   BEGIN
     PERFORM set_config('synchronous_commit', 'off', true);
     PERFORM 1 FROM counters WHERE org = p_org AND name = ANY (p_names) ORDER BY name FOR UPDATE;
     UPDATE counters AS c SET used = greatest(c.used - x.cnt, 0)
       FROM (SELECT name, started, count(*) AS cnt FROM unnest(p_names, p_started) AS u(name, started)
             GROUP BY name, started) AS x
       WHERE c.org = p_org AND c.name = x.name AND c.started_at = x.started;
   END
   $fn$;`,
  // 7: expired counters are deleted (one row per user, agent and tenant ever counted would
  // otherwise stay forever). aa_sweep_counters deletes rows whose window ended at least
  // p_max_window ago (no configured limit still counts in them) or that never opened one, skipping
  // rows a take holds; deleting such a row changes nothing a take would decide, because a take
  // rolls an ended window to a fresh one anyway. aa_take_counters now re-locks when a row it saw
  // was swept before it locked it.
  `   CREATE OR REPLACE FUNCTION aa_take_counters(p_org TEXT, p_names TEXT[], p_counter INT[], p_limit FLOAT8[],
     p_window BIGINT[], p_take BOOLEAN[], p_call_end INT[])
   RETURNS FLOAT8[] LANGUAGE plpgsql AS $fn$
   DECLARE
     now_ms BIGINT := floor(extract(epoch FROM clock_timestamp()) * 1000);
     v_started BIGINT[];
     v_used FLOAT8[];
     v_out FLOAT8[];
     n_calls INT := cardinality(p_call_end);
     n_names INT := cardinality(p_names);
     ci INT;
     e INT;
     k INT;
     v_first INT := 1;
     blocked INT;
     locked INT;
   BEGIN
     IF cardinality(p_limit) <> cardinality(p_counter) OR cardinality(p_window) <> cardinality(p_counter)
        OR cardinality(p_take) <> cardinality(p_counter)
        OR (n_calls > 0 AND p_call_end[n_calls] <> cardinality(p_counter)) THEN
       RAISE EXCEPTION 'aa_take_counters: inconsistent arguments';
     END IF;
     PERFORM set_config('synchronous_commit', 'off', true);
     -- A row seen by the INSERT may be swept (aa_sweep_counters) before it is locked: lock again
     -- until every name's row is held.
     LOOP
       INSERT INTO counters (org, name, started_at, used)
         SELECT p_org, x, NULL, 0 FROM unnest(p_names) AS x ORDER BY x ON CONFLICT DO NOTHING;
       PERFORM 1 FROM counters WHERE org = p_org AND name = ANY (p_names) ORDER BY name FOR UPDATE;
       GET DIAGNOSTICS locked = ROW_COUNT;
       EXIT WHEN locked >= n_names;
     END LOOP;
     SELECT array_agg(c.started_at ORDER BY u.i), array_agg(c.used ORDER BY u.i) INTO v_started, v_used
       FROM unnest(p_names) WITH ORDINALITY AS u(name, i) JOIN counters AS c ON c.org = p_org AND c.name = u.name;
     FOR ci IN 1..n_calls LOOP
       blocked := 0;
       FOR e IN v_first..p_call_end[ci] LOOP
         k := p_counter[e];
         IF v_started[k] IS NOT NULL AND now_ms - v_started[k] >= p_window[e] THEN
           v_started[k] := now_ms;
           v_used[k] := 0;
         END IF;
         IF v_started[k] IS NOT NULL AND v_used[k] >= p_limit[e] THEN
           blocked := e - v_first + 1;
           EXIT;
         END IF;
       END LOOP;
       IF blocked = 0 THEN
         FOR e IN v_first..p_call_end[ci] LOOP
           IF p_take[e] THEN
             k := p_counter[e];
             IF v_started[k] IS NULL THEN
               v_started[k] := now_ms;
               v_used[k] := 1;
             ELSE
               v_used[k] := v_used[k] + 1;
             END IF;
           END IF;
         END LOOP;
       END IF;
       v_out[ci] := blocked;
       v_first := p_call_end[ci] + 1;
     END LOOP;
     FOR k IN 1..n_names LOOP
       v_out[n_calls + 2 * k - 1] := coalesce(v_started[k], -1);
       v_out[n_calls + 2 * k] := v_used[k];
     END LOOP;
     UPDATE counters AS c SET started_at = x.s, used = x.u
       FROM unnest(p_names, v_started, v_used) AS x(name, s, u)
       WHERE c.org = p_org AND c.name = x.name
         AND (c.started_at IS DISTINCT FROM x.s OR c.used <> x.u);
     RETURN v_out;
   END
   $fn$;
   CREATE FUNCTION aa_sweep_counters(p_org TEXT, p_max_window BIGINT, p_limit INT)
   RETURNS INT LANGUAGE plpgsql AS $fn$
   DECLARE
     now_ms BIGINT := floor(extract(epoch FROM clock_timestamp()) * 1000);
     swept INT;
   BEGIN
     PERFORM set_config('synchronous_commit', 'off', true);
     DELETE FROM counters AS c USING (
       SELECT name FROM counters
        WHERE org = p_org AND (started_at IS NULL OR now_ms - started_at >= p_max_window)
        ORDER BY name LIMIT p_limit FOR UPDATE SKIP LOCKED) AS old
      WHERE c.org = p_org AND c.name = old.name;
     GET DIAGNOSTICS swept = ROW_COUNT;
     RETURN swept;
   END
   $fn$;`,
];
