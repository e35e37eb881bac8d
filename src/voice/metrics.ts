/** Voice gauges on the app's Prometheus registry, read from the voice service at scrape time. */
import { Gauge, type Registry } from 'prom-client';
import type { VoiceService } from './VoiceService.js';

export function registerVoiceMetrics(registry: Registry, voice: VoiceService): void {
  const counts = ['rooms', 'peers', 'transports', 'producers', 'consumers'] as const;
  for (const what of counts) {
    new Gauge({
      name: `voicechat_voice_${what}`,
      help: `Voice ${what} on this node`,
      registers: [registry],
      collect() {
        this.set(voice.stats()[what]);
      },
    });
  }
  new Gauge({
    name: 'voicechat_voice_available',
    help: '1 when voice is available (a mediasoup worker runs), else 0',
    registers: [registry],
    collect() {
      this.set(voice.status.available ? 1 : 0);
    },
  });
  new Gauge({
    name: 'voicechat_voice_worker_cpu_seconds',
    help: 'CPU time (user + system) used by each mediasoup worker',
    labelNames: ['worker'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const slot of voice.pool?.slots() ?? []) {
        const usage = await slot.worker.getResourceUsage().catch(() => undefined);
        if (usage) this.set({ worker: String(slot.index) }, (usage.ru_utime + usage.ru_stime) / 1000);
      }
    },
  });
}
