/**
 * The one JSON document every `dyce <command> --json` prints on standard output (one line), success or not.
 * Versioned: a change that removes or retypes a field bumps `schema`; new fields may appear within a version.
 *
 *   schema    "dyce/v1"
 *   command   the command: "build", "deploy", "plan", "rollback", "probe", "lab env"
 *   success   true when the command did what was asked (exitCode 0)
 *   exitCode  the process's exit status (0 success or nothing to do, 1 failed, 2 bad input or usage, 3 rolled back)
 *   outputs   the action's outputs with native types: booleans, numbers, arrays, objects (never JSON in a string);
 *             {} when the command stopped before producing any
 *   error     when success is false: kind ("usage": bad input, nothing touched; "failed"; "rolled-back"; "internal"),
 *             message, and the list of issues (one per problem, for usage errors) and details (log lines)
 */
export const JSON_SCHEMA_ID = 'dyce/v1';

export type ErrorKind = 'usage' | 'failed' | 'rolled-back' | 'internal';

export interface JsonError {
  kind: ErrorKind;
  message: string;
  issues: string[];
  details: string[];
}

export interface JsonDocument {
  schema: typeof JSON_SCHEMA_ID;
  command: string;
  success: boolean;
  exitCode: number;
  outputs: Record<string, unknown>;
  error?: JsonError;
}

/** The JSON Schema (draft 2020-12) of the document, for users' tools and for the tests that check every command. */
export const JSON_DOCUMENT_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://dyce.dev/schema/cli/v1.json',
  title: 'dyce --json output, v1',
  type: 'object',
  required: ['schema', 'command', 'success', 'exitCode', 'outputs'],
  additionalProperties: false,
  properties: {
    schema: { const: JSON_SCHEMA_ID },
    command: { type: 'string' },
    success: { type: 'boolean' },
    exitCode: { type: 'integer', minimum: 0 },
    outputs: { type: 'object' },
    error: {
      type: 'object',
      required: ['kind', 'message', 'issues', 'details'],
      additionalProperties: false,
      properties: {
        kind: { enum: ['usage', 'failed', 'rolled-back', 'internal'] },
        message: { type: 'string' },
        issues: { type: 'array', items: { type: 'string' } },
        details: { type: 'array', items: { type: 'string' } },
      },
    },
  },
} as const;

const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const int = { type: 'integer' } as const;
const strings = { type: 'array', items: str } as const;

/**
 * The `outputs` of each command, typed (draft 2020-12). Outputs that the action writes as lists of text (`tags`,
 * `failed-hosts`) are arrays here. A command may add outputs within v1; it never retypes one.
 */
export const OUTPUT_SCHEMAS = {
  deploy: {
    type: 'object',
    properties: {
      success: bool,
      version: str,
      changed: bool,
      'rolled-back': bool,
      'failed-hosts': strings,
      'host-states': {
        type: 'object',
        additionalProperties: {
          type: 'object',
          required: ['state'],
          properties: { state: { enum: ['ok', 'changed', 'failed', 'rolled-back', 'skipped'] }, error: str },
        },
      },
      replicas: { type: 'object', additionalProperties: { type: 'array', items: { type: 'object' } } },
      recap: { type: 'object' },
      plan: {
        type: 'array',
        items: {
          type: 'object',
          required: ['host', 'changed', 'steps'],
          properties: {
            host: str,
            changed: bool,
            sequence: {
              type: 'array',
              items: { type: 'object', required: ['kind', 'description'], properties: { kind: str, description: str } },
            },
            steps: {
              type: 'array',
              items: {
                type: 'object',
                required: ['kind', 'description'],
                properties: {
                  kind: { enum: ['create', 'replace', 'start', 'remove', 'keep'] },
                  replica: str,
                  version: str,
                  container: str,
                  reason: str,
                  strategy: str,
                  description: str,
                },
              },
            },
          },
        },
      },
    },
    required: ['success'],
  },
  build: {
    type: 'object',
    properties: { success: bool, image: str, tags: strings, version: str, digest: str, metadata: { type: 'object' } },
    required: ['success'],
  },
  probe: {
    type: 'object',
    properties: {
      success: bool,
      'status-code': { type: ['integer', 'string'] },
      'duration-ms': int,
      'dns-ms': int,
      'connect-ms': int,
      'tls-ms': int,
      'processing-ms': int,
      'transfer-ms': int,
      'cert-expiry': str,
      results: {
        type: 'array',
        items: { type: 'object', properties: { url: str, success: bool }, required: ['url', 'success'] },
      },
    },
    required: ['success', 'results'],
  },
} as const;

/** The outputs schema of a command (plan and rollback are deploys). */
export function outputSchema(command: string): object | undefined {
  const key = command === 'plan' || command === 'rollback' ? 'deploy' : command;
  return (OUTPUT_SCHEMAS as Record<string, object>)[key];
}

/** Outputs that the actions write as one text, lists: comma- or newline-separated. */
const LIST_OUTPUTS: Record<string, RegExp> = { 'failed-hosts': /,/, tags: /\n/ };
const LIST_JOIN: Record<string, string> = { 'failed-hosts': ',', tags: '\n' };

/** A typed output back in the text the action writes for it (lists joined, objects as JSON): the inverse of --json. */
export function actionOutputText(name: string, value: unknown): string {
  if (Array.isArray(value) && LIST_JOIN[name] !== undefined) return value.join(LIST_JOIN[name]);
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
}

/**
 * An output value as a JSON value: the action writes every output as text (booleans as `true`, objects as JSON, lists
 * one per line), the CLI keeps the engine's value. Text that an engine wrote as serialized JSON is parsed back.
 */
export function typedOutput(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const t = value.trim();
  if ((t.startsWith('{') && t.endsWith('}')) || (t.startsWith('[') && t.endsWith(']'))) {
    try {
      return JSON.parse(t);
    } catch {
      return value;
    }
  }
  return value;
}

export function jsonDocument(
  command: string,
  exitCode: number,
  outputs: Record<string, unknown>,
  error?: JsonError,
): JsonDocument {
  const typed: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(outputs))
    typed[k] =
      LIST_OUTPUTS[k] && typeof v === 'string' ? v.split(LIST_OUTPUTS[k]).filter((x) => x !== '') : typedOutput(v);
  return {
    schema: JSON_SCHEMA_ID,
    command,
    success: exitCode === 0,
    exitCode,
    outputs: typed,
    ...(error ? { error } : {}),
  };
}
