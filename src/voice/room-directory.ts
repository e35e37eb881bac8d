/**
 * "Which room serves this channel": the one lookup the voice service makes, behind a small interface
 * so a multi-node install can later pin each channel to one node (through Redis) and answer with a
 * redirect instead of a local room. The local directory opens one router per active channel on the
 * worker pool and forgets the room when it closes.
 */
import type { types as ms } from 'mediasoup';
import { Room } from './Room.js';
import type { WorkerPool } from './WorkerPool.js';

export interface RoomDirectory {
  /** The room serving the channel, opened on first use. Concurrent calls share one room. */
  open(channelId: string): Promise<Room>;
  /** The room serving the channel, if one is open. */
  get(channelId: string): Room | undefined;
  rooms(): Room[];
}

/** Opus at 48 kHz, stereo, in-band FEC (and DTX: silence costs next to nothing). */
export const AUDIO_CODECS: ms.RouterRtpCodecCapability[] = [
  {
    kind: 'audio',
    mimeType: 'audio/opus',
    clockRate: 48000,
    channels: 2,
    parameters: { useinbandfec: 1, usedtx: 1, stereo: 1 },
  },
];

export const VIDEO_CODECS: ms.RouterRtpCodecCapability[] = [{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000 }];

export interface LocalRoomDirectoryOptions {
  pool: WorkerPool;
  kinds: readonly ms.MediaKind[];
  /** Called once for each room opened, before anyone can join it. */
  onOpen(room: Room): void;
}

export class LocalRoomDirectory implements RoomDirectory {
  readonly #opts: LocalRoomDirectoryOptions;
  readonly #rooms = new Map<string, Room>();
  readonly #opening = new Map<string, Promise<Room>>();

  constructor(opts: LocalRoomDirectoryOptions) {
    this.#opts = opts;
  }

  get(channelId: string): Room | undefined {
    return this.#rooms.get(channelId);
  }

  rooms(): Room[] {
    return [...this.#rooms.values()];
  }

  open(channelId: string): Promise<Room> {
    const open = this.#rooms.get(channelId);
    if (open && !open.closed) return Promise.resolve(open);
    let opening = this.#opening.get(channelId);
    if (!opening) {
      opening = this.#create(channelId).finally(() => this.#opening.delete(channelId));
      this.#opening.set(channelId, opening);
    }
    return opening;
  }

  async #create(channelId: string): Promise<Room> {
    const { pool, kinds } = this.#opts;
    const codecs = kinds.includes('video') ? [...AUDIO_CODECS, ...VIDEO_CODECS] : AUDIO_CODECS;
    const { router, slot } = await pool.createRouter(codecs);
    const room = Room.create({ channelId, router, webRtcServer: slot.webRtcServer, workerIndex: slot.index, kinds });
    this.#rooms.set(channelId, room);
    room.once('closed', () => {
      if (this.#rooms.get(channelId) === room) this.#rooms.delete(channelId);
    });
    this.#opts.onOpen(room);
    // The worker may have died while the router was being made.
    if (router.closed) room.close('worker-died');
    return room;
  }
}
