// A dependency-free static server for the repository root: `.wasm` as application/wasm,
// loopback only, no directory listings. Used by `make demo` and by the end-to-end tests.
//   node scripts/serve.mjs [--port 8080] [--host 127.0.0.1]
import { createServer } from 'node:http';
import { createReadStream, readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.ts': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.csv': 'text/csv; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.safetensors': 'application/octet-stream',
  '.pth': 'application/octet-stream',
};

/**
 * The page's Content-Security-Policy, read from index.html's meta tag (its one source), sent as
 * an HTTP header with the app's pages and scripts. The header is what covers the workers: a
 * dedicated worker takes the policy of its script's response, not the page's meta tag (a
 * fetch injected into worker.js went out under the meta tag alone).
 */
export const CSP = (() => {
  const html = readFileSync(join(ROOT, 'index.html'), 'utf8');
  const meta = /<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"]+)"/.exec(html);
  if (!meta) throw new Error('index.html has no Content-Security-Policy meta tag');
  return meta[1];
})();

/** Whether `path` (URL path) is the app's: its page, its modules and workers, its examples. */
const isApp = (path) => path === '/index.html' || path.startsWith('/www/');

/** Start serving; resolves to the http.Server once it listens. */
// `csp: false` serves without the header; `prepend` maps URL paths to code put before their
// file's text (both for the privacy test's positive control).
export function serve({ port = 8080, host = '127.0.0.1', root = ROOT, quiet = false, csp = true, prepend = {} } = {}) {
  const server = createServer(async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    let path;
    try {
      path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      res.writeHead(400).end('bad path');
      return;
    }
    if (path.endsWith('/')) path += 'index.html';
    const file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const info = await stat(file);
      if (!info.isFile()) throw new Error('not a file');
      const type = TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
      const headers = { 'Content-Type': type, 'Content-Length': info.size, 'Cache-Control': 'no-cache' };
      if (csp && isApp(path) && /^text\/(html|javascript)/.test(type)) headers['Content-Security-Policy'] = CSP;
      if (prepend[path] !== undefined) {
        const body = Buffer.concat([Buffer.from(prepend[path]), await readFile(file)]);
        res.writeHead(200, { ...headers, 'Content-Length': body.length });
        return res.end(req.method === 'HEAD' ? undefined : body);
      }
      res.writeHead(200, headers);
      if (req.method === 'HEAD') return res.end();
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`not found: ${path}`);
    }
    if (!quiet) console.log(`${req.method} ${path}`);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok(server));
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  const port = Number(arg('port', process.env.PORT ?? 8080));
  const host = arg('host', '127.0.0.1');
  serve({ port, host, quiet: true })
    .then(() => console.log(`tabtune demo: http://${host}:${port}/  (Ctrl-C to stop)`))
    .catch((err) => {
      console.error(`cannot serve on ${host}:${port}: ${err.message}`);
      process.exit(1);
    });
}
