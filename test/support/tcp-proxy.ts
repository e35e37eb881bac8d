/**
 * A plain TCP relay on a fixed loopback port in front of a server that may come and go. Browsers
 * keep one origin while the server process behind it is restarted on a fresh port (a restarted
 * process cannot always bind its old port at once: the old connections sit in TIME_WAIT).
 */
import net from 'node:net';

export interface TcpProxy {
  port: number;
  url: string;
  /** Where new connections go; null refuses them (the server is down). */
  setTarget(port: number | null): void;
  close(): Promise<void>;
}

export function startTcpProxy(): Promise<TcpProxy> {
  let target: number | null = null;
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (target === null) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target, '127.0.0.1');
    open.add(client);
    open.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        setTarget(p) {
          target = p;
          if (p === null) for (const s of open) s.destroy();
        },
        close: () =>
          new Promise<void>((r) => {
            for (const s of open) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
