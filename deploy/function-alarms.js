'use strict';
// A local osls plugin: an Errors and a Throttles alarm (AWS/Lambda, Sum over 5 minutes >= 1) for
// every function of the service, named Alarm<Function>Errors / Alarm<Function>Throttles
// (pay_notify -> AlarmPayNotifyErrors), notifying the stage's AlarmTopic. Generated from the
// compiled template, so a function added to serverless.yml is covered without another line.
class FunctionAlarms {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = { 'package:compileEvents': () => this.addAlarms() };
  }

  addAlarms() {
    const service = this.serverless.service;
    const template = service.provider.compiledCloudFormationTemplate;
    const naming = this.serverless.getProvider('aws').naming;
    const stage = this.serverless.getProvider('aws').getStage();
    for (const name of service.getAllFunctions()) {
      const functionId = naming.getLambdaLogicalId(name);
      if (!template.Resources[functionId]) continue;
      const pascal = name.split(/[^A-Za-z0-9]+/).map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');
      for (const [metric, what] of [['Errors', 'raised or timed out'], ['Throttles', 'was throttled (concurrency limit)']]) {
        template.Resources[`Alarm${pascal}${metric}`] = {
          Type: 'AWS::CloudWatch::Alarm',
          Properties: {
            AlarmName: `${service.service}-${stage}-${name}-${metric.toLowerCase()}`,
            AlarmDescription: `${name} ${what} at least once in 5 minutes. README "Alarms".`,
            Namespace: 'AWS/Lambda',
            MetricName: metric,
            Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId } }],
            Statistic: 'Sum',
            Period: 300,
            EvaluationPeriods: 1,
            Threshold: 1,
            ComparisonOperator: 'GreaterThanOrEqualToThreshold',
            TreatMissingData: 'notBreaching',
            AlarmActions: [{ Ref: 'AlarmTopic' }],
          },
        };
      }
    }
  }
}

module.exports = FunctionAlarms;
