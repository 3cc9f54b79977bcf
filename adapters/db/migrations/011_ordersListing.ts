import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The orders listing (`GET …/orders`, `GET …/members/{member_id}/orders`, issue 14 item 4), as DDL
 * on top of 002's, unqualified like it: the replay (adapters/audit/replay.ts) runs this list too,
 * under `set local search_path`, to build the same table in its own schema.
 *
 * - `rm_orders.seq`: the order's place in the projection's order (redemption order), the page
 *   cursor and the listing's order, as `seq` is for members and rewards. Orders projected before
 *   this migration are numbered by (created_at, order_id), which is the order they were placed in
 *   but for orders placed in the same millisecond; new ones follow. A replay numbers all of them
 *   in event order.
 * - One index per way the listing filters, each ending in `seq` so a page is an index range:
 *   the program's queue by status (the fulfilment queue), a member's orders, and all of them.
 *   The member index of 002 (member_id, created_at desc) stays for the dashboard's member page.
 */
export const ordersListingStatements: readonly string[] = [
  `alter table rm_orders add column seq bigint`,
  `update rm_orders o set seq = n.seq
    from (select order_id, row_number() over (order by created_at, order_id) as seq from rm_orders) n
    where n.order_id = o.order_id`,
  `alter table rm_orders alter column seq set not null`,
  `alter table rm_orders alter column seq add generated always as identity`,
  `select setval(pg_get_serial_sequence('rm_orders', 'seq'),
    coalesce((select max(seq) from rm_orders), 0) + 1, false)`,
  `create index rm_orders_program_status on rm_orders (program_id, status, seq)`,
  `create index rm_orders_program_member on rm_orders (program_id, member_id, seq)`,
  `create index rm_orders_program on rm_orders (program_id, seq)`,
];

export const ordersListingMigration: Migration = {
  async up(db: Kysely<unknown>) {
    for (const statement of ordersListingStatements) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`alter table rm_orders drop column seq`.execute(db);
  },
};
