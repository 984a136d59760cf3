// switchyard-stack.ts: the whole regional chain of docs/deploy-aws.md:
// client → CloudFront (WAF) → VPC origin → internal ALB → ECS service →
// S3 policy object, DynamoDB routes table, execute-api VPC endpoint.
import * as cdk from 'aws-cdk-lib';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { collectorConfig, NAMESPACE, SERVICE_DIMENSION } from './metrics';
import {
  ADMIN_PORT, imageRepository, LISTEN_PORT, NOFILE, ROUTER_USER, routerCommand, SwitchyardParams,
} from './params';

export interface SwitchyardStackProps extends cdk.StackProps {
  readonly params: SwitchyardParams;
  /** The CLOUDFRONT-scope web ACL (from the us-east-1 stack). */
  readonly webAclArn: string;
}

// The marker item that `routes put`/`delete` raise after each write and the
// router reads on every poll (one GetItem instead of a Scan).
export const GENERATION_KEY = '#generation';
export const ROUTER_IMAGE_BIN = '/usr/local/bin/switchyard';
const COLLECTOR_REPOSITORY = 'aws-observability/aws-otel-collector';
const PULL_THROUGH_PREFIX = 'ecr-public';

export class SwitchyardStack extends cdk.Stack {
  readonly taskRole: iam.Role;
  readonly operationsRole: iam.Role;
  readonly pipelineRoles: Record<string, iam.Role> = {};
  readonly alarmTopic: sns.Topic;

