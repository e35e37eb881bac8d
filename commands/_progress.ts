/** The CLI's progress bars (cli-progress on stderr, only on a terminal): one bar per phase, rows/s and ETA. */
import { SingleBar } from 'cli-progress';

export class ProgressBar {
  #bar: SingleBar | undefined;
  #label = '';
  #started = 0;

  /** Moves the bar of `label` (a new label closes the previous bar and starts a new one). */
  update(label: string, done: number, total: number, unit = 'rows'): void {
    if (label !== this.#label) {
      this.#bar?.stop();
      this.#label = label;
      this.#started = Date.now();
      this.#bar = new SingleBar({
        format: `${label.padEnd(16)} [{bar}] {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted}`,
        stream: process.stderr,
        hideCursor: true,
      });
      this.#bar.start(Math.max(total, done), 0, { rate: 0 });
    }
    const secs = Math.max((Date.now() - this.#started) / 1000, 0.001);
    this.#bar?.setTotal(Math.max(total, done));
    this.#bar?.update(done, { rate: Math.round(done / secs) });
  }

  stop(): void {
    this.#bar?.stop();
  }
}

/** A bar when stderr is a terminal and the output is not JSON, else nothing. */
export const progressBar = (json: boolean): ProgressBar | undefined =>
  !json && process.stderr.isTTY ? new ProgressBar() : undefined;
