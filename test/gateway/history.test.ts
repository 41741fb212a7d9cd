// History the user controls: DELETE /v1/generations/{id} and the retention sweep (RETENTION_DAYS),
// over HTTP on real PostgreSQL, with the gateway's own local image store; and listing it by status
// while its generations move on (the cursor is a position, not a snapshot).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DELETED_KEPT_MS } from '../../src/gateway/retention.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { completed as completedWith, submit } from '../helpers/submit.ts';

const RETENTION_DAYS = 7;

const problemCode = async (res: Response) => {
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  return ((await res.json()) as { code: string }).code;
};


/** A completed generation of `key` with two images in the gateway's store; returns its id and image keys. */
const completed = (t: TestGateway, key: string, body?: Record<string, unknown>) => completedWith(t, key, [Buffer.from('png 0'), Buffer.from('png 1')], body);

const rowOf = async (t: TestGateway, id: string) => (await t.gw.db.query('SELECT deleted_at, idempotency_key FROM generations WHERE id = $1', [id]))[0];

for (const store of ['postgres', 'pglite'] as const) {
  const it = suite<{ t: TestGateway; alice: string; bob: string; carol: string }>(`history: delete, retention, listing (${store})`);

  it.before(async (ctx) => {
    ctx.t = await startTestGateway({ store, keys: [{ name: 'alice' }, { name: 'bob' }, { name: 'carol' }], env: { RETENTION_DAYS: String(RETENTION_DAYS) } });
    ctx.alice = ctx.t.keys.alice!;
    ctx.bob = ctx.t.keys.bob!;
    ctx.carol = ctx.t.keys.carol!;
  });
  it.after(({ t }) => t.stop());

  it('DELETE: 204, images gone, 404 on every read, off the list; again 204; another key 404', async ({ t, alice, bob }) => {
    const { id, keys } = await completed(t, alice);
    assert.is((await t.call('DELETE', `/v1/generations/${id}`, { key: bob })).status, 404, 'another key cannot delete it');
    assert.ok(await t.gw.images.read(keys[0]!), 'the failed attempt removed nothing');

    const res = await t.call('DELETE', `/v1/generations/${id}`, { key: alice });
    assert.is(res.status, 204);
    assert.is(await res.text(), '');
    for (const k of keys) assert.is(await t.gw.images.read(k), null);
    assert.is(await problemCode(await t.call('GET', `/v1/generations/${id}`, { key: alice })), 'not_found');
    assert.is((await t.call('GET', `/v1/generations/${id}/images/0`, { key: alice })).status, 404);
    assert.is((await t.call('GET', `/v1/generations/${id}/events`, { key: alice })).status, 404);
    assert.is((await t.call('POST', `/v1/generations/${id}/cancel`, { key: alice })).status, 404);
    assert.is((await t.call('GET', `/status/${id}`, { key: alice })).status, 404);
    const list = (await (await t.call('GET', '/v1/generations?limit=100', { key: alice })).json()) as { data: { id: string }[] };
    assert.not.ok(list.data.some((g) => g.id === id));

    assert.is((await t.call('DELETE', `/v1/generations/${id}`, { key: alice })).status, 204, 'idempotent');
    assert.is((await t.call('DELETE', `/v1/generations/${id}`, { key: bob })).status, 404, 'still not for another key');
    assert.is((await t.call('DELETE', `/v1/generations/00000000-0000-4000-8000-000000000000`, { key: alice })).status, 404, 'never existed');
    assert.is(await problemCode(await t.call('DELETE', `/v1/generations/not-a-uuid`, { key: alice })), 'invalid_id');
  });

  it('DELETE of an unfinished generation: 409 not_finished, saying to cancel first; after cancel it deletes', async ({ t, alice }) => {
    const id = await submit(t, { prompt: 'a helm' }, alice);
    const res = await t.call('DELETE', `/v1/generations/${id}`, { key: alice });
    assert.is(res.status, 409);
    const body = (await res.json()) as { code: string; detail: string; generation_status: string };
    assert.is(body.code, 'not_finished');
    assert.is(body.generation_status, 'pending');
    assert.match(body.detail, /cancel/);
    assert.is((await rowOf(t, id))!.deleted_at, null);
    assert.is((await t.runner(`/generations/${id}/claim`, { runner_id: 'r' })).status, 200);
    assert.is(((await (await t.call('DELETE', `/v1/generations/${id}`, { key: alice })).json()) as any).generation_status, 'processing');
    assert.is((await t.call('POST', `/v1/generations/${id}/cancel`, { key: alice })).status, 200);
    assert.is((await t.call('DELETE', `/v1/generations/${id}`, { key: alice })).status, 204);
  });

  it('DELETE forgets the Idempotency-Key: the same key then makes a new generation', async ({ t, alice }) => {
    const headers = { 'idempotency-key': 'history-1' };
    const body = { prompt: 'a shield' };
    const first = (await (await t.call('POST', '/v1/generations', { key: alice, body, headers })).json()) as { id: string };
    assert.is((await t.call('POST', `/v1/generations/${first.id}/cancel`, { key: alice })).status, 200);
    assert.is((await t.call('DELETE', `/v1/generations/${first.id}`, { key: alice })).status, 204);
    assert.is((await rowOf(t, first.id))!.idempotency_key, null);
    const again = await t.call('POST', '/v1/generations', { key: alice, body, headers });
    assert.is(again.status, 202);
    assert.is(again.headers.get('idempotent-replayed'), null);
    assert.is.not(((await again.json()) as { id: string }).id, first.id);
  });

  it('retention sweep: finished generations past RETENTION_DAYS go with their images, newer and unfinished ones stay', async ({ t, alice }) => {
    const old = await completed(t, alice);
    const recent = await completed(t, alice);
    const oldPending = await submit(t, { prompt: 'a ring' }, alice);
    await t.gw.db.query(`UPDATE generations SET finished_at = now() - make_interval(days => $2) WHERE id = $1`, [old.id, RETENTION_DAYS + 1]);
    await t.gw.db.query(`UPDATE generations SET created_at = now() - interval '30 days' WHERE id = $1`, [oldPending]);
    await t.gw.db.query(`UPDATE generations SET finished_at = now() - make_interval(days => $2) + interval '1 hour' WHERE id = $1`, [recent.id, RETENTION_DAYS]);

    assert.ok((await t.gw.retention.sweep()) >= 1);
    assert.is(await rowOf(t, old.id), undefined, 'the row is gone');
    for (const k of old.keys) assert.is(await t.gw.images.read(k), null, 'its images too');
    assert.ok(await rowOf(t, recent.id));
    for (const k of recent.keys) assert.ok(await t.gw.images.read(k));
    assert.ok(await rowOf(t, oldPending), 'unfinished generations are never swept');
  });

  it('retention sweep: a purged generation takes its webhook messages and attempts along', async ({ t, alice }) => {
    // A receiver that is not there: the completed message stays in the outbox, retried, with its failed attempts recorded.
    const old = await completed(t, alice, { prompt: 'a glowing sword', num_images: 2, webhook: 'http://127.0.0.1:9/hook', webhook_events_filter: ['start', 'completed'] });
    const count = async (table: string) => Number((await t.gw.db.query(`SELECT count(*) AS n FROM ${table} WHERE generation_id = $1`, [old.id]))[0]!.n);
    assert.ok((await count('webhook_outbox')) >= 1, 'the webhook messages are waiting');
    await t.gw.db.query(`UPDATE generations SET finished_at = now() - make_interval(days => $2) WHERE id = $1`, [old.id, RETENTION_DAYS + 1]);
    assert.ok((await t.gw.retention.sweep()) >= 1);
    assert.is(await rowOf(t, old.id), undefined);
    assert.is(await count('webhook_outbox'), 0, 'no message of a purged generation is left to send');
    assert.is(await count('webhook_deliveries'), 0, 'nor its attempts');
  });

  it('retention sweep: a deleted row whose images a crash left behind is purged with them once DELETED_KEPT_MS passed', async ({ t, alice }) => {
    const crashed = await completed(t, alice);
    const fresh = await completed(t, alice);
    // As if the gateway died between hiding the row and removing its images.
    await t.gw.db.query(`UPDATE generations SET deleted_at = now() - make_interval(secs => $2) WHERE id = $1`, [crashed.id, DELETED_KEPT_MS / 1000 + 60]);
    assert.is((await t.call('DELETE', `/v1/generations/${fresh.id}`, { key: alice })).status, 204);

    await t.gw.retention.sweep();
    assert.is(await rowOf(t, crashed.id), undefined);
    for (const k of crashed.keys) assert.is(await t.gw.images.read(k), null);
    assert.ok((await rowOf(t, fresh.id))!.deleted_at, 'recently deleted: kept hidden, so a repeated DELETE still answers 204');
    assert.is((await t.call('DELETE', `/v1/generations/${fresh.id}`, { key: alice })).status, 204);
  });

  it('retention sweep: one instance at a time (a lease); a second sweep of this instance runs after the first, and each row goes once', async ({ t, alice }) => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await completed(t, alice)).id);
    await t.gw.db.query(`UPDATE generations SET finished_at = now() - interval '100 days' WHERE id = ANY($1::uuid[])`, [ids]);
    await t.gw.db.query(`UPDATE sweep_leases SET lease_until = now() + interval '1 minute' WHERE name = 'retention'`);
    assert.is(await t.gw.retention.sweep(), 0, 'another instance holds the lease');
    assert.is(Number((await t.gw.db.query('SELECT count(*) AS n FROM generations WHERE id = ANY($1::uuid[])', [ids]))[0]!.n), 3);
    await t.gw.db.query(`UPDATE sweep_leases SET lease_until = '-infinity' WHERE name = 'retention'`);
    const counts = await Promise.all([t.gw.retention.sweep(), t.gw.retention.sweep()]);
    assert.is(counts[0]! + counts[1]!, 3);
    assert.is((await t.gw.db.query(`SELECT lease_until < now() AS free FROM sweep_leases WHERE name = 'retention'`))[0]!.free, true, 'the lease is given back');
  });

  it('a status listing, page by page, while generations change status between the pages', async ({ t, carol }) => {
    type Page = { data: { id: string; status: string }[]; next_cursor: string | null };
    const page = async (query: string) => (await (await t.call('GET', `/v1/generations?${query}`, { key: carol })).json()) as Page;
    const claim = async (id: string) => assert.is((await t.runner(`/generations/${id}/claim`, { runner_id: 'r' })).status, 200);
    const g: string[] = [];
    for (let i = 0; i < 7; i++) g.push(await submit(t, { prompt: `a lantern ${i}` }, carol));

    const first = await page('status=pending&limit=3');
    assert.equal(first.data.map((x) => x.id), [g[6], g[5], g[4]]);
    await claim(g[5]!); // seen on the first page, then leaves the status: not shown again
    await claim(g[2]!); // not seen yet, leaves the status before its page: not shown
    const newer = await submit(t, { prompt: 'a newer lantern' }, carol); // above the cursor: only a new first page shows it
    const second = await page(`status=pending&limit=3&cursor=${first.next_cursor}`);
    assert.equal(second.data.map((x) => x.id), [g[3], g[1], g[0]], 'the rest of the pending ones, each once, newest first');
    assert.is(second.next_cursor, null);
    assert.equal((await page('status=pending&limit=1')).data.map((x) => x.id), [newer]);

    // A page's look-ahead row leaves the status before the next page: that page is empty, and the last.
    await claim(g[0]!);
    const processing = await page('status=processing&limit=2');
    assert.equal(processing.data.map((x) => x.id), [g[5], g[2]]);
    assert.type(processing.next_cursor, 'string');
    assert.is((await t.call('POST', `/v1/generations/${g[0]}/cancel`, { key: carol })).status, 200);
    assert.equal(await page(`status=processing&limit=2&cursor=${processing.next_cursor}`), { data: [], next_cursor: null });
    // … and one that joins the status below the cursor shows on the next page, in its place.
    await claim(g[1]!);
    assert.equal((await page(`status=processing&limit=2&cursor=${processing.next_cursor}`)).data.map((x) => x.id), [g[1]]);
  });

  it.run();
}
