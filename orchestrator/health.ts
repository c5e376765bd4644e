// Health endpoint (loopback by default):
//   GET /livez   200 while the process runs and is not shutting down
//   GET /readyz  200 when the listener is connected and a ping made the
//                round trip through the real queue; 503 otherwise
//   GET /status  worker health plus queue depths per queue and state
//   GET /metrics Prometheus text format (metrics.ts)
//   /dashboard   the operator dashboard, when enabled (dashboard.ts)
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Worker } from './worker.js';

export async function startHealthServer(worker: Worker, host: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)));
    };
    if (worker.dashboard?.handle(req, res)) return;
    const h = worker.health();
    switch (req.url) {
      case '/livez':
        return send(h.live ? 200 : 503, { live: h.live });
      case '/readyz':
        return send(h.ready ? 200 : 503, h);
      case '/metrics':
        worker.metrics.text().then(
          (text) => {
            res.writeHead(200, { 'content-type': worker.metrics.contentType });
            res.end(text);
          },
          (err) => send(500, { error: String(err) }),
        );
        return;
      case '/status':
        worker.queueDepths().then(
          (queues) => send(200, { ...h, queues }),
          (err) => send(503, { ...h, error: String(err) }),
        );
        return;
      default:
        return send(404, { error: 'not found', routes: ['/livez', '/readyz', '/status', '/metrics'] });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  server.unref();
  return server;
}

export function serverPort(server: http.Server): number {
  return (server.address() as AddressInfo).port;
}
