// app.ts: builds the two stacks for one set of parameters. The CLI entry
// (bin/app.ts) and the tests (tests/deploy/cdk.test.mjs) both call this, so
// what is tested is what `cdk deploy` deploys.
import * as cdk from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SwitchyardParams } from './params';
import { SwitchyardStack } from './switchyard-stack';
import { SwitchyardWafStack } from './waf-stack';

export interface Built {
  readonly app: cdk.App;
  readonly main: SwitchyardStack;
  readonly waf: SwitchyardWafStack;
}

export function build(params: SwitchyardParams, opts: { app?: cdk.App; nag?: boolean } = {}): Built {
  const app = opts.app ?? new cdk.App();
  // The Availability Zones are a parameter: given to the context so that
  // the VPC never asks AWS for them (synthesis stays offline).
  app.node.setContext(`availability-zones:account=${params.account}:region=${params.region}`, params.availabilityZones);
  const waf = new SwitchyardWafStack(app, 'SwitchyardWaf', {
    env: { account: params.account, region: 'us-east-1' },
    params,
    crossRegionReferences: params.region !== 'us-east-1',
    description: 'switchyard: WAF web ACL for CloudFront (scope CLOUDFRONT lives in us-east-1)',
  });
  const main = new SwitchyardStack(app, 'Switchyard', {
    env: { account: params.account, region: params.region },
    params,
    webAclArn: waf.webAclArn,
    crossRegionReferences: params.region !== 'us-east-1',
    description: 'switchyard: VPC, stores, ECS service, internal ALB, CloudFront VPC origin, IAM, alarms',
  });
  main.addDependency(waf);
  if (opts.nag ?? true) cdk.Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
  return { app, main, waf };
}
