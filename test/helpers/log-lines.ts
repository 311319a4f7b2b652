/**
 * Log-line hygiene (DESIGN §5, issue 12): every line the collector writes to stderr must be one JSON object
 * with unique keys at every level (JSON.parse silently keeps the last of two equal keys, so a repeated
 * "msg" loses the real error). `checkLogLine` says what is wrong with a line; `service.ts` runs it over
 * every line of every service an integration test starts, and fails the test file when one is bad.
 */

/** Problems of one log line: "" when it is a JSON object with unique keys. */
export function checkLogLine(line: string): string {
  const p = new KeyChecker(line);
  try {
    p.skipWs();
    if (line[p.at] !== "{") return "not a JSON object";
    p.value("");
    p.skipWs();
    if (p.at !== line.length) return `trailing characters at ${p.at}`;
  } catch (err) {
    return (err as Error).message;
  }
  return p.duplicates.length > 0 ? `duplicate keys: ${p.duplicates.join(", ")}` : "";
}

/** A strict JSON reader that records keys repeated within one object (by their path). */
class KeyChecker {
  at = 0;
  readonly duplicates: string[] = [];
  readonly #s: string;

  constructor(s: string) {
    this.#s = s;
  }

  skipWs(): void {
    while (this.at < this.#s.length && " \t\r\n".includes(this.#s[this.at]!)) this.at++;
  }

  value(path: string): void {
    this.skipWs();
    const c = this.#s[this.at];
    if (c === "{") this.#object(path);
    else if (c === "[") this.#array(path);
    else if (c === '"') this.#string();
    else {
      const m = /^(-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(this.#s.slice(this.at));
      if (!m) throw new Error(`invalid JSON at ${this.at}`);
      this.at += m[0].length;
    }
  }

  #object(path: string): void {
    this.at++;
    const keys = new Set<string>();
    this.skipWs();
    if (this.#s[this.at] === "}") {
      this.at++;
      return;
    }
    for (;;) {
      this.skipWs();
      if (this.#s[this.at] !== '"') throw new Error(`expected a key at ${this.at}`);
      const key = this.#string();
      const full = path ? `${path}.${key}` : key;
      if (keys.has(key)) this.duplicates.push(full);
      keys.add(key);
      this.skipWs();
      if (this.#s[this.at] !== ":") throw new Error(`expected ':' at ${this.at}`);
      this.at++;
      this.value(full);
      this.skipWs();
      const c = this.#s[this.at++];
      if (c === "}") return;
      if (c !== ",") throw new Error(`expected ',' or '}' at ${this.at - 1}`);
    }
  }

  #array(path: string): void {
    this.at++;
    this.skipWs();
    if (this.#s[this.at] === "]") {
      this.at++;
      return;
    }
    for (let i = 0; ; i++) {
      this.value(`${path}[${i}]`);
      this.skipWs();
      const c = this.#s[this.at++];
      if (c === "]") return;
      if (c !== ",") throw new Error(`expected ',' or ']' at ${this.at - 1}`);
    }
  }

  #string(): string {
    const start = this.at;
    let i = start + 1;
    for (;;) {
      if (i >= this.#s.length) throw new Error(`unterminated string at ${start}`);
      const c = this.#s.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) throw new Error(`control character in a string at ${i}`);
      i += c === 0x5c ? 2 : 1;
    }
    this.at = i + 1;
    try {
      return JSON.parse(this.#s.slice(start, this.at)) as string;
    } catch {
      throw new Error(`invalid string at ${start}`);
    }
  }
}
