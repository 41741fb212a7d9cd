// The dashboard as synthesized (infra/dashboard.ts in each stack) and the series it and the alerts
// read: every PromQL query parses (promtool, as recording rules), every itemgen_ series named is
// one the gateway or the runner exports, the layout holds together, and the cluster collects what
// the charts and alerts beyond ours read (kube-state-metrics, DCGM).
import path from 'node:path';
import { Yaml } from 'cdk8s';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { environments } from '../../infra/environments.ts';
import { dashboardJson, dashboardSections } from '../../infra/dashboard.ts';
import { alertGroups } from '../../k8s/alerts.ts';
import { createGatewayMetrics } from '../../src/gateway/metrics.ts';
import { createRunnerMetrics } from '../../src/runner/metrics.ts';
import { promtool } from '../helpers/promtool.ts';
import { eachStack, one } from '../helpers/terraform.ts';

const queries = (env = environments.prod!) => dashboardSections(env).flatMap((s) => s.charts.flatMap((c) => c.queries.map((q) => q.promql)));
const alertExprs = (env = environments.prod!) => alertGroups(env).flatMap((g) => g.rules.map((r) => r.expr));

test('each stack has the dashboard, its JSON the module’s, with no Terraform interpolation in it', () => {
  for (const [env, stack] of eachStack()) {
    const dashboard = one(stack, 'google_monitoring_dashboard');
    assert.not.match(dashboard.dashboard_json, '${', 'a ${…} would be interpolated by Terraform');
    assert.equal(JSON.parse(dashboard.dashboard_json), dashboardJson(env));
    assert.is(JSON.parse(dashboard.dashboard_json).displayName, `itemgen ${env.name}`);
  }
});

test('golden signals per component: the gateway’s rate, errors and latency, the queue’s age and depth, the runners’ throughput and step time, webhooks', () => {
  const sections = Object.fromEntries(dashboardSections(environments.prod!).map((s) => [s.title, s.charts.flatMap((c) => c.queries.map((q) => q.promql)).join('\n')]));
  assert.equal(Object.keys(sections), ['Gateway (Cloud Run)', 'Queue', 'Runners (GKE)', 'Webhooks']);
  assert.match(sections['Gateway (Cloud Run)']!, 'rate(itemgen_http_requests_total[5m])');
  assert.match(sections['Gateway (Cloud Run)']!, 'status=~"5.."');
  assert.match(sections['Gateway (Cloud Run)']!, 'itemgen_http_request_duration_seconds_bucket');
  assert.match(sections.Queue!, 'itemgen_oldest_pending_generation_age_seconds');
  assert.match(sections.Queue!, 'rabbitmq_detailed_queue_messages_ready');
  assert.match(sections['Runners (GKE)']!, 'itemgen_runner_jobs_total');
  assert.match(sections['Runners (GKE)']!, 'itemgen_runner_step_seconds_bucket');
  assert.match(sections['Runners (GKE)']!, 'DCGM_FI_DEV_GPU_UTIL');
  assert.match(sections.Webhooks!, 'itemgen_webhook_deliveries_total');
});

test('tiles: every chart a PromQL line chart, inside the 48 columns, none overlapping another', () => {
  const { mosaicLayout } = dashboardJson(environments.prod!) as { mosaicLayout: { columns: number; tiles: any[] } };
  assert.is(mosaicLayout.columns, 48);
  const cells = new Set<string>();
  for (const t of mosaicLayout.tiles) {
    assert.ok(t.xPos + t.width <= 48, t.widget.title);
    for (let x = t.xPos; x < t.xPos + t.width; x++) {
      for (let y = t.yPos; y < t.yPos + t.height; y++) {
        assert.not.ok(cells.has(`${x},${y}`), `${t.widget.title} overlaps at ${x},${y}`);
        cells.add(`${x},${y}`);
      }
    }
    if (t.widget.xyChart) for (const d of t.widget.xyChart.dataSets) assert.ok(d.timeSeriesQuery.prometheusQuery, t.widget.title);
  }
  const charts = mosaicLayout.tiles.filter((t) => t.widget.xyChart).length;
  assert.is(charts, dashboardSections(environments.prod!).flatMap((s) => s.charts).length);
});

test('every dashboard query is PromQL that Prometheus parses', () => {
  const groups = [{ name: 'dashboard', rules: queries().map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }];
  const { status, output } = promtool({ 'dashboard.rules.yaml': Yaml.stringify({ groups }) }, (dir) => ['check', 'rules', path.join(dir, 'dashboard.rules.yaml')]);
  assert.is(status, 0, output);
  assert.match(output, `SUCCESS: ${queries().length} rules found`);
});

test('every itemgen_ series the alerts and the dashboard read is one the gateway or a runner exports', async () => {
  const exported = new Set<string>();
  for (const registry of [createGatewayMetrics(() => true).registry, createRunnerMetrics().registry]) {
    for (const m of await registry.getMetricsAsJSON()) {
      exported.add(m.name);
      if (String(m.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(`${m.name}${suffix}`);
    }
  }
  const read = new Set([...queries(), ...alertExprs()].flatMap((q) => [...q.matchAll(/\bitemgen_[a-z_]+/g)].map((m) => m[0])));
  assert.ok(read.size >= 10, [...read].join(' '));
  for (const name of read) assert.ok(exported.has(name), `${name} is read but not exported`);
});

test('the cluster collects with Managed Prometheus, kube-state-metrics of pods and HPAs, and the GPUs’ DCGM metrics', () => {
  for (const [, stack] of eachStack()) {
    const cluster = one(stack, 'google_container_cluster');
    assert.equal(cluster.monitoring_config.managed_prometheus, { enabled: true });
    for (const component of ['SYSTEM_COMPONENTS', 'POD', 'HPA', 'DCGM']) assert.ok(cluster.monitoring_config.enable_components.includes(component), component);
  }
});

test.run();
