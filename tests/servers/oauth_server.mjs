// An OAuth-protected MCP server written for Warden's tests on the official
// TypeScript SDK: its own authorization server (dynamic registration, PKCE,
// RFC 8707 resources, refresh tokens that rotate, revocation) and an MCP
// endpoint at /mcp behind bearer auth. Listens on 127.0.0.1:PORT only.
//
//   node oauth_server.mjs PORT            tokens are checked
//   node oauth_server.mjs PORT --any      any bearer token is accepted (a server that does not enforce)
//
// Test hooks: POST /test/expire makes every access token expired (the
// server refuses them from then on); POST /test/revoke also makes every
// refresh token stop working; GET /test/stats counts refreshes.
import express from 'express';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { mcpAuthRouter, getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { DemoInMemoryAuthProvider } from '@modelcontextprotocol/sdk/examples/server/demoInMemoryOAuthProvider.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';

const port = Number(process.argv[2]);
const acceptAny = process.argv.includes('--any');
const base = `http://localhost:${port}`;
const mcpUrl = new URL(`${base}/mcp`);
const stats = { refreshes: 0, issued: 0 };

class RefreshingProvider extends DemoInMemoryAuthProvider {
  constructor() {
    super((resource) => resource?.toString() === mcpUrl.toString());
    this.refreshTokens = new Map();
  }
  issue(clientId, scopes, resource) {
    const token = randomUUID();
    const refresh = randomUUID();
    this.tokens.set(token, { token, clientId, scopes, expiresAt: Date.now() + 3600000, resource, type: 'access' });
    this.refreshTokens.set(refresh, { clientId, scopes, resource });
    stats.issued += 1;
    return { access_token: token, token_type: 'bearer', expires_in: 3600, refresh_token: refresh, scope: scopes.join(' ') };
  }
  async exchangeAuthorizationCode(client, code, verifier, redirectUri, resource) {
    const t = await super.exchangeAuthorizationCode(client, code, verifier, redirectUri, resource);
    const data = this.tokens.get(t.access_token);
    this.tokens.delete(t.access_token);
    return this.issue(client.client_id, data.scopes, data.resource);
  }
  async exchangeRefreshToken(client, refreshToken, scopes, resource) {
    const data = this.refreshTokens.get(refreshToken);
    if (!data || data.clientId !== client.client_id) throw new Error('invalid refresh token');
    if (resource && resource.toString() !== mcpUrl.toString()) throw new Error('wrong resource');
    this.refreshTokens.delete(refreshToken); // rotated: each refresh token works once
    stats.refreshes += 1;
    return this.issue(client.client_id, data.scopes, data.resource);
  }
  async verifyAccessToken(token) {
    let info;
    try {
      info = await super.verifyAccessToken(token);
    } catch {
      throw new InvalidTokenError('invalid or expired token');
    }
    return { ...info, resource: info.resource ? new URL(info.resource) : undefined };
  }
  async revokeToken(client, request) {
    this.tokens.delete(request.token);
    this.refreshTokens.delete(request.token);
  }
}

const provider = new RefreshingProvider();
const app = express();
app.use(express.json());
app.use(mcpAuthRouter({ provider, issuerUrl: new URL(base), resourceServerUrl: mcpUrl, scopesSupported: ['mcp:tools'] }));
app.post('/test/expire', (req, res) => {
  for (const t of provider.tokens.values()) t.expiresAt = Date.now() - 1000;
  res.json({ expired: provider.tokens.size });
});
app.post('/test/revoke', (req, res) => {
  // The authorization server forgets every grant: tokens expire and refresh
  // tokens stop working, as when a person's access is withdrawn there.
  for (const t of provider.tokens.values()) t.expiresAt = Date.now() - 1000;
  const refreshTokens = provider.refreshTokens.size;
  provider.refreshTokens.clear();
  res.json({ revoked: refreshTokens });
});
app.get('/test/stats', (req, res) => res.json(stats));

const auth = acceptAny
  ? (req, res, next) => {
      if (!(req.headers.authorization || '').toLowerCase().startsWith('bearer ')) {
        res.set('WWW-Authenticate', `Bearer resource_metadata="${getOAuthProtectedResourceMetadataUrl(mcpUrl)}"`);
        return res.status(401).json({ error: 'invalid_token' });
      }
      next();
    }
  : requireBearerAuth({ verifier: provider, resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(mcpUrl), expectedResource: mcpUrl });

app.post('/mcp', auth, async (req, res) => {
  const server = new McpServer({ name: 'warden-oauth-fixture', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Says which server answered', annotations: { readOnlyHint: true } },
    async () => ({ content: [{ type: 'text', text: 'hello from the protected server' }] }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});
app.get('/mcp', (req, res) => res.status(405).end());
app.delete('/mcp', (req, res) => res.status(405).end());

app.listen(port, '127.0.0.1', () => console.log(`listening ${mcpUrl}`));
