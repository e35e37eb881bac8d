/**
 * The voice signalling ops (DESIGN.md §8) as zod schemas. mediasoup's own objects (RTP capabilities
 * and parameters, DTLS parameters) travel in mediasoup's camelCase inside the snake_case fields: their
 * structure is checked here as far as the server relies on it (known keys typed, unknown keys kept,
 * sizes bounded), and mediasoup validates the rest (a malformed one answers VALIDATION_FAILED).
 */
import { z } from 'zod';
import { noData, op, opId } from '../events/ops.js';

const mediasoupId = z.string().min(1).max(64);
const token = z.string().min(1).max(256);
const params = z.record(z.string().max(64), z.union([z.string().max(256), z.number(), z.boolean()]));

const rtcpFeedback = z.looseObject({ type: token, parameter: z.string().max(64).optional() });

const codecCapability = z.looseObject({
  kind: z.enum(['audio', 'video']),
  mimeType: token,
  clockRate: z.number().int().positive(),
  channels: z.number().int().positive().optional(),
  preferredPayloadType: z.number().int().min(0).max(127).optional(),
  parameters: params.optional(),
  rtcpFeedback: z.array(rtcpFeedback).max(32).optional(),
});

const headerExtension = z.looseObject({ uri: token });

export const rtpCapabilities = z.looseObject({
  codecs: z.array(codecCapability).max(64).optional(),
  headerExtensions: z.array(headerExtension).max(64).optional(),
});

export const rtpParameters = z.looseObject({
  mid: z.string().max(64).optional(),
  codecs: z
    .array(
      z.looseObject({
        mimeType: token,
        payloadType: z.number().int().min(0).max(127),
        clockRate: z.number().int().positive(),
        channels: z.number().int().positive().optional(),
        parameters: params.optional(),
        rtcpFeedback: z.array(rtcpFeedback).max(32).optional(),
      }),
    )
    .min(1)
    .max(16),
  headerExtensions: z.array(headerExtension).max(32).optional(),
  encodings: z.array(z.looseObject({})).max(8).optional(),
  rtcp: z.looseObject({}).optional(),
});

export const dtlsParameters = z.looseObject({
  role: z.enum(['auto', 'client', 'server']).optional(),
  fingerprints: z
    .array(z.looseObject({ algorithm: z.string().min(1).max(32), value: z.string().min(1).max(256) }))
    .min(1)
    .max(8),
});

/** The ops, in DESIGN.md §8's order. */
export const VOICE_OP_SCHEMAS = [
  op(
    'voice_join',
    z.strictObject({
      channel_id: opId,
      /** The client encrypts its media end to end (required in channels with `e2ee_voice`; issue 15). */
      e2ee: z.boolean().optional(),
    }),
  ),
  op('voice_create_transport', z.strictObject({ direction: z.enum(['send', 'recv']) })),
  op('voice_connect_transport', z.strictObject({ transport_id: mediasoupId, dtls_parameters: dtlsParameters })),
  op(
    'voice_produce',
    z.strictObject({ transport_id: mediasoupId, kind: z.enum(['audio', 'video']), rtp_parameters: rtpParameters }),
  ),
  op('voice_consume', z.strictObject({ producer_id: mediasoupId, rtp_capabilities: rtpCapabilities })),
  op('voice_resume_consumer', z.strictObject({ consumer_id: mediasoupId })),
  op('voice_mute', noData),
  op('voice_unmute', noData),
  op('voice_deafen', noData),
  op('voice_undeafen', noData),
  op('voice_server_mute', z.strictObject({ user_id: opId, muted: z.boolean() })),
  op('voice_leave', noData),
] as const;

export type VoiceOp = z.infer<(typeof VOICE_OP_SCHEMAS)[number]>;