  constructor(scope: Construct, id: string, props: SwitchyardStackProps) {
    super(scope, id, props);
    const p = props.params;

    /* ---- network ------------------------------------------------------ */

    // Private subnets only, no NAT: everything the tasks call is reached
    // through VPC endpoints.
    const vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(p.vpcCidr),
      availabilityZones: p.availabilityZones,
      natGateways: 0,
      subnetConfiguration: [{ name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 }],
      restrictDefaultSecurityGroup: false,
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
    });
    // CloudFront VPC origins require an internet gateway attached to the VPC
    // (they refuse a VPC without one). No route table points at it, so
    // nothing in the private subnets gains a path to or from the internet.
    const igw = new ec2.CfnInternetGateway(this, 'InternetGateway');
    new ec2.CfnVPCGatewayAttachment(this, 'InternetGatewayAttachment', {
      vpcId: vpc.vpcId,
      internetGatewayId: igw.ref,
    });
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs) });
    const privateSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };

    // Each group admits only the hop before it.
    const albSg = new ec2.SecurityGroup(this, 'AlbSg', {
      vpc, description: 'switchyard ALB: HTTPS from the CloudFront VPC origin', allowAllOutbound: false,
    });
    const routerSg = new ec2.SecurityGroup(this, 'RouterSg', {
      vpc, description: 'switchyard tasks: 8080 and the admin port from the ALB only', allowAllOutbound: true,
    });
    const vpceSg = new ec2.SecurityGroup(this, 'ExecuteApiEndpointSg', {
      vpc, description: 'execute-api endpoint: 443 from the tasks', allowAllOutbound: false,
    });
    const endpointsSg = new ec2.SecurityGroup(this, 'AwsEndpointsSg', {
      vpc, description: 'ECR and CloudWatch Logs endpoints: 443 from the tasks', allowAllOutbound: false,
    });
    if (p.vpcOriginSecurityGroupId) {
      albSg.addIngressRule(ec2.Peer.securityGroupId(p.vpcOriginSecurityGroupId), ec2.Port.tcp(443),
        'CloudFront-VPCOrigins-Service-SG');
    } else {
      // Until CloudFront has created its service-managed group (first
      // deploy), the VPC origin's addresses are somewhere in the VPC.
      albSg.addIngressRule(ec2.Peer.ipv4(vpc.vpcCidrBlock), ec2.Port.tcp(443),
        'CloudFront VPC origin (set vpcOriginSecurityGroupId to narrow)');
    }
    routerSg.addIngressRule(albSg, ec2.Port.tcp(ADMIN_PORT), 'ALB health check on the admin listener');
    albSg.addEgressRule(routerSg, ec2.Port.tcp(ADMIN_PORT), 'health check on the admin listener');
    vpceSg.addIngressRule(routerSg, ec2.Port.tcp(443), 'switchyard to the private APIs');
    endpointsSg.addIngressRule(routerSg, ec2.Port.tcp(443), 'image pull, logs, metrics');

    // AWS APIs the tasks call by their usual names: private DNS on. No `sts`
    // endpoint: task credentials come from the ECS agent (169.254.170.2).
    const awsEndpoints: Record<string, ec2.InterfaceVpcEndpointAwsService> = {
      EcrApi: ec2.InterfaceVpcEndpointAwsService.ECR,
      EcrDocker: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
      Logs: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    };
    for (const [name, service] of Object.entries(awsEndpoints)) {
      vpc.addInterfaceEndpoint(name, {
        service, privateDnsEnabled: true, open: false, securityGroups: [endpointsSg], subnets: privateSubnets,
      });
    }
    // execute-api with private DNS OFF: on, it would capture every
    // *.execute-api name in the VPC and break calls to public APIs.
    // switchyard connects to the endpoint's own name (connect_to).
    const executeApi = vpc.addInterfaceEndpoint('ExecuteApi', {
      service: ec2.InterfaceVpcEndpointAwsService.APIGATEWAY,
      privateDnsEnabled: false,
      open: false,
      securityGroups: [vpceSg],
      subnets: privateSubnets,
    });

    /* ---- stores ------------------------------------------------------- */

    const logsBucket = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      // CloudFront standard logging writes with ACLs.
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: cdk.Duration.days(90) }],
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    const policyBucket = new s3.Bucket(this, 'PolicyBucket', {
      versioned: true, // the rollback: copy the previous version back
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      serverAccessLogsBucket: logsBucket,
      serverAccessLogsPrefix: 'policy-bucket/',
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    const policyObjectArn = policyBucket.arnForObjects(p.policyKey);

    const table = new dynamodb.Table(this, 'Routes', {
      tableName: p.routesTableName,
      partitionKey: { name: 'path', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });

    /* ---- roles -------------------------------------------------------- */

    const ecsTasks = new iam.ServicePrincipal('ecs-tasks.amazonaws.com').withConditions({
      StringEquals: { 'aws:SourceAccount': p.account },
      ArnLike: { 'aws:SourceArn': `arn:aws:ecs:${p.region}:${p.account}:*` },
    });
    const taskRole = new iam.Role(this, 'TaskRole', {
      roleName: 'switchyard-task', assumedBy: ecsTasks, description: 'switchyard tasks: read the policy object and the routes table',
    });
    this.taskRole = taskRole;
    taskRole.addToPolicy(new iam.PolicyStatement({
      sid: 'ReadThePolicyObject', actions: ['s3:GetObject'], resources: [policyObjectArn],
    }));
    taskRole.addToPolicy(new iam.PolicyStatement({
      // Scan loads the table; GetItem reads the #generation marker each poll.
      sid: 'ReadTheRoutesTable', actions: ['dynamodb:GetItem', 'dynamodb:Scan'], resources: [table.tableArn],
    }));

    const executionRole = new iam.Role(this, 'ExecutionRole', {
      roleName: 'switchyard-execution', assumedBy: ecsTasks, description: 'ECS pulls the images and writes the logs',
    });

    const operationsRole = new iam.Role(this, 'OperationsRole', {
      roleName: 'switchyard-operations',
      assumedBy: new iam.CompositePrincipal(...p.operationsPrincipalArns.map((a) => new iam.ArnPrincipal(a))),
      description: 'publishes, reads and rolls back the switchyard policy object',
    });
    this.operationsRole = operationsRole;
    operationsRole.addToPolicy(new iam.PolicyStatement({
      sid: 'PublishAndRollBackThePolicyObject',
      actions: ['s3:GetObject', 's3:GetObjectVersion', 's3:PutObject'],
      resources: [policyObjectArn],
    }));
    operationsRole.addToPolicy(new iam.PolicyStatement({
      // With ListBucket a wrong key is a 404, not a 403 that sends you to IAM.
      sid: 'ListThePolicyObjectVersions',
      actions: ['s3:ListBucket', 's3:ListBucketVersions'],
      resources: [policyBucket.bucketArn],
      conditions: { StringEquals: { 's3:prefix': p.policyKey } },
    }));

    // Reads only by the router and operations, writes only by operations,
    // whatever else an identity policy in the account grants.
    policyBucket.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'OnlyOperationsWrites',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['s3:PutObject', 's3:DeleteObject', 's3:DeleteObjectVersion', 's3:PutObjectAcl'],
      resources: [policyBucket.arnForObjects('*')],
      conditions: { ArnNotEquals: { 'aws:PrincipalArn': operationsRole.roleArn } },
    }));
    policyBucket.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'OnlyRouterAndOperationsRead',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['s3:GetObject', 's3:GetObjectVersion'],
      resources: [policyBucket.arnForObjects('*')],
      conditions: { ArnNotEquals: { 'aws:PrincipalArn': [operationsRole.roleArn, taskRole.roleArn] } },
    }));

    // One pipeline role per team, assumed by its CI through OIDC.
    const issuer = p.oidcProviderArn.replace(/^arn:aws:iam::\d{12}:oidc-provider\//, '');
    for (const team of p.teams) {
      const role = new iam.Role(this, `Pipeline-${team.name}`, {
        roleName: `switchyard-pipeline-${team.name}`,
        description: `CI of team ${team.name}: routes under ${team.rootPaths.join(', ')} only`,
        maxSessionDuration: cdk.Duration.hours(1),
        assumedBy: new iam.FederatedPrincipal(p.oidcProviderArn, {
          StringEquals: { [`${issuer}:aud`]: p.oidcAudience },
          StringLike: { [`${issuer}:sub`]: team.oidcSubjects },
        }, 'sts:AssumeRoleWithWebIdentity'),
      });
      role.addToPolicy(new iam.PolicyStatement({
        sid: 'OwnRootPathsOnly',
        actions: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem'],
        resources: [table.tableArn],
        conditions: {
          // "/orders*" would hand /ordersx and /orders-admin to the team:
          // the root itself, and below it at a segment boundary.
          'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': team.rootPaths.flatMap((r) => [r, `${r}/*`]) },
          // ForAllValues holds for an empty set: a request without a key must fail.
          Null: { 'dynamodb:LeadingKeys': 'false' },
        },
      }));
      role.addToPolicy(new iam.PolicyStatement({
        sid: 'RaiseTheGenerationMarker',
        actions: ['dynamodb:UpdateItem'],
        resources: [table.tableArn],
        conditions: {
          'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [GENERATION_KEY] },
          Null: { 'dynamodb:LeadingKeys': 'false' },
        },
      }));
      this.pipelineRoles[team.name] = role;
    }

    /* ---- ECS ---------------------------------------------------------- */

    const cluster = new ecs.Cluster(this, 'Cluster', {
      clusterName: p.clusterName, vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    const logGroup = new logs.LogGroup(this, 'RouterLogs', {
      logGroupName: '/ecs/switchyard', retention: logs.RetentionDays.ONE_MONTH, removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    const metricsLogGroupName = '/ecs/switchyard/metrics';
    const metricsLogGroup = new logs.LogGroup(this, 'MetricsLogs', {
      logGroupName: metricsLogGroupName, retention: logs.RetentionDays.ONE_WEEK, removalPolicy: cdk.RemovalPolicy.RETAIN,
    });

    const taskDef = new ecs.FargateTaskDefinition(this, 'TaskDef', {
      family: 'switchyard',
      cpu: p.cpu,
      memoryLimitMiB: p.memoryMiB,
      runtimePlatform: { operatingSystemFamily: ecs.OperatingSystemFamily.LINUX, cpuArchitecture: ecs.CpuArchitecture.X86_64 },
      taskRole,
      executionRole,
    });
    const repo = imageRepository(p);
    const routerRepo = ecr.Repository.fromRepositoryArn(this, 'RouterRepo', repo.arn);
    const router = taskDef.addContainer('switchyard', {
      containerName: 'switchyard',
      image: ecs.ContainerImage.fromEcrRepository(routerRepo, repo.tag),
      essential: true,
      command: routerCommand(p),
      environment: {
        AWS_REGION: p.region,
        SWITCHYARD_POLICY: `s3://${policyBucket.bucketName}/${p.policyKey}`,
        SWITCHYARD_ROUTES: `dynamodb://${table.tableName}`,
      },
      portMappings: [
        { name: 'http', containerPort: LISTEN_PORT, protocol: ecs.Protocol.TCP },
        { name: 'admin', containerPort: ADMIN_PORT, protocol: ecs.Protocol.TCP },
      ],
      healthCheck: {
        command: ['CMD', ROUTER_IMAGE_BIN, 'healthcheck', '--admin', `127.0.0.1:${ADMIN_PORT}`],
        interval: cdk.Duration.seconds(10),
        timeout: cdk.Duration.seconds(5),
        retries: 3,
        startPeriod: cdk.Duration.seconds(30),
      },
      // SIGKILL only well after the drain has had its time.
      stopTimeout: cdk.Duration.seconds(Math.min(120, p.drainTimeoutSeconds + 15)),
      user: ROUTER_USER,
      readonlyRootFilesystem: true,
      linuxParameters: new ecs.LinuxParameters(this, 'RouterLinux', { initProcessEnabled: true }),
      logging: ecs.LogDrivers.awsLogs({
        logGroup, streamPrefix: 'switchyard', mode: ecs.AwsLogDriverMode.NON_BLOCKING, maxBufferSize: cdk.Size.mebibytes(25),
      }),
    });
    router.linuxParameters!.dropCapabilities(ecs.Capability.ALL);
    router.addUlimits({ name: ecs.UlimitName.NOFILE, softLimit: NOFILE, hardLimit: NOFILE });

    // The ADOT collector, pulled from ECR Public through this account's
    // pull-through cache (the tasks cannot reach public.ecr.aws).
    new ecr.CfnPullThroughCacheRule(this, 'EcrPublicCache', {
      ecrRepositoryPrefix: PULL_THROUGH_PREFIX,
      upstreamRegistryUrl: 'public.ecr.aws',
    });
    const collectorRepoArn = `arn:aws:ecr:${p.region}:${p.account}:repository/${PULL_THROUGH_PREFIX}/${COLLECTOR_REPOSITORY}`;
    const collector = taskDef.addContainer('collector', {
      containerName: 'adot-collector',
      image: ecs.ContainerImage.fromRegistry(
        `${p.account}.dkr.ecr.${p.region}.amazonaws.com/${PULL_THROUGH_PREFIX}/${COLLECTOR_REPOSITORY}:${p.collectorImageTag}`),
      // Losing metrics must never stop the router.
      essential: false,
      command: ['--config=env:AOT_CONFIG_CONTENT'],
      environment: {
        AOT_CONFIG_CONTENT: collectorConfig({
          region: p.region, serviceName: p.serviceName, logGroup: metricsLogGroupName,
        }),
      },
      memoryReservationMiB: 128,
      user: ROUTER_USER,
      readonlyRootFilesystem: true,
      linuxParameters: new ecs.LinuxParameters(this, 'CollectorLinux', { initProcessEnabled: true }),
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'collector', mode: ecs.AwsLogDriverMode.NON_BLOCKING }),
    });
    collector.linuxParameters!.dropCapabilities(ecs.Capability.ALL);
    collector.addContainerDependencies({ container: router, condition: ecs.ContainerDependencyCondition.START });

    executionRole.addToPolicy(new iam.PolicyStatement({
      // The first pull of a tag through the cache creates the repository and imports the image.
      sid: 'PullTheCollectorThroughTheCache',
      actions: ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:BatchImportUpstreamImage',
        'ecr:CreateRepository', 'ecr:GetDownloadUrlForLayer'],
      resources: [collectorRepoArn],
    }));
    taskRole.addToPolicy(new iam.PolicyStatement({
      // The collector's embedded-metric-format log events become CloudWatch metrics.
      sid: 'CollectorWritesMetrics',
      actions: ['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'],
      resources: [metricsLogGroup.logGroupArn, `${metricsLogGroup.logGroupArn}:log-stream:*`],
    }));

    const service = new ecs.FargateService(this, 'Service', {
      serviceName: p.serviceName,
      cluster,
      taskDefinition: taskDef,
      desiredCount: p.minTasks,
      platformVersion: ecs.FargatePlatformVersion.LATEST,
      vpcSubnets: privateSubnets,
      securityGroups: [routerSg],
      assignPublicIp: false,
      minHealthyPercent: 100, // deploys never shrink capacity
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      healthCheckGracePeriod: cdk.Duration.seconds(30),
      enableExecuteCommand: false,
      propagateTags: ecs.PropagatedTagSource.SERVICE,
    });

    /* ---- internal ALB -------------------------------------------------- */

    const alb = new elbv2.ApplicationLoadBalancer(this, 'Alb', {
      vpc,
      internetFacing: false,
      vpcSubnets: privateSubnets,
      securityGroup: albSg,
      // The ALB must close idle connections before the router does, or it
      // may send a request on a socket being closed: a 502.
      idleTimeout: cdk.Duration.seconds(p.albIdleTimeoutSeconds),
      dropInvalidHeaderFields: true,
      desyncMitigationMode: elbv2.DesyncMitigationMode.STRICTEST,
      deletionProtection: true,
      http2Enabled: true,
    });
    alb.setAttribute('routing.http.xff_header_processing.mode', 'append');
    alb.logAccessLogs(logsBucket, 'alb');
    const targetGroup = new elbv2.ApplicationTargetGroup(this, 'Targets', {
      vpc,
      targetType: elbv2.TargetType.IP,
      protocol: elbv2.ApplicationProtocol.HTTP,
      protocolVersion: elbv2.ApplicationProtocolVersion.HTTP1,
      port: LISTEN_PORT,
      // A stopping task leaves the ALB first; requests already sent get the whole drain.
      deregistrationDelay: cdk.Duration.seconds(p.drainTimeoutSeconds),
      loadBalancingAlgorithmType: elbv2.TargetGroupLoadBalancingAlgorithmType.LEAST_OUTSTANDING_REQUESTS,
      healthCheck: {
        protocol: elbv2.Protocol.HTTP,
        port: String(ADMIN_PORT),
        path: '/readyz', // 503 until both documents loaded, and while draining
        healthyHttpCodes: '200',
        interval: cdk.Duration.seconds(10),
        timeout: cdk.Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2,
      },
    });
    service.attachToApplicationTargetGroup(targetGroup);
    alb.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [elbv2.ListenerCertificate.fromArn(p.albCertificateArn)],
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      defaultTargetGroups: [targetGroup],
      open: false,
    });

    const scaling = service.autoScaleTaskCount({ minCapacity: p.minTasks, maxCapacity: p.maxTasks });
    scaling.scaleOnRequestCount('RequestsPerTask', {
      requestsPerTarget: p.requestsPerTargetPerMinute,
      targetGroup,
      scaleOutCooldown: cdk.Duration.seconds(60),
      scaleInCooldown: cdk.Duration.seconds(300),
    });

    /* ---- CloudFront with a VPC origin ------------------------------------ */

    const origin = origins.VpcOrigin.withApplicationLoadBalancer(alb, {
      vpcOriginName: 'switchyard-alb',
      protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
      httpsPort: 443,
      originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
      // CloudFront verifies the ALB's certificate against this name.
      domainName: p.originDomain,
      readTimeout: cdk.Duration.seconds(60),
    });
    const distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: 'switchyard',
      domainNames: p.domains,
      certificate: acm.Certificate.fromCertificateArn(this, 'CloudFrontCert', p.cloudFrontCertificateArn),
      minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      webAclId: props.webAclArn,
      enableLogging: true,
      logBucket: logsBucket,
      logFilePrefix: 'cloudfront/',
      defaultBehavior: {
        origin,
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
        cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
        // The client's Host reaches switchyard (listen_domains, route domains),
        // and so do the Authorization/X-Amz-* headers of IAM-signed requests.
        originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER,
        compress: false,
      },
    });

    /* ---- alarms ---------------------------------------------------------- */

    const topicKey = new kms.Key(this, 'AlarmTopicKey', {
      enableKeyRotation: true, description: 'switchyard alarm topic', removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    // CloudWatch alarms can publish to an encrypted topic only if they may use its key.
    topicKey.addToResourcePolicy(new iam.PolicyStatement({
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
    }));
    const topic = new sns.Topic(this, 'Alarms', { displayName: 'switchyard alarms', masterKey: topicKey, enforceSSL: true });
    this.alarmTopic = topic;
    if (p.alarmEmail) topic.addSubscription(new subs.EmailSubscription(p.alarmEmail));
    const action = new cwActions.SnsAction(topic);

    const sy = (name: string, stat: string, dims: Record<string, string> = {}, period = 60) =>
      new cloudwatch.Metric({
        namespace: NAMESPACE, metricName: name, statistic: stat, period: cdk.Duration.seconds(period),
        dimensionsMap: { [SERVICE_DIMENSION]: p.serviceName, ...dims },
      });
    const albMetric = (name: string, stat: string) => new cloudwatch.Metric({
      namespace: 'AWS/ApplicationELB', metricName: name, statistic: stat, period: cdk.Duration.minutes(1),
      dimensionsMap: { LoadBalancer: alb.loadBalancerFullName },
    });
    const alarm = (id: string, description: string, metric: cloudwatch.IMetric, threshold: number,
      opts: { periods?: number; op?: cloudwatch.ComparisonOperator; missing?: cloudwatch.TreatMissingData } = {}) => {
      const a = new cloudwatch.Alarm(this, id, {
        alarmName: `switchyard-${id}`,
        alarmDescription: `${description} (docs/operations.md)`,
        metric,
        threshold,
        evaluationPeriods: opts.periods ?? 1,
        comparisonOperator: opts.op ?? cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: opts.missing ?? cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      a.addAlarmAction(action);
      a.addOkAction(action);
      return a;
    };

    alarm('router-5xx-rate', 'more than 1 % of requests answered 5xx: backends failing, routes rejected or TLS failing',
      new cloudwatch.MathExpression({
        expression: '100 * FILL(e, 0) / IF(FILL(t, 0) > 0, t, 1)',
        usingMetrics: {
          e: sy('switchyard_requests_total', 'Sum', { code_class: '5xx' }, 300),
          t: sy('switchyard_requests_total', 'Sum', {}, 300),
        },
        period: cdk.Duration.minutes(5),
        label: 'router 5xx %',
      }), 1);
    alarm('alb-5xx', "the ALB's own 5xx (502 included): keep-alive timing, tasks crashing or drained too early",
      albMetric('HTTPCode_ELB_5XX_Count', 'Sum'), 0, { periods: 3 });
    alarm('latency-p99', `p99 target response time above ${p.latencyP99Seconds} s`,
      albMetric('TargetResponseTime', 'p99'), p.latencyP99Seconds, { periods: 5 });
    for (const [kind, threshold] of [['address_refused', 0], ['tls', 0], ['connect', 10], ['resolve', 10],
      ['timeout', 10], ['malformed_response', 10]] as const) {
      alarm(`upstream-errors-${kind.replace('_', '-')}`,
        kind === 'address_refused' ? 'a destination resolved to a forbidden address: a security event'
          : `upstream errors of kind ${kind}`,
        sy('switchyard_upstream_errors_total', 'Sum', { kind }, 300), threshold);
    }
    for (const store of ['policy', 'routes']) {
      alarm(`config-reload-failing-${store}`, `the ${store} store is unreachable or holds a bad document; traffic continues on the last good one`,
        sy('switchyard_config_consecutive_failures', 'Maximum', { store }), 2);
    }
    alarm('rejected-routes', 'a pipeline registered a route the policy does not allow; its path answers 502',
      sy('switchyard_routes', 'Maximum', { state: 'rejected' }), 0);
    // No data at all means no collector and no router reporting: alarm too.
    alarm('not-ready', 'a task has not loaded its documents for 5 minutes',
      sy('switchyard_ready', 'Minimum'), 1, {
        periods: 5, op: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD, missing: cloudwatch.TreatMissingData.BREACHING,
      });
    alarm('unhealthy-targets', 'the ALB sees unhealthy tasks',
      new cloudwatch.Metric({
        namespace: 'AWS/ApplicationELB', metricName: 'UnHealthyHostCount', statistic: 'Maximum', period: cdk.Duration.minutes(1),
        dimensionsMap: { LoadBalancer: alb.loadBalancerFullName, TargetGroup: targetGroup.targetGroupFullName },
      }), 0, { periods: 5 });
    alarm('dns-refused-answers', 'a DNS answer named a metadata or link-local address: a security event',
      sy('switchyard_dns_refused_answers_total', 'Sum', {}, 300), 0);
    alarm('dns-stale-answers', 'the DNS server fails or is silent; switchyard serves the last good answers',
      sy('switchyard_dns_stale_answers_total', 'Sum', {}, 300), 0, { periods: 3 });
    alarm('dns-failures', 'names fail to resolve', sy('switchyard_dns_failures_total', 'Sum', {}, 300), 0, { periods: 3 });
    alarm('addresses-set-aside', "one of a name's addresses refuses or times out: an Availability Zone's endpoint is down",
      sy('switchyard_upstream_addresses_set_aside_total', 'Sum', {}, 300), 0);
    alarm('client-connections', `client connections near the nofile limit (${NOFILE})`,
      sy('switchyard_client_connections', 'Maximum'), Math.floor(NOFILE * 0.4), { periods: 5 });
    alarm('cpu', 'service CPU above 80 %', service.metricCpuUtilization({ period: cdk.Duration.minutes(5) }), 80, { periods: 3 });
    alarm('memory', 'service memory above 80 %', service.metricMemoryUtilization({ period: cdk.Duration.minutes(5) }), 80, { periods: 3 });
    alarm('at-max-tasks', 'the service runs at the autoscaling maximum',
      new cloudwatch.Metric({
        namespace: 'ECS/ContainerInsights', metricName: 'RunningTaskCount', statistic: 'Maximum', period: cdk.Duration.minutes(5),
        dimensionsMap: { ClusterName: p.clusterName, ServiceName: p.serviceName },
      }), p.maxTasks, { periods: 3, op: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD });

    /* ---- outputs: what the policy and the operators need ----------------- */

    new cdk.CfnOutput(this, 'PolicyBucketName', { value: policyBucket.bucketName });
    new cdk.CfnOutput(this, 'PolicyObject', { value: `s3://${policyBucket.bucketName}/${p.policyKey}` });
    new cdk.CfnOutput(this, 'RoutesTableName', { value: table.tableName });
    new cdk.CfnOutput(this, 'ExecuteApiEndpointId', {
      value: executeApi.vpcEndpointId,
      description: "the policy's connect_to is this endpoint's regional DNS name (first of DnsEntries) :443",
    });
    new cdk.CfnOutput(this, 'ExecuteApiEndpointDns', {
      value: cdk.Fn.select(1, cdk.Fn.split(':', cdk.Fn.select(0, executeApi.vpcEndpointDnsEntries))),
    });
    new cdk.CfnOutput(this, 'DistributionDomainName', { value: distribution.distributionDomainName });
    new cdk.CfnOutput(this, 'OperationsRoleArn', { value: operationsRole.roleArn });
    for (const [name, role] of Object.entries(this.pipelineRoles)) {
      new cdk.CfnOutput(this, `PipelineRoleArn-${name}`, { value: role.roleArn });
    }
    new cdk.CfnOutput(this, 'AlarmTopicArn', { value: topic.topicArn });
    new cdk.CfnOutput(this, 'AlbSecurityGroupId', { value: albSg.securityGroupId });

    /* ---- cdk-nag: every finding left is accepted here, with its reason -- */

    NagSuppressions.addResourceSuppressions(taskRole, [{
      id: 'AwsSolutions-IAM5',
      reason: 'The collector writes to log streams it names per task at run time, all inside the one metrics log group; nothing else has a wildcard.',
      appliesTo: [`Resource::<${this.getLogicalId(metricsLogGroup.node.defaultChild as cdk.CfnElement)}.Arn>:log-stream:*`],
    }], true);
    NagSuppressions.addResourceSuppressions(executionRole, [{
      id: 'AwsSolutions-IAM5',
      reason: 'ecr:GetAuthorizationToken (the registry login) exists only on "*"; the image pulls themselves are limited to the two repositories.',
      appliesTo: ['Resource::*'],
    }], true);
    NagSuppressions.addResourceSuppressions(taskDef, [{
      id: 'AwsSolutions-ECS2',
      reason: 'The variables hold no secrets: the region, the S3 URI of the policy, the table name and the collector configuration. Credentials come from the task role.',
    }]);
    NagSuppressions.addResourceSuppressions(distribution, [{
      id: 'AwsSolutions-CFR1',
      reason: 'An API router serves its clients wherever they are; add geoRestriction to the distribution if your API must not.',
    }]);
    if (!p.vpcOriginSecurityGroupId) {
      NagSuppressions.addResourceSuppressions(albSg, [{
        id: 'CdkNagValidationFailure',
        reason: 'EC23 cannot resolve the VPC CIDR token; the rule admits 443 from the VPC CIDR only (the VPC origin until vpcOriginSecurityGroupId is set), never 0.0.0.0/0.',
      }]);
    }
    // ECS cannot know the pull-through cache creates this repository; the
    // execution role's PullTheCollectorThroughTheCache statement covers it.
    cdk.Annotations.of(collector).acknowledgeWarning('@aws-cdk/aws-ecs:ecrImageRequiresPolicy',
      'the execution role is granted the pull on the pull-through cache repository');
  }
}
