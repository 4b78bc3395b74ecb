/**
 * @aa/gateway: the Agent Assembly HTTP API (wire contract v1) over @aa/engine, with API keys and
 * per-org policies kept in the same database. Start one with `aa gateway start` or
 * `createGateway(...)`.
 */

export { CONSOLE_CSP, type ConsoleOptions } from "./console.js";
export {
  createEgressProxy,
  DEFAULT_PROXY_PORT,
  type EgressProxy,
  type EgressProxyOptions,
} from "./egress-proxy.js";
export { EnginePool, type SharedEngineOptions } from "./engines.js";
export { type ErrorBody, GatewayError, toWireError } from "./errors.js";
export {
  type ApiKeyRecord,
  type DatabaseLocation,
  engineStoreFor,
  type GatewayStore,
  type KeyKind,
  openGatewayStore,
  parseDatabase,
  type StoredPolicy,
} from "./gateway-store.js";
export {
  type ApiKeyInfo,
  type CreatedKey,
  type CreateKeyInput,
  createKey,
  KeyVerifier,
  keyInfo,
  type Principal,
  validateCreateKey,
} from "./keys.js";
export { createGateway, type Gateway, type GatewayOptions } from "./server.js";
