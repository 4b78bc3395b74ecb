/**
 * JSON schemas of the request bodies, exactly as `components/schemas` in
 * packages/wire-contract/openapi.yaml names them (a test compares the two). Every object is closed
 * (`additionalProperties: false`): an unknown field is a client bug worth a 400, not a silent drop.
 */

export const ActionRequest = {
  type: "object",
  additionalProperties: false,
  required: ["actionType"],
  properties: {
    actionType: { type: "string", minLength: 1, maxLength: 256 },
    toolName: { type: "string", maxLength: 256 },
    framework: { type: "string", maxLength: 128 },
    args: {},
    metadata: { type: "object" },
    dataAccessed: {},
    toolCallId: { type: "string", maxLength: 256 },
    mcpServer: { type: "string", maxLength: 256 },
    traceId: { type: "string", maxLength: 256 },
    eventId: { type: "string", minLength: 1, maxLength: 256 },
    enforcementMode: { enum: ["enforce", "observe", "disabled"] },
    dryRun: { type: "boolean" },
    failOpen: { type: "boolean" },
    principal: {
      type: "object",
      additionalProperties: false,
      required: ["userId"],
      properties: {
        userId: { type: "string", minLength: 1, maxLength: 256 },
        email: { type: "string", minLength: 1, maxLength: 256 },
        tenant: { type: "string", minLength: 1, maxLength: 256 },
        scopes: { type: "array", maxItems: 1000, items: { type: "string", minLength: 1, maxLength: 256 } },
      },
    },
  },
} as const;

export const ApproveRequest = {
  type: "object",
  additionalProperties: false,
  properties: { reason: { type: "string", maxLength: 2000 } },
} as const;

export const DenyRequest = {
  type: "object",
  additionalProperties: false,
  required: ["reason"],
  properties: { reason: { type: "string", minLength: 1, maxLength: 2000 } },
} as const;

export const ReasonRequest = {
  type: "object",
  additionalProperties: false,
  required: ["reason"],
  properties: { reason: { type: "string", minLength: 1, maxLength: 2000 } },
} as const;

/** A route that takes no body accepts none or `{}`. */
export const EmptyRequest = { type: "object", additionalProperties: false, properties: {} } as const;

export const OutcomeRequest = {
  type: "object",
  additionalProperties: false,
  required: ["status"],
  properties: {
    // Any value: a status outside success|failure|partial is INVALID_OUTCOME (the engine's check).
    status: { description: "success | failure | partial (another value is 400 INVALID_OUTCOME)" },
    message: { type: "string", maxLength: 10000 },
    metadata: { type: "object" },
  },
} as const;

export const PolicyRequest = {
  type: "object",
  additionalProperties: false,
  required: ["policy"],
  properties: {
    policy: { description: "A policy document (the JSON form of aa.policy.yaml).", type: "object" },
  },
} as const;

export const CreateKeyRequest = {
  type: "object",
  additionalProperties: false,
  required: ["kind"],
  properties: {
    kind: { enum: ["agent", "operator", "admin"] },
    agentId: {
      description: "Required for kind agent; not allowed otherwise.",
      type: "string",
      pattern: "^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$",
    },
    name: { type: "string", maxLength: 200 },
  },
} as const;

export const DelegateRequest = {
  type: "object",
  additionalProperties: false,
  required: ["name", "capabilities"],
  properties: {
    name: { type: "string", minLength: 1, maxLength: 100 },
    capabilities: {
      type: "array",
      minItems: 1,
      maxItems: 100,
      items: { type: "string", minLength: 1, maxLength: 256 },
    },
    ttlSeconds: { type: "integer", minimum: 1, maximum: 86400 },
  },
} as const;

/** The named request schemas, as `components/schemas` of the OpenAPI file names them. */
export const REQUEST_SCHEMAS = {
  ActionRequest,
  ApproveRequest,
  DenyRequest,
  ReasonRequest,
  OutcomeRequest,
  CreateKeyRequest,
  DelegateRequest,
} as const;
