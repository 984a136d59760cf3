// aws-sts-sso.mjs: stand-ins for the two AWS APIs a profile's credentials
// come from, on loopback:
//  - STS AssumeRole behind a verifying front (aws-stores.mjs): every call
//    must carry a valid SigV4 signature for service "sts" made with keys the
//    stand-in knows (the source credentials, or a role it issued earlier, for
//    chained roles); each call hands out new role keys and registers them
//    with the store fronts, so only assumed credentials reach the stores;
//  - the IAM Identity Center portal's GetRoleCredentials
//    (GET /federation/credentials, bearer token in x-amz-sso_bearer_token),
//    which accepts only the access tokens it was told about.
import http from 'node:http';
import { startVerifyingFront } from './aws-stores.mjs';

const isoIn = (ms) => new Date(Date.now() + ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const xmlEscape = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/*
 * {url, calls[] ({form, accessKeyId, region, securityToken}), issued[],
 * front (the verifying front: keys, stats), close()}. sourceKeys: Map
 * accessKeyId -> {secretAccessKey, sessionToken?} allowed to call
 * AssumeRole. storeFronts: the fronts that must accept the assumed keys.
 */
export async function startSts({ sourceKeys, storeFronts, validForMs = 60 * 60 * 1000, prefix = 'ASIAROLE' }) {
  const sts = { calls: [], issued: [] };
  const keys = new Map(sourceKeys);
  const handle = (req, res, body, auth) => {
    const form = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
    sts.calls.push({ form, accessKeyId: auth.accessKeyId, region: auth.region, securityToken: req.headers['x-amz-security-token'] });
    if (req.method !== 'POST' || form.Action !== 'AssumeRole' || form.Version !== '2011-06-15' || !form.RoleArn || !form.RoleSessionName) {
      res.writeHead(400, { 'content-type': 'text/xml' });
      return res.end(`<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>unexpected ${xmlEscape(form.Action)}</Message></Error></ErrorResponse>`);
    }
    const n = sts.calls.length;
    const cred = { accessKeyId: `${prefix}${n}`, secretAccessKey: `role-secret-${n}/${Math.random().toString(36).slice(2)}`, sessionToken: `role-token-${n}&=/+` };
    for (const f of storeFronts) f.keys.set(cred.accessKeyId, cred);
    keys.set(cred.accessKeyId, cred); // a chained role is assumed with these
    sts.issued.push({ ...cred, roleArn: form.RoleArn });
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(`<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <AssumedRoleId>AROA:${xmlEscape(form.RoleSessionName)}</AssumedRoleId>
      <Arn>${xmlEscape(form.RoleArn)}/${xmlEscape(form.RoleSessionName)}</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>${cred.accessKeyId}</AccessKeyId>
      <SecretAccessKey>${xmlEscape(cred.secretAccessKey)}</SecretAccessKey>
      <SessionToken>${xmlEscape(cred.sessionToken)}</SessionToken>
      <Expiration>${isoIn(validForMs)}</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>req-${n}</RequestId></ResponseMetadata>
</AssumeRoleResponse>`);
  };
  sts.front = await startVerifyingFront({ service: 'sts', keys, handle });
  sts.url = sts.front.url;
  sts.close = () => sts.front.close();
  return sts;
}

/*
 * The SSO portal: {url, calls[] ({token, accountId, roleName}), refused,
 * close()}. tokens: the access tokens it accepts.
 */
export async function startSsoPortal({ tokens, storeFronts, validForMs = 60 * 60 * 1000 }) {
  const portal = { calls: [], refused: 0 };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const token = req.headers['x-amz-sso_bearer_token'];
    portal.calls.push({ method: req.method, path: url.pathname, token, accountId: url.searchParams.get('account_id'), roleName: url.searchParams.get('role_name') });
    if (req.method !== 'GET' || url.pathname !== '/federation/credentials') {
      res.writeHead(404);
      return res.end();
    }
    if (!tokens.has(token)) {
      portal.refused++;
      res.writeHead(401, { 'content-type': 'application/json', 'x-amzn-errortype': 'UnauthorizedException' });
      return res.end(JSON.stringify({ message: 'Session token not found or invalid' }));
    }
    const n = portal.calls.length;
    const cred = { accessKeyId: `ASIASSO${n}`, secretAccessKey: `sso-secret-${n}`, sessionToken: `sso-token-${n}` };
    for (const f of storeFronts) f.keys.set(cred.accessKeyId, cred);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ roleCredentials: { ...cred, expiration: Date.now() + validForMs } }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  portal.url = `http://127.0.0.1:${server.address().port}`;
  portal.close = () => new Promise((r) => {
    server.closeAllConnections?.();
    server.close(r);
  });
  return portal;
}
