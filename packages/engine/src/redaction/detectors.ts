/**
 * Built-in secret detectors for string values. They run on the decision hot path, so:
 * - a string shorter than {@link MIN_SECRET_LENGTH} is never scanned, and one cheap combined
 *   precheck decides whether any detector regex runs at all;
 * - every regex is linear: no nested or overlapping quantifiers, unbounded runs only where a match
 *   starting at the first character of the run consumes it.
 * Only the secret part is masked (`postgres://app:[REDACTED:connection-string]@db`), so the record
 * stays useful.
 */

/** Where a detector reports a hit (`detector:<name>`). */
export type FireDetector = (name: string) => void;

export const DETECTOR_NAMES = [
  "private-key",
  "jwt",
  "api-key",
  "aws-access-key",
  "github-token",
  "slack-token",
  "connection-string",
  "bearer-token",
  "basic-auth",
  "credential",
  "secret-field",
  "base64",
] as const;
export type DetectorName = (typeof DETECTOR_NAMES)[number];

export function detectorMarker(name: DetectorName): string {
  return `[REDACTED:${name}]`;
}

/** No secret this module detects is shorter (`pwd=abc` is 7 characters). */
export const MIN_SECRET_LENGTH = 7;
/** Shortest base64 run worth decoding. */
const MIN_BASE64_RUN = 24;
/** Base64 inside base64 is decoded this many levels deep. */
const MAX_BASE64_NESTING = 2;

// One pass that says whether any detector could match; most strings stop here.
const PRECHECK =
  /sk[-_]|[rp]k_|AKIA|ASIA|AGPA|AIDA|AROA|AIza|gh[pousr]_|github_pat_|xox|eyJ|-----BEGIN|:\/\/|bearer|basic|token|key|secret|passw|pwd/i;

