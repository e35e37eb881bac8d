/** coturn REST credentials (no I/O): the known-answer vector was computed with `openssl dgst -sha1 -hmac`. */
import { describe, expect, it } from 'vitest';
import { iceServersFor, turnCredential } from '../../src/voice/ice-servers.js';

const USER = '0190f0aa-0000-7000-8000-000000000001';

describe('TURN REST credentials', () => {
  it('username = expiry:user_id, credential = base64(HMAC-SHA1(secret, username))', () => {
    expect(turnCredential('north', USER, 1_700_000_000)).toEqual({
      username: `1700000000:${USER}`,
      credential: 't+sjN/AYrObCvi3YvakKgGFCeYM=',
    });
  });

  it('STUN first, TURN with a credential expiring after the configured TTL', () => {
    const out = iceServersFor(
      {
        stunUrls: ['stun:a:3478'],
        turnUrls: ['turn:a:3478', 'turns:a:5349'],
        turnSecret: 'north',
        turnCredentialTtlSeconds: 600,
      },
      USER,
      1_699_999_400_500,
    );
    expect(out).toEqual({
      ice_servers: [
        { urls: ['stun:a:3478'] },
        {
          urls: ['turn:a:3478', 'turns:a:5349'],
          username: `1700000000:${USER}`,
          credential: 't+sjN/AYrObCvi3YvakKgGFCeYM=',
        },
      ],
      expires_at: '2023-11-14T22:13:20.000Z',
    });
  });

  it('no TURN without a secret, nothing configured = no servers', () => {
    expect(
      iceServersFor({ stunUrls: [], turnUrls: ['turn:a'], turnSecret: undefined, turnCredentialTtlSeconds: 60 }, USER),
    ).toEqual({ ice_servers: [] });
  });
});
