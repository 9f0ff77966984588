// Exceptions turned into the contract's error text.
//
// In componentize-js a thrown `Error` escaping an export traps the instance (the host sees
// only a trap); a thrown string becomes the result's `err`. The SDK catches everything and
// throws the text: `Name: message`, then the stack, at most LIMIT bytes (the host keeps
// 4 KiB of a cause by default, `[limits] cause_bytes`).

/** Longest error text the SDK hands the host, in UTF-8 bytes. */
export const LIMIT = 3072;
/** Stack frames kept: the innermost ones say where. */
const FRAMES = 12;

/** An error whose message is the whole cause: no name, no stack. For refusals a user should
 * read as they are ("max_speed_mps must be positive"). */
export class TransformError extends Error {
  constructor(message) {
    super(message);
    this.name = 'TransformError';
  }
}

/** `Name: message` and the stack (down to the SDK's call into the transform), cut to
 * `limit` bytes. */
export function describe(e, limit = LIMIT) {
  if (e instanceof TransformError) return cut(e.message, limit);
  if (!(e instanceof Error)) return cut(typeof e === 'string' ? e : safeString(e), limit);
  const head = `${e.name}: ${e.message}`;
  // V8 (node) starts the stack with the head; SpiderMonkey (the component) does not.
  let stack = String(e.stack ?? '');
  if (stack.startsWith(head)) stack = stack.slice(head.length);
  let frames = stack
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const sdk = frames.findIndex((frame) => frame.includes('__waystream_user_code__'));
  if (sdk >= 0) frames = frames.slice(0, sdk);
  frames = frames.slice(0, FRAMES);
  const lines = [head, ...frames.map((frame) => `  ${frame}`)];
  if (e.cause !== undefined) lines.push(`caused by: ${e.cause instanceof Error ? `${e.cause.name}: ${e.cause.message}` : safeString(e.cause)}`);
  return cut(lines.join('\n'), limit);
}

function safeString(value) {
  try {
    return typeof value === 'object' ? JSON.stringify(value) ?? String(value) : String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** `text` in at most `limit` UTF-8 bytes: its first line, a marker, and its end. */
export function cut(text, limit = LIMIT) {
  const encoder = new TextEncoder();
  const size = encoder.encode(text).length;
  if (size <= limit) return text;
  const head = text.split('\n', 1)[0].slice(0, limit >> 3);
  const marker = `\n… (${size} bytes, cut) …\n`;
  // Take whole characters from the end while they fit, so none is split.
  let budget = limit - encoder.encode(head + marker).length;
  let start = text.length;
  while (start > 0) {
    const n = encoder.encode(text[start - 1]).length;
    if (n > budget) break;
    budget -= n;
    start--;
  }
  return head + marker + text.slice(start);
}