const PEM_BEGIN = /-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----/g;
// Maximal runs of JWS/JWE characters; JWT structure is then checked without backtracking.
const TOKEN_RUN = /[A-Za-z0-9_.-]{10,}/g;
const OPENAI_STYLE_KEY = /\bsk-[A-Za-z0-9_-]{16,512}/g;
const STRIPE_KEY = /\b[rsp]k_(?:live|test)_[A-Za-z0-9]{10,256}/g;
const GOOGLE_KEY = /\bAIza[0-9A-Za-z_-]{35}/g;
const AWS_ACCESS_KEY = /\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b/g;
const GITHUB_TOKEN = /\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{30,255})/g;
const SLACK_TOKEN = /\bxox[abposr]-[A-Za-z0-9-]{10,255}/g;
const CONNECTION_STRING = /\b([A-Za-z][A-Za-z0-9+.-]{1,30}:\/\/[^\s:/@?#]{0,256}:)([^\s@/?#]{1,256})@/g;
const BEARER = /\b(bearer\s{1,8})([A-Za-z0-9._~+/=-]{8,8192})/gi;
const BASIC = /\b(basic\s{1,8})([A-Za-z0-9+/]{8,4096}={0,2})/gi;
const CREDENTIAL =
  /\b(api[_-]?key|apikey|access[_-]?token|auth[_-]?token|refresh[_-]?token|client[_-]?secret|secret[_-]?key|secret|password|passwd|pwd|token)(["']?\s{0,3}[:=]\s{0,3}["']?)([^\s"'&,;[\]<>{}][^\s"'&,;<>{}]{2,511})/gi;
const BASE64_RUN = /[A-Za-z0-9+/_-]{24,}={0,2}/g;

// Field names whose scalar value is a secret whatever it looks like (compared lower-cased, without - and _).
const SECRET_FIELD_NAMES = new Set([
  "password",
  "passwd",
  "pwd",
  "passphrase",
  "secret",
  "clientsecret",
  "secretkey",
  "apikey",
  "xapikey",
  "accesstoken",
  "refreshtoken",
  "authtoken",
  "idtoken",
  "sessiontoken",
  "token",
  "authorization",
  "proxyauthorization",
  "privatekey",
  "cookie",
  "setcookie",
]);

/**
 * Verdicts are pure functions of the string, and the same field names and short values (model
 * names, node ids, run names) recur on every call, so clean verdicts are remembered. Bounded: the
 * sets are emptied when full. Only strings that are stored in the clear anyway are kept.
 */
const CLEAN_CACHE_MAX_ENTRIES = 4096;
const CLEAN_CACHE_MAX_LENGTH = 256;
const cleanStrings = new Set<string>();
const fieldNameVerdicts = new Map<string, boolean>();

/** True when a field of this name holds a secret (`password`, `api_key`, `Authorization`, ...). */
export function isSecretFieldName(name: string): boolean {
  if (name.length < 3 || name.length > 24) return false;
  let verdict = fieldNameVerdicts.get(name);
  if (verdict === undefined) {
    verdict = classifyFieldName(name);
    if (fieldNameVerdicts.size >= CLEAN_CACHE_MAX_ENTRIES) fieldNameVerdicts.clear();
    fieldNameVerdicts.set(name, verdict);
  }
  return verdict;
}

function classifyFieldName(name: string): boolean {
  const lower = name.toLowerCase();
  if (SECRET_FIELD_NAMES.has(lower)) return true;
  if (!lower.includes("_") && !lower.includes("-")) return false;
  return SECRET_FIELD_NAMES.has(lower.replace(/[-_]/g, ""));
}

function looksRandom(token: string): boolean {
  return /[0-9]/.test(token) && /[A-Za-z]/.test(token);
}

/**
 * Masks the secrets in `text`, reporting each detector that fired. Returns `text` itself (same
 * string) when nothing was found.
 */
export function redactSecretsInString(text: string, fire: FireDetector): string {
  if (text.length < MIN_SECRET_LENGTH || cleanStrings.has(text)) return text;
  if (text.length > CLEAN_CACHE_MAX_LENGTH) return scan(text, fire, 0);
  let fired = false;
  const out = scan(
    text,
    (name) => {
      fired = true;
      fire(name);
    },
    0,
  );
  if (!fired && out === text) {
    if (cleanStrings.size >= CLEAN_CACHE_MAX_ENTRIES) cleanStrings.clear();
    cleanStrings.add(text);
  }
  return out;
}

function scan(text: string, fire: FireDetector, nesting: number): string {
  if (text.length < MIN_SECRET_LENGTH) return text;
  let out = text;
  if (PRECHECK.test(out)) out = applyPatternDetectors(out, fire);
  if (nesting < MAX_BASE64_NESTING && hasBase64Run(out)) out = maskEncodedSecrets(out, fire, nesting);
  return out;
}

function applyPatternDetectors(input: string, fire: FireDetector): string {
  let text = input;
  if (text.includes("-----BEGIN")) text = maskPrivateKeys(text, fire);
  if (text.includes("eyJ")) text = maskJwts(text, fire);
  if (text.includes("sk-")) text = replaceWhole(text, OPENAI_STYLE_KEY, "api-key", fire, looksRandom);
  if (text.includes("k_")) text = replaceWhole(text, STRIPE_KEY, "api-key", fire);
  if (text.includes("AIza")) text = replaceWhole(text, GOOGLE_KEY, "api-key", fire);
  text = replaceWhole(text, AWS_ACCESS_KEY, "aws-access-key", fire);
  if (text.includes("gh")) text = replaceWhole(text, GITHUB_TOKEN, "github-token", fire);
  if (text.includes("xox")) text = replaceWhole(text, SLACK_TOKEN, "slack-token", fire);
  if (text.includes("://")) text = replaceSecondGroup(text, CONNECTION_STRING, "connection-string", fire);
  text = replaceSecondGroup(
    text,
    BEARER,
    "bearer-token",
    fire,
    (token) => looksRandom(token) || token.length >= 20,
  );
  text = replaceSecondGroup(text, BASIC, "basic-auth", fire, (token) =>
    Buffer.from(token, "base64").toString("latin1").includes(":"),
  );
  text = replaceThirdGroup(text, CREDENTIAL, "credential", fire);
  return text;
}

function replaceWhole(
  text: string,
  pattern: RegExp,
  name: DetectorName,
  fire: FireDetector,
  accept?: (match: string) => boolean,
): string {
  pattern.lastIndex = 0;
  let fired = false;
  const out = text.replace(pattern, (match) => {
    if (accept && !accept(match)) return match;
    fired = true;
    return detectorMarker(name);
  });
  if (fired) fire(name);
  return out;
}

function replaceSecondGroup(
  text: string,
  pattern: RegExp,
  name: DetectorName,
  fire: FireDetector,
  accept?: (secret: string) => boolean,
): string {
  pattern.lastIndex = 0;
  let fired = false;
  const out = text.replace(pattern, (match, prefix: string, secret: string) => {
    if (accept && !accept(secret)) return match;
    fired = true;
    return match.replace(prefix + secret, prefix + detectorMarker(name));
  });
  if (fired) fire(name);
  return out;
}

function replaceThirdGroup(text: string, pattern: RegExp, name: DetectorName, fire: FireDetector): string {
  pattern.lastIndex = 0;
  let fired = false;
  const out = text.replace(pattern, (_match, key: string, separator: string) => {
    fired = true;
    return key + separator + detectorMarker(name);
  });
  if (fired) fire(name);
  return out;
}

/** PEM private keys, from BEGIN through the END line; an unterminated block is masked to the end. */
function maskPrivateKeys(text: string, fire: FireDetector): string {
  PEM_BEGIN.lastIndex = 0;
  let out = "";
  let copiedUpTo = 0;
  let found = false;
  for (let match = PEM_BEGIN.exec(text); match !== null; match = PEM_BEGIN.exec(text)) {
    found = true;
    const afterBegin = match.index + match[0].length;
    const endLine = text.indexOf("-----END", afterBegin);
    const endDashes = endLine === -1 ? -1 : text.indexOf("-----", endLine + 8);
    const blockEnd = endDashes === -1 ? text.length : endDashes + 5;
    out += text.slice(copiedUpTo, match.index) + detectorMarker("private-key");
    copiedUpTo = blockEnd;
    PEM_BEGIN.lastIndex = blockEnd;
  }
  if (!found) return text;
  fire("private-key");
  return out + text.slice(copiedUpTo);
}

/**
 * JWTs (JWS and JWE compact forms): a run starting at `eyJ` (base64url of `{"`) with at least two
 * dots and non-empty header and payload segments is masked from `eyJ` to the end of the run.
 */
function maskJwts(text: string, fire: FireDetector): string {
  TOKEN_RUN.lastIndex = 0;
  let fired = false;
  const out = text.replace(TOKEN_RUN, (run) => {
    const start = run.indexOf("eyJ");
    if (start === -1) return run;
    const firstDot = run.indexOf(".", start);
    const secondDot = firstDot === -1 ? -1 : run.indexOf(".", firstDot + 1);
    if (firstDot - start < 7 || secondDot - firstDot < 3) return run;
    fired = true;
    return run.slice(0, start) + detectorMarker("jwt");
  });
  if (fired) fire("jwt");
  return out;
}

/** Whether `text` has {@link MIN_BASE64_RUN} consecutive base64 characters: a loop is cheaper than the regex. */
function hasBase64Run(text: string): boolean {
  if (text.length < MIN_BASE64_RUN) return false;
  let run = 0;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    const isBase64 =
      (code >= 97 && code <= 122) ||
      (code >= 65 && code <= 90) ||
      (code >= 47 && code <= 57) ||
      code === 43 ||
      code === 45 ||
      code === 95;
    if (!isBase64) run = 0;
    else if (++run >= MIN_BASE64_RUN) return true;
  }
  return false;
}

/** Base64 runs that decode to text containing a secret are masked whole. */
function maskEncodedSecrets(text: string, fire: FireDetector, nesting: number): string {
  BASE64_RUN.lastIndex = 0;
  if (!BASE64_RUN.test(text)) return text;
  BASE64_RUN.lastIndex = 0;
  let fired = false;
  const out = text.replace(BASE64_RUN, (run) => {
    const decoded = decodePrintable(run);
    if (decoded === undefined) return run;
    let innerFired = false;
    const scanned = scan(
      decoded,
      () => {
        innerFired = true;
      },
      nesting + 1,
    );
    if (!innerFired && scanned === decoded) return run;
    fired = true;
    return detectorMarker("base64");
  });
  if (fired) fire("base64");
  return out;
}

/** The decoded text when `run` is base64 (or base64url) of mostly printable ASCII, else undefined. */
function decodePrintable(run: string): string | undefined {
  const urlSafe = run.includes("-") || run.includes("_");
  if (urlSafe && (run.includes("+") || run.includes("/"))) return undefined;
  const bytes = Buffer.from(run, urlSafe ? "base64url" : "base64");
  if (bytes.length < MIN_SECRET_LENGTH) return undefined;
  let printable = 0;
  for (const byte of bytes) {
    if ((byte >= 0x20 && byte < 0x7f) || byte === 0x09 || byte === 0x0a || byte === 0x0d) printable += 1;
  }
  return printable / bytes.length >= 0.9 ? bytes.toString("latin1") : undefined;
}
