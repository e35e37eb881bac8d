/** rotate-keys' notice to running nodes over Redis (where configured): "re-read the key state now". */
import type { Config } from '../config/index.js';
import { keysChannel } from './node-sync.js';

export interface NodeNotifier {
  notify(): Promise<void>;
  close(): void;
}

export async function connectNotifier(config: Pick<Config, 'redisUrl' | 'redisPrefix'>): Promise<NodeNotifier> {
  if (!config.redisUrl) return { notify: async () => {}, close: () => {} };
  const { Redis } = await import('ioredis');
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  redis.on('error', () => {});
  // Without Redis the nodes still pick the change up on their next heartbeat: a notice is an optimisation.
  const ready = redis.connect().then(
    () => true,
    () => false,
  );
  return {
    async notify() {
      if (await ready) await redis.publish(keysChannel(config.redisPrefix), 'changed').catch(() => {});
    },
    close: () => redis.disconnect(),
  };
}
