// The operator's dashboard as code: a Cloud Monitoring dashboard with the golden signals of each
// component, every chart a PromQL query over Managed Prometheus (the gateway's series through its
// Cloud Run sidecar, the runners' and RabbitMQ's through the cluster's PodMonitorings, GKE's
// kube-state-metrics and DCGM GPU metrics), so it reads the same series as the alerts
// (k8s/alerts.ts). In the console: Monitoring → Dashboards → "itemgen <env>".
import { MonitoringDashboard } from '@cdktf/provider-google/lib/monitoring-dashboard/index.js';
import { Construct } from 'constructs';
import { RUNNER_HPA, SCRAPE_JOBS } from '../k8s/alerts.ts';
import type { Environment } from './environments.ts';

export interface Chart {
  title: string;
  /**
   * One line set per query, each series named by its labels (no legend templates: their `${…}`
   * would be a Terraform interpolation in the JSON).
   */
  queries: { promql: string }[];
  unit?: string;
}

export interface DashboardSection {
  title: string;
  charts: Chart[];
}

const p95 = (histogram: string, by: string[] = []) =>
  `histogram_quantile(0.95, sum by (${['le', ...by].join(', ')}) (rate(${histogram}_bucket[5m])))`;

/** The sections, component by component: what each chart shows and from which series. */
export function dashboardSections(env: Environment): DashboardSection[] {
  const ns = env.kubernetes.namespace;
  return [
    {
      title: 'Gateway (Cloud Run)',
      charts: [
        { title: 'Requests per second by status', queries: [{ promql: 'sum by (status) (rate(itemgen_http_requests_total[5m]))' }] },
        {
          title: 'Error ratio (5xx)',
          unit: '10^2.%',
          queries: [{ promql: 'sum(rate(itemgen_http_requests_total{status=~"5.."}[5m])) / sum(rate(itemgen_http_requests_total[5m]))' }],
        },
        { title: 'Latency p95 by route', unit: 's', queries: [{ promql: p95('itemgen_http_request_duration_seconds', ['route']) }] },
        { title: 'Submits per second', queries: [{ promql: 'sum(rate(itemgen_generations_submitted_total[5m]))' }] },
      ],
    },
    {
      title: 'Queue',
      charts: [
        { title: 'Oldest pending generation', unit: 's', queries: [{ promql: 'max(itemgen_oldest_pending_generation_age_seconds)' }] },
        {
          title: 'Messages per queue (ready, held by runners)',
          queries: [
            { promql: `sum by (queue) (rabbitmq_detailed_queue_messages_ready{job="${SCRAPE_JOBS.rabbitmq}"})` },
            { promql: `sum by (queue) (rabbitmq_detailed_queue_messages_unacked{job="${SCRAPE_JOBS.rabbitmq}"})` },
          ],
        },
        { title: 'Dead-lettered generations per hour', queries: [{ promql: 'sum by (reason) (increase(itemgen_generations_dead_lettered_total[1h]))' }] },
        { title: 'Time to first step p95', unit: 's', queries: [{ promql: p95('itemgen_time_to_first_step_seconds') }] },
      ],
    },
    {
      title: 'Runners (GKE)',
      charts: [
        { title: 'Jobs per second by outcome', queries: [{ promql: 'sum by (outcome) (rate(itemgen_runner_jobs_total[5m]))' }] },
        {
          title: 'Runners up, and their maximum',
          queries: [
            { promql: `sum(up{job="${SCRAPE_JOBS.runner}"})` },
            { promql: `max(kube_horizontalpodautoscaler_spec_max_replicas{namespace="${ns}", horizontalpodautoscaler="${RUNNER_HPA}"})` },
          ],
        },
        { title: 'Denoising step p95', unit: 's', queries: [{ promql: p95('itemgen_runner_step_seconds') }] },
        { title: 'Submit to completed p95 by size', unit: 's', queries: [{ promql: p95('itemgen_generation_duration_seconds', ['size']) }] },
        { title: 'GPU utilization', unit: '%', queries: [{ promql: 'avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL)' }] },
        {
          title: 'Container restarts per hour',
          queries: [{ promql: `sum by (container) (increase(kube_pod_container_status_restarts_total{namespace="${ns}"}[1h]))` }],
        },
      ],
    },
    {
      title: 'Webhooks',
      charts: [
        { title: 'Attempts per second by outcome', queries: [{ promql: 'sum by (outcome) (rate(itemgen_webhook_deliveries_total[5m]))' }] },
      ],
    },
  ];
}

const COLUMNS = 48;
const CHART_WIDTH = 24;
const CHART_HEIGHT = 16;
const HEADER_HEIGHT = 4;

/** The dashboard JSON (Cloud Monitoring's v1 Dashboard): a mosaic, each section a header and its charts two a row. */
export function dashboardJson(env: Environment): Record<string, unknown> {
  const tiles: Record<string, unknown>[] = [];
  let y = 0;
  for (const section of dashboardSections(env)) {
    tiles.push({ xPos: 0, yPos: y, width: COLUMNS, height: HEADER_HEIGHT, widget: { title: section.title, sectionHeader: {} } });
    y += HEADER_HEIGHT;
    section.charts.forEach((chart, i) => {
      tiles.push({
        xPos: (i % 2) * CHART_WIDTH,
        yPos: y + Math.floor(i / 2) * CHART_HEIGHT,
        width: CHART_WIDTH,
        height: CHART_HEIGHT,
        widget: {
          title: chart.title,
          xyChart: {
            dataSets: chart.queries.map((q) => ({
              plotType: 'LINE',
              targetAxis: 'Y1',
              timeSeriesQuery: { prometheusQuery: q.promql, ...(chart.unit ? { unitOverride: chart.unit } : {}) },
            })),
            yAxis: { scale: 'LINEAR' },
          },
        },
      });
    });
    y += Math.ceil(section.charts.length / 2) * CHART_HEIGHT;
  }
  return { displayName: `itemgen ${env.name}`, mosaicLayout: { columns: COLUMNS, tiles } };
}

export class Dashboard extends Construct {
  readonly dashboard: MonitoringDashboard;

  constructor(scope: Construct, id: string, props: { env: Environment }) {
    super(scope, id);
    this.dashboard = new MonitoringDashboard(this, 'dashboard', { dashboardJson: JSON.stringify(dashboardJson(props.env)) });
  }
}
