// A real OpenID provider for Warden's SSO tests: panva's oidc-provider
// (OpenID Certified) on 127.0.0.1:PORT, with people a test signs in as over
// plain HTTP (no browser):
//   GET  <authorization URL>            → 303 to /interaction/:uid
//   POST /interaction/:uid  login=NAME  → finishes the login (and consent)
//                                         with the person's amr/acr
// People: ana (pwd+otp, group warden-admins), ben (pwd+otp, warden-users),
// pat (password only, warden-users).
// Test hooks: POST /test/disable/NAME (the provider refuses them from now
// on, refresh included); POST /test/groups/NAME with "g1,g2" as the body
// sets their groups (an empty body: none); POST /test/mode/MODE makes the
// next ID token wrong on purpose: iss, aud, exp, nonce, sub (another
// person), sig (re-signed with the provider's key, except sig which is
// tampered), or none.
import Provider, { errors } from 'oidc-provider';
import * as jose from 'jose';
import http from 'node:http';

const port = Number(process.argv[2]);
// With a third argument `slash`, the issuer ends in a slash, as some
// providers' do (Auth0, Entra ID v1).
const issuer = `http://127.0.0.1:${port}${process.argv[3] === 'slash' ? '/' : ''}`;
const people = {
  ana: { amr: ['pwd', 'otp'], acr: 'mfa', groups: ['warden-admins'], email: 'ana@example.com' },
  ben: { amr: ['pwd', 'otp'], acr: 'mfa', groups: ['warden-users'], email: 'ben@example.com' },
  pat: { amr: ['pwd'], acr: 'pwd', groups: ['warden-users'], email: 'pat@example.com' },
};
const disabled = new Set();
let mode = 'none';

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await jose.exportJWK(privateKey)), kid: 'k1', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'warden',
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    require_auth_time: true,
  }],
  jwks: { keys: [jwk] },
  findAccount: async (ctx, id) => {
    if (!people[id] || disabled.has(id)) return undefined;
    return {
      accountId: id,
      claims: async () => ({ sub: id, preferred_username: id, email: people[id].email, groups: people[id].groups }),
    };
  },
  claims: { openid: ['sub', 'acr', 'amr', 'auth_time'], profile: ['preferred_username'], email: ['email'], groups: ['groups'], acr: null, amr: null, auth_time: null },
  conformIdTokenClaims: false,
  scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
  features: { devInteractions: { enabled: false }, resourceIndicators: { enabled: false } },
  pkce: { required: () => true },
  acrValues: ['mfa', 'pwd'],
  issueRefreshToken: async () => true,
  ttl: { AccessToken: 3600, IdToken: 3600, RefreshToken: 86400, Grant: 86400, Session: 86400, Interaction: 600 },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  rotateRefreshToken: true,
});
provider.proxy = false;

// Any port on 127.0.0.1 for native clients (RFC 8252 §7.3).
const { Client } = provider;
const original = Client.prototype.redirectUriAllowed;
Client.prototype.redirectUriAllowed = function (uri) {
  try {
    const u = new URL(uri);
    if (u.protocol === 'http:' && u.hostname === '127.0.0.1' && u.pathname === '/callback') return true;
  } catch { /* fall through */ }
  return original.call(this, uri);
};

// Wrong ID tokens on request, to test that Warden refuses each.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path !== '/token' || mode === 'none' || !ctx.body || !ctx.body.id_token) return;
  const current = mode;
  mode = 'none';
  const [h, p, s] = ctx.body.id_token.split('.');
  if (current === 'sig') {
    const flipped = (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    ctx.body = { ...ctx.body, id_token: `${h}.${p}.${flipped}` };
    return;
  }
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  if (current === 'iss') claims.iss = 'http://127.0.0.1:1/evil';
  if (current === 'aud') claims.aud = 'someone-else';
  if (current === 'exp') { claims.exp = Math.floor(Date.now() / 1000) - 600; claims.iat = claims.exp - 3600; }
  if (current === 'nonce') claims.nonce = 'not-the-nonce';
  if (current === 'sub') claims.sub = 'ana';
  const token = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT' }).sign(privateKey);
  ctx.body = { ...ctx.body, id_token: token };
});

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  if (req.method === 'POST' && url.pathname.startsWith('/test/disable/')) {
    disabled.add(url.pathname.split('/').pop());
    res.writeHead(200).end('disabled');
    return;
  }
  if (req.method === 'POST' && url.pathname.startsWith('/test/groups/')) {
    const who = url.pathname.split('/').pop();
    let body = '';
    for await (const chunk of req) body += chunk;
    if (!people[who]) {
      res.writeHead(404).end('unknown person');
      return;
    }
    people[who].groups = body.split(',').map((g) => g.trim()).filter(Boolean);
    res.writeHead(200).end(people[who].groups.join(','));
    return;
  }
  if (req.method === 'POST' && url.pathname.startsWith('/test/mode/')) {
    mode = url.pathname.split('/').pop();
    res.writeHead(200).end(mode);
    return;
  }
  if (url.pathname.startsWith('/interaction/')) {
    try {
      const details = await provider.interactionDetails(req, res);
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`sign in: POST login=NAME to ${url.pathname}`);
        return;
      }
      let body = '';
      for await (const chunk of req) body += chunk;
      const who = new URLSearchParams(body).get('login');
      const person = people[who];
      if (!person || disabled.has(who)) {
        res.writeHead(403).end('unknown or disabled person');
        return;
      }
      const grant = new provider.Grant({ accountId: who, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      grant.addOIDCClaims(['preferred_username', 'email', 'groups']);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, {
        login: { accountId: who, amr: person.amr, acr: person.acr, remember: false },
        consent: { grantId },
      }, { mergeWithLastSubmission: false });
    } catch (e) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(String(e));
    }
    return;
  }
  provider.callback()(req, res);
});
server.listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
