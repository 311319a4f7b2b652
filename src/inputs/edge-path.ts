/**
 * The relayed path of an edge-agent request, made safe to put in the backend's URL.
 *
 * An agent posts to `/api/edge/<path>` and the relay posts to `{backend}/api/edge/<path>`. Anything a
 * client can smuggle into `<path>` ends up in a request the collector makes with its own standing towards
 * the backend, so the path is checked on the **raw** request target (never on a decoded form: `new URL()`
 * and the backend decode again, which is how `%252e%252e`, `%2f`, `%5c`, `%3f` and `%23` used to escape):
 *
 * - the target must start with exactly `/api/edge/`; the query string is dropped (a client must not add
 *   parameters to the backend's request) and a fragment cannot appear (`#` is not in the character class);
 * - `<path>` is 1 to 16 segments separated by `/`, each 1 to 128 characters of `[A-Za-z0-9._~-]` (RFC 3986
 *   unreserved characters: no `%` at all, so no encoding of any depth, no `\`, `;`, `:`, `@`, no Unicode),
 *   and no segment made of dots only (`.`, `..`, `...`); at most 512 characters in all;
 * - the backend URL is then built from the segments and its pathname must be the backend's own path +
 *   `/api/edge/` + `<path>`, with no query and no fragment (a second check that does not trust the first).
 */

export const EDGE_PREFIX = "/api/edge/";
export const EDGE_PATH_MAX_LENGTH = 512;
export const EDGE_PATH_MAX_SEGMENTS = 16;
const SEGMENT = /^[A-Za-z0-9._~-]{1,128}$/;
const DOTS = /^\.+$/;

export type EdgePathResult = { readonly path: string } | { readonly error: string };

/**
 * The relayed path (`a/b`) of a raw request target (`/api/edge/a/b?x=1`), or why it is refused. The query
 * string is not part of the result.
 */
export function edgePath(rawTarget: string): EdgePathResult {
  const q = rawTarget.indexOf("?");
  const target = q >= 0 ? rawTarget.slice(0, q) : rawTarget;
  if (!target.startsWith(EDGE_PREFIX)) return { error: "path must start with /api/edge/" };
  return checkPath(target.slice(EDGE_PREFIX.length));
}

/** Validate a relayed path (`a/b`, no leading slash, no query). */
export function checkPath(path: string): EdgePathResult {
  if (path.length === 0) return { error: "empty edge path" };
  if (path.length > EDGE_PATH_MAX_LENGTH)
    return { error: `edge path longer than ${EDGE_PATH_MAX_LENGTH} characters` };
  const segments = path.split("/");
  if (segments.length > EDGE_PATH_MAX_SEGMENTS)
    return { error: `edge path has more than ${EDGE_PATH_MAX_SEGMENTS} segments` };
  for (const s of segments) {
    if (s.length === 0) return { error: "empty segment in edge path" };
    if (!SEGMENT.test(s))
      return { error: "edge path segments may only use letters, digits and . _ ~ - (no encoding)" };
    if (DOTS.test(s)) return { error: "dot segments are not allowed in an edge path" };
  }
  return { path };
}

/**
 * The backend URL for a relayed path: `{backend}/api/edge/<path>`, built from encoded segments and checked
 * to still be under the backend's `/api/edge/` with no query or fragment. Throws on anything else (which
 * `checkPath` already refuses; the check stays so that a change to one cannot open the other).
 */
export function relayUrl(backend: URL, path: string): URL {
  const checked = checkPath(path);
  if ("error" in checked) throw new Error(checked.error);
  const basePath = backend.pathname.replace(/\/+$/, "");
  const segments = path.split("/").map(encodeURIComponent);
  const url = new URL(backend.href);
  url.search = "";
  url.hash = "";
  url.pathname = `${basePath}${EDGE_PREFIX}${segments.join("/")}`;
  const expected = `${basePath}${EDGE_PREFIX}${path}`;
  if (url.pathname !== expected || url.search !== "" || url.hash !== "" || url.origin !== backend.origin)
    throw new Error(`edge path escapes ${EDGE_PREFIX}`);
  return url;
}
