export { DETECTOR_NAMES, type DetectorName, isSecretFieldName, redactSecretsInString } from "./detectors.js";
export { RedactionRuleError } from "./errors.js";
export { canonicalJson } from "./json-view.js";
export { type PathSelector, type PathStep, PathSyntaxError, parsePath } from "./path.js";
export {
  CIRCULAR,
  compileRedactor,
  REDACTED,
  type RedactionResult,
  type Redactor,
  type RedactorOptions,
  TRUNCATED,
  UNREADABLE,
} from "./redactor.js";
