import { describe, expect, it } from 'vitest';
import { rowHash } from '../../src/audit/writer.js';
import { canonicalJson } from '../../src/canonical-json.js';
import { sha256Hex } from '../../src/crypto/random.js';

describe('audit rowHash', () => {
  it('equals SHA-256(prev ‖ canonicalJson(row)) for every field shape', () => {
    const rows = [
      {
        id: 1,
        user_id: null,
        action: 'keys.rotate',
        resource_type: null,
        resource_id: null,
        ip_address: null,
        metadata: '{}',
        created_at: 1,
      },
      {
        id: 123456789,
        user_id: '0190f3a4-0000-7000-8000-000000000001',
        action: 'auth.login_failed',
        resource_type: 'user',
        resource_id: 'x"y\\z\u2028',
        ip_address: '::1',
        metadata: '{"reason":"ünï\\"code\\n"}',
        created_at: 1796193821674,
      },
    ];
    for (const row of rows) {
      const prev = sha256Hex(String(row.id));
      expect(rowHash(prev, row)).toBe(sha256Hex(prev + canonicalJson(row)));
      // Values as a driver may return them (bigint columns as strings) hash the same.
      expect(rowHash(prev, { ...row, id: String(row.id) as never, created_at: String(row.created_at) as never })).toBe(
        rowHash(prev, row),
      );
    }
  });
});
