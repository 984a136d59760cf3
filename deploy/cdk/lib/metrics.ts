// metrics.ts: what the ADOT collector sidecar scrapes from the router's
// /metrics and publishes to CloudWatch (embedded metric format), and the
// names the alarms use. One list, so an alarm can't name a metric the
// collector drops.
import { ADMIN_PORT } from './params';

export const NAMESPACE = 'Switchyard';
// A label every scraped series gets: the alarms' dimension, so two
// deployments in one account don't mix.
export const SERVICE_DIMENSION = 'service';

/** Metric name → the extra label kept as a dimension (besides `service`). */
export const PUBLISHED: Record<string, string[][]> = {
  switchyard_requests_total: [[], ['code_class']],
  switchyard_upstream_errors_total: [[], ['kind']],
  switchyard_config_consecutive_failures: [['store']],
  switchyard_routes: [['state']],
  switchyard_ready: [[]],
  switchyard_rejected_requests_total: [[]],
  switchyard_client_connections: [[]],
  switchyard_upstream_connections: [[]],
  switchyard_upstream_tls_handshakes_total: [['kind']],
  switchyard_dns_refused_answers_total: [[]],
  switchyard_dns_stale_answers_total: [[]],
  switchyard_dns_failures_total: [[]],
  switchyard_upstream_addresses_set_aside_total: [[]],
};

/** The collector's configuration, passed inline (AOT_CONFIG_CONTENT): YAML is a superset of JSON. */
export function collectorConfig(opts: { region: string; serviceName: string; logGroup: string }): string {
  const declarations = Object.entries(PUBLISHED).map(([name, dims]) => ({
    dimensions: dims.map((d) => [SERVICE_DIMENSION, ...d]),
    // A regex; no trailing `$`: the collector would read `$` as an environment variable.
    metric_name_selectors: [`^${name}`],
  }));
  const cfg = {
    extensions: { health_check: {} },
    receivers: {
      prometheus: {
        config: {
          global: { scrape_interval: '60s', scrape_timeout: '10s' },
          scrape_configs: [{
            job_name: 'switchyard',
            metrics_path: '/metrics',
            static_configs: [{
              targets: [`127.0.0.1:${ADMIN_PORT}`],
              labels: { [SERVICE_DIMENSION]: opts.serviceName },
            }],
          }],
        },
      },
    },
    processors: { batch: { timeout: '60s' } },
    exporters: {
      awsemf: {
        namespace: NAMESPACE,
        region: opts.region,
        log_group_name: opts.logGroup,
        log_stream_name: 'collector-{TaskId}',
        dimension_rollup_option: 'NoDimensionRollup',
        metric_declarations: declarations,
      },
    },
    service: {
      extensions: ['health_check'],
      pipelines: { metrics: { receivers: ['prometheus'], processors: ['batch'], exporters: ['awsemf'] } },
    },
  };
  return JSON.stringify(cfg);
}
