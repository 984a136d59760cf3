// waf-stack.ts: the WAF web ACL in front of CloudFront. A CLOUDFRONT-scope
// web ACL exists only in us-east-1, so it has a stack of its own there; the
// main stack takes its ARN by a cross-region reference.
import * as cdk from 'aws-cdk-lib';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { SwitchyardParams } from './params';

// AWSManagedRulesCommonRuleSet's SizeRestrictions_BODY blocks any body over
// 8 KB. switchyard's own max_body_bytes is the real bound; WAF can inspect at
// most the first 64 KB of a body at CloudFront anyway.
export const WAF_BODY_RULE_LIMIT = 8192;

export interface WafStackProps extends cdk.StackProps {
  readonly params: SwitchyardParams;
}

export class SwitchyardWafStack extends cdk.Stack {
  readonly webAclArn: string;

  constructor(scope: Construct, id: string, props: WafStackProps) {
    super(scope, id, props);
    const p = props.params;
    const visibility = (name: string): wafv2.CfnWebACL.VisibilityConfigProperty => ({
      cloudWatchMetricsEnabled: true,
      metricName: `switchyard-${name}`,
      sampledRequestsEnabled: true,
    });
    const managed = (priority: number, name: string, overrides: string[] = []): wafv2.CfnWebACL.RuleProperty => ({
      name,
      priority,
      overrideAction: { none: {} },
      statement: {
        managedRuleGroupStatement: {
          vendorName: 'AWS',
          name,
          ruleActionOverrides: overrides.length
            ? overrides.map((r) => ({ name: r, actionToUse: { count: {} } }))
            : undefined,
        },
      },
      visibilityConfig: visibility(name),
    });
    const acl = new wafv2.CfnWebACL(this, 'WebAcl', {
      name: 'switchyard',
      scope: 'CLOUDFRONT',
      defaultAction: { allow: {} },
      visibilityConfig: visibility('web-acl'),
      rules: [
        {
          // The first volumetric defence; switchyard has no per-client limit.
          name: 'RatePerClientIp',
          priority: 0,
          action: { block: {} },
          statement: { rateBasedStatement: { limit: p.wafRateLimitPer5Min, aggregateKeyType: 'IP' } },
          visibilityConfig: visibility('rate-per-ip'),
        },
        managed(1, 'AWSManagedRulesAmazonIpReputationList'),
        managed(2, 'AWSManagedRulesCommonRuleSet',
          p.maxBodyBytes > WAF_BODY_RULE_LIMIT ? ['SizeRestrictions_BODY'] : []),
        managed(3, 'AWSManagedRulesKnownBadInputsRuleSet'),
      ],
    });
    this.webAclArn = acl.attrArn;
    new cdk.CfnOutput(this, 'WebAclArn', { value: acl.attrArn });
  }
}
