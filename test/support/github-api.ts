import { createServer, type Server } from 'node:http';

/** One request the stand-in received. */
export interface ApiCall {
  method: string;
  path: string;
  body: Record<string, unknown>;
  authorization: string | undefined;
}

/**
 * A local stand-in for the GitHub REST API's Deployments endpoints, at a base URL to give as GITHUB_API_URL:
 * records every call, answers like GitHub (201 with an id), or with `fail` (e.g. 403) to test refusals.
 */
export interface GitHubApiStandIn {
  url: string;
  calls: ApiCall[];
  /** Status code for every following call (undefined: answer like GitHub). */
  fail: number | undefined;
  close(): Promise<void>;
}

export async function startGitHubApi(): Promise<GitHubApiStandIn> {
  let next = 1000;
  const api: GitHubApiStandIn = { url: '', calls: [], fail: undefined, close: async () => {} };
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => {
      raw += d;
    });
    req.on('end', () => {
      const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
      api.calls.push({ method: req.method ?? '', path: req.url ?? '', body, authorization: req.headers.authorization });
      res.setHeader('content-type', 'application/json');
      if (api.fail) {
        res.writeHead(api.fail).end(JSON.stringify({ message: 'Resource not accessible by integration' }));
        return;
      }
      if (req.method === 'POST' && /^\/repos\/[^/]+\/[^/]+\/deployments$/.test(req.url ?? '')) {
        res.writeHead(201).end(JSON.stringify({ id: next++, sha: body.ref, environment: body.environment }));
        return;
      }
      const status = /^\/repos\/[^/]+\/[^/]+\/deployments\/(\d+)\/statuses$/.exec(req.url ?? '');
      if (req.method === 'POST' && status) {
        res.writeHead(201).end(JSON.stringify({ id: next++, state: body.state }));
        return;
      }
      res.writeHead(404).end(JSON.stringify({ message: 'Not Found' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  api.close = () => new Promise((resolve) => server.close(() => resolve()));
  return api;
}

/** The calls as `METHOD path state`, to compare sequences. */
export function callSummary(calls: readonly ApiCall[]): string[] {
  return calls.map((c) => `${c.method} ${c.path}${c.body.state ? ` ${c.body.state}` : ''}`);
}
