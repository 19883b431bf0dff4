// Evaluates a batch of AWS requests against identity + resource policies, offline.
//
// stdin:  {"policies": {"<id>": <policy document>, ...},
//          "requests": [{"id", "principal", "action", "resource", "resourceAccount",
//                        "context": {...}, "identityPolicies": ["<id>", ...],
//                        "resourcePolicy": "<id>" | null}, ...]}
// stdout: {"<request id>": {"decision": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied" | null,
//                           "problems": ["..."]}, ...}
//
// A request with a problem fails its test whatever the decision: an unknown action, a
// resource ARN that matches none of the action's resource types, a context key the action
// does not support, or a policy condition key (in a statement for this action) that the
// action does not support.
//
// @cloud-copilot/iam-simulate is AGPL-3.0: a devDependency for these tests only; lambdas/
// (the Lambda asset folder) never imports it.
import {
  allowedContextKeysForRequest,
  runSimulation,
  runUnsafeSimulation,
} from '@cloud-copilot/iam-simulate';

const NO_ORG_POLICIES = { serviceControlPolicies: [], resourceControlPolicies: [] };

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', (chunk) => chunks.push(chunk));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

function asList(value) {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

function wildcardRegex(pattern) {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'i');
}

// Allowed keys may be templates: `kms:encryptioncontext:${encryptioncontextkey}`,
// `s3:existingobjecttag/<key>`. iam-simulate matches only the `/` form; this matches both.
function keyMatchers(allowedKeys) {
  return allowedKeys.map((key) => {
    const pattern = key
      .replace(/[.+^()|[\]\\]/g, '\\$&')
      .replace(/\$\{[^}]*\}|<[^>]*>/g, '.+');
    return new RegExp(`^${pattern}$`, 'i');
  });
}

function supported(key, matchers) {
  return matchers.some((matcher) => matcher.test(key));
}

// Condition keys of the statements that apply to this action (Action/NotAction).
function conditionKeysFor(action, policy) {
  const keys = [];
  for (const statement of asList(policy?.Statement)) {
    const actions = asList(statement.Action);
    const notActions = asList(statement.NotAction);
    const applies = actions.length
      ? actions.some((a) => wildcardRegex(a).test(action))
      : !notActions.some((a) => wildcardRegex(a).test(action));
    if (!applies) continue;
    for (const operator of Object.values(statement.Condition ?? {})) {
      keys.push(...Object.keys(operator).map((key) => ({ key, sid: statement.Sid ?? '(no Sid)' })));
    }
  }
  return keys;
}

async function evaluate(request, policies) {
  const problems = [];
  const identityPolicies = request.identityPolicies.map((id) => ({ name: id, policy: policies[id] }));
  const resourcePolicy = request.resourcePolicy ? policies[request.resourcePolicy] : undefined;
  const simulation = {
    request: {
      principal: request.principal,
      action: request.action,
      resource: { resource: request.resource, accountId: request.resourceAccount },
      contextVariables: request.context,
    },
    identityPolicies,
    resourcePolicy,
    ...NO_ORG_POLICIES,
  };
  const response = await runSimulation(simulation, { simulationMode: 'Strict' });
  if (response.resultType === 'error') {
    return { decision: null, problems: [`iam-simulate refused the request: ${JSON.stringify(response.errors)}`] };
  }
  if (response.resultType === 'wildcard' && request.resource !== '*') {
    return { decision: null, problems: ['resource ARN has a wildcard: name one concrete resource'] };
  }
  const [service, action] = request.action.split(':');
  const matchers = keyMatchers(await allowedContextKeysForRequest(service, action, request.resource, false));
  // "*" for an action whose resource type is optional (cloudwatch:PutMetricData) is a
  // wildcard simulation: its results carry the dropped keys.
  const results = response.resultType === 'single' ? [response.result] : response.results;
  const dropped = [...new Set(results.flatMap((result) => result.ignoredContextKeys ?? []))];
  for (const key of dropped) {
    if (!supported(key, matchers)) problems.push(`context key ${key} is not supported by ${request.action}`);
  }
  const documents = [...identityPolicies.map((p) => [p.name, p.policy]), ['resource policy', resourcePolicy]];
  for (const [name, document] of documents) {
    for (const { key, sid } of conditionKeysFor(request.action, document)) {
      if (!supported(key, matchers)) {
        problems.push(`${name} statement ${sid}: condition key ${key} is not supported by ${request.action}`);
      }
    }
  }
  let decision = response.overallResult;
  if (dropped.length > 0 && problems.length === 0) {
    // Every dropped key is supported (a templated key such as kms:EncryptionContext:aws:s3:arn):
    // evaluate again with the whole context, the validation above being done.
    // (A ValidatedPolicy carries the name the unsafe engine does not set for resource policies.)
    const named = resourcePolicy && {
      __validated: true,
      policyDocument: resourcePolicy,
      metadata: { name: 'resource policy' },
      errors: [],
    };
    decision = runUnsafeSimulation({ ...simulation, resourcePolicy: named }, { simulationMode: 'Strict' });
  }
  return { decision, problems };
}

const input = JSON.parse(await readStdin());
const results = {};
for (const request of input.requests) {
  try {
    results[request.id] = await evaluate(request, input.policies);
  } catch (error) {
    results[request.id] = { decision: null, problems: [`evaluator error: ${error.message}`] };
  }
}
process.stdout.write(JSON.stringify(results));
