/** Prometheus registry of this server (one per app instance, so tests can run several). */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'voicechat_' });
  return {
    registry,
    httpRequests: new Counter({
      name: 'voicechat_http_requests_total',
      help: 'HTTP requests by method, route and status class',
      labelNames: ['method', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'voicechat_http_request_duration_seconds',
      help: 'HTTP request duration',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    gatewayConnections: new Gauge({
      name: 'voicechat_gateway_connections',
      help: 'Open gateway WebSocket connections',
      registers: [registry],
    }),
    gatewayEvents: new Counter({
      name: 'voicechat_gateway_events_total',
      help: 'Events published to gateway topics',
      registers: [registry],
    }),
    gatewaySlowConsumers: new Counter({
      name: 'voicechat_gateway_slow_consumers_total',
      help: 'Gateway connections closed for exceeding the backpressure cap',
      registers: [registry],
    }),
    jobRuns: new Counter({
      name: 'voicechat_job_runs_total',
      help: 'Scheduled job runs by job and status (ok, failed, skipped: another holder had the lease)',
      labelNames: ['job', 'status'] as const,
      registers: [registry],
    }),
    jobItems: new Counter({
      name: 'voicechat_job_items_total',
      help: 'What job runs removed or did, by job and kind (e.g. removed, stray_files, checkpoints)',
      labelNames: ['job', 'what'] as const,
      registers: [registry],
    }),
    jobDuration: new Histogram({
      name: 'voicechat_job_duration_seconds',
      help: 'Scheduled job run duration',
      labelNames: ['job'] as const,
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
