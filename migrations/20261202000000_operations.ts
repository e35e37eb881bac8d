/**
 * Operations (issue 12): job leases and results, and the registry of running server nodes that key
 * rotation waits on (which key ids each node holds, which rotation it has applied).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('job_runs', (t) => {
    // A lease, not a lock held by a connection: it works across nodes on both dialects and across a
    // CLI `jobs run` racing a server. Expires by itself if its holder dies.
    t.string('lease_owner', 64).nullable();
    t.bigInteger('lease_until').nullable();
    t.text('last_result').nullable(); // JSON counts of the last successful run
    t.integer('last_duration_ms').nullable();
  });

  await knex.schema.createTable('server_nodes', (t) => {
    t.string('node_id', 64).primary();
    t.string('hostname', 255).notNullable();
    t.integer('pid').notNullable();
    t.bigInteger('started_at').notNullable();
    t.bigInteger('last_seen_at').notNullable();
    t.integer('heartbeat_ms').notNullable();
    t.text('key_ids').notNullable(); // JSON {purpose: [key ids]} (ids only, never material)
    t.string('rotation_seen', 36).nullable(); // newest key_rotations.id applied
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('server_nodes');
  await knex.schema.alterTable('job_runs', (t) => {
    t.dropColumn('lease_owner');
    t.dropColumn('lease_until');
    t.dropColumn('last_result');
    t.dropColumn('last_duration_ms');
  });
}
