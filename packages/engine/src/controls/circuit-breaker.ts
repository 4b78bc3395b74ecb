/**
 * Per-agent circuit breaker, kept in this process's memory: it opens after `threshold` failures
 * (denials, and outcomes reported as `failure`) within `windowMs`, denies every call for
 * `coolDownMs`, then lets exactly one probe call be evaluated (half-open): an allowed probe closes
 * it, a denied probe opens it again. The hot path is one Map lookup for an agent without failures.
 */
import { EngineError } from "../errors.js";
import type { CircuitBreakerOptions, CircuitState } from "../types.js";

export const DEFAULT_CIRCUIT_BREAKER = { threshold: 10, windowMs: 60_000, coolDownMs: 30_000 } as const;

interface AgentCircuit {
  /** Times (ms) of failures in the current window, oldest first. */
  failures: number[];
  /** When the circuit last opened; 0 while closed. */
  openedAt: number;
  /** When the current probe was let through; 0 when none is in flight. */
  probeAt: number;
}

/** What the breaker says about the next call of an agent. */
export type CircuitAdmission = "evaluate" | "probe" | "deny";

export class CircuitBreaker {
  readonly #threshold: number;
  readonly #windowMs: number;
  readonly #coolDownMs: number;
  readonly #agents = new Map<string, AgentCircuit>();

  constructor(options: CircuitBreakerOptions = {}) {
    this.#threshold = checkedInteger(options.threshold, DEFAULT_CIRCUIT_BREAKER.threshold, "threshold", 0);
    this.#windowMs = checkedInteger(options.windowMs, DEFAULT_CIRCUIT_BREAKER.windowMs, "windowMs", 1);
    this.#coolDownMs = checkedInteger(
      options.coolDownMs,
      DEFAULT_CIRCUIT_BREAKER.coolDownMs,
      "coolDownMs",
      1,
    );
  }

  get coolDownMs(): number {
    return this.#coolDownMs;
  }

  /**
   * Whether the agent's next call is evaluated, is the half-open probe, or is denied. A dry run
   * (`takeProbe` false) never takes the probe.
   */
  admit(agentId: string, now: number, takeProbe: boolean): CircuitAdmission {
    const circuit = this.#agents.get(agentId);
    if (circuit === undefined || circuit.openedAt === 0) return "evaluate";
    if (now - circuit.openedAt < this.#coolDownMs) return "deny";
    // The engine records the probe's result in the same synchronous step that admitted it (the
    // policy evaluates synchronously); this guard only frees a slot whose result never came back.
    if (circuit.probeAt !== 0 && now - circuit.probeAt < this.#coolDownMs) return "deny";
    if (takeProbe) circuit.probeAt = now;
    return "probe";
  }

  /** Records the result of an evaluated call (`denied`: the gate denied it). */
  record(agentId: string, admission: CircuitAdmission, denied: boolean, now: number): void {
    if (admission === "probe") {
      const circuit = this.#agents.get(agentId);
      if (circuit === undefined) return;
      circuit.probeAt = 0;
      if (denied) circuit.openedAt = now;
      else this.#agents.delete(agentId);
      return;
    }
    if (denied) this.recordFailure(agentId, now);
  }

  /** Counts one failure (a denial or an outcome reported as `failure`). */
  recordFailure(agentId: string, now: number): void {
    if (this.#threshold === 0) return;
    let circuit = this.#agents.get(agentId);
    if (circuit === undefined) {
      circuit = { failures: [], openedAt: 0, probeAt: 0 };
      this.#agents.set(agentId, circuit);
    }
    if (circuit.openedAt !== 0) return;
    const failures = circuit.failures;
    failures.push(now);
    let stale = 0;
    while (stale < failures.length && now - failures[stale]! >= this.#windowMs) stale++;
    if (stale > 0) failures.splice(0, stale);
    if (failures.length >= this.#threshold) {
      circuit.openedAt = now;
      circuit.failures = [];
    }
  }

  state(agentId: string, now: number): { state: CircuitState; failures: number; openUntil?: string } {
    const circuit = this.#agents.get(agentId);
    if (circuit === undefined) return { state: "closed", failures: 0 };
    if (circuit.openedAt === 0) {
      const recent = circuit.failures.filter((t) => now - t < this.#windowMs).length;
      return { state: "closed", failures: recent };
    }
    const until = circuit.openedAt + this.#coolDownMs;
    if (now < until) return { state: "open", failures: 0, openUntil: new Date(until).toISOString() };
    return { state: "half-open", failures: 0 };
  }
}

function checkedInteger(value: number | undefined, fallback: number, name: string, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new EngineError(
      "INVALID_OPTIONS",
      400,
      `\`circuitBreaker.${name}\` must be an integer of at least ${min} (default ${fallback})`,
      { option: `circuitBreaker.${name}` },
    );
  }
  return value;
}
